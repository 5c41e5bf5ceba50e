"""The traceable wrapper: contract shapes and dtypes, padding, agreement with the plain model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maskrt.artifact import OUTPUT_DTYPES, OUTPUT_NAMES
from maskrt.errors import MaskrtError
from maskrt.export.verify import run_eager, run_wrapper
from maskrt.export.wrapper import ExportWrapper


def test_outputs_follow_the_contract(lite_export, scene_images):
    outs = run_wrapper(lite_export.wrapper, scene_images[0])
    d, m = lite_export.meta.max_det, lite_export.meta.mask_size
    shapes = {"boxes": (1, d, 4), "scores": (1, d), "labels": (1, d), "masks": (1, d, m, m), "num_dets": (1,)}
    for name, arr in zip(OUTPUT_NAMES, outs):
        assert arr.shape == shapes[name], name
        assert str(arr.dtype) == OUTPUT_DTYPES[name], name
    boxes, scores, labels, masks, num = outs
    n = int(num[0])
    assert 0 < n <= d
    assert np.all(np.diff(scores[0, :n]) <= 0), "scores sorted descending"
    assert np.all(labels[0, :n] >= 1) and np.all(labels[0, :n] <= len(lite_export.recipe.classes))
    assert np.all((masks[0, :n] >= 0) & (masks[0, :n] <= 1))
    # padding rows are all zero
    assert not scores[0, n:].any() and not boxes[0, n:].any() and not labels[0, n:].any() and not masks[0, n:].any()


def test_matches_plain_torchvision_model(lite_export, scene_images):
    """Same boxes and scores as model([image]) (whose resize is the identity at the recipe's size)."""
    image = scene_images[1]
    boxes, scores, labels, _, num = run_wrapper(lite_export.wrapper, image)
    eager = run_eager(lite_export.wrapper.model, image)
    n = int(num[0])
    assert n == len(eager["scores"])
    np.testing.assert_allclose(scores[0, :n], eager["scores"], atol=1e-5)
    np.testing.assert_allclose(boxes[0, :n], eager["boxes"], atol=1e-3)
    np.testing.assert_array_equal(labels[0, :n], eager["labels"])


def test_bgr_input_is_flipped_to_rgb(lite_export):
    w = lite_export.wrapper
    img = torch.zeros(1, 32, 32, 3, dtype=torch.uint8)
    img[..., 0] = 255  # pure blue in BGR
    x = w.preprocess(img)
    mean, std = lite_export.recipe.mean, lite_export.recipe.std
    assert x[0, 2, 0, 0].item() == pytest.approx((1.0 - mean[2]) / std[2], abs=1e-5)  # blue is channel 2 in RGB
    assert x[0, 0, 0, 0].item() == pytest.approx((0.0 - mean[0]) / std[0], abs=1e-5)


@pytest.mark.parametrize("size,max_det", [((100, 128), 10), ((128, 128), 0), ((128, 128), 5000)])
def test_rejects_bad_settings(lite_export, size, max_det):
    with pytest.raises(MaskrtError):
        ExportWrapper(lite_export.wrapper.model, size, max_det)


def test_plain_model_sees_frames_at_the_export_size(make_model, lite_recipe, scene_images):
    """A checkpoint trained at 96 px exported at 128: model([image]) must not shrink the frame to 96,
    or the eager agreement (and the benchmarks' eager baseline) would compare different resolutions."""
    small = type(lite_recipe)(arch="lite", classes=lite_recipe.classes, image_size=96)
    model = make_model(small)
    assert model.transform.min_size == (96,)
    wrapper = ExportWrapper(model, (128, 128), 20, small.mean, small.std)
    assert model.transform.min_size == (128,) and model.transform.max_size == 128
    boxes, _scores, _, _, num = run_wrapper(wrapper, scene_images[1])
    eager = run_eager(model, scene_images[1])
    n = int(num[0])
    assert n == len(eager["scores"]) > 0
    np.testing.assert_allclose(boxes[0, :n], eager["boxes"], atol=1e-3)
