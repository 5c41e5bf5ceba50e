"""Longer export checks: r50-fpn end to end, and whether the dynamo exporter works yet."""

from __future__ import annotations

import warnings

import pytest
import torch

from maskrt.export.check import check_model
from maskrt.export.metadata import make_meta
from maskrt.export.onnx_export import export_onnx, static_export_patches
from maskrt.export.parity import ParityRules
from maskrt.export.scenes import synthetic_scenes
from maskrt.export.verify import check_parity
from maskrt.export.wrapper import ExportWrapper
from maskrt.train.models import ModelRecipe


@pytest.mark.slow
def test_r50_fpn_export_parity(tmp_path, make_model):
    recipe = ModelRecipe(arch="r50-fpn", classes=["bubble"], image_size=128)
    wrapper = ExportWrapper(make_model(recipe), (128, 128), 30, recipe.mean, recipe.std)
    path = tmp_path / "r50.onnx"
    export_onnx(wrapper, make_meta(recipe, (128, 128), 30), path)
    assert check_model(path) == []
    images = [s.image for s in synthetic_scenes(2, (128, 128), seed=5)]
    gate, agree = check_parity(path, wrapper, images, ParityRules())
    assert gate.passed, gate.failures()
    assert gate.summary()["matched"] > 0
    # vs model([image]): same detections; tiny box differences (deep random net) can move torchvision's
    # integer paste box by a pixel, so small masks agree on average rather than each >= 0.98
    assert agree is not None
    s = agree.summary()
    assert s["missing"] == 0 and s["extra"] == 0 and s["min_box_iou"] >= 0.99 and s["mean_mask_iou"] >= 0.98


OUTPUTS = ["boxes", "scores", "labels", "masks", "num_dets"]


@pytest.mark.slow
def test_dynamo_exporter_with_torchvision_nms(tmp_path, lite_export):
    """Tracks torch.onnx.export(dynamo=True) on the wrapper as torchvision ships it: xfails while it fails.

    Today torch.export stops at the data-dependent ``numel() == 0`` guard in torchvision's batched_nms.
    When this passes, the legacy exporter (deprecated) can be dropped: see the next test.
    """
    x = torch.zeros(1, 128, 128, 3, dtype=torch.uint8)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(lite_export.wrapper, (x,), str(tmp_path / "dynamo.onnx"), dynamo=True,
                              input_names=["images"], output_names=OUTPUTS)
    except Exception as exc:  # noqa: BLE001 - any failure is the expected state today
        pytest.xfail(f"dynamo export still fails: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    print("dynamo export of the unpatched wrapper works; TensorRT check:", check_model(tmp_path / "dynamo.onnx"))


@pytest.mark.slow
def test_dynamo_exporter_with_static_nms(tmp_path, lite_export, scene_images):
    """With our If-free batched_nms (as used for the legacy export), the dynamo exporter works too."""
    x = torch.zeros(1, 128, 128, 3, dtype=torch.uint8)
    path = tmp_path / "dynamo.onnx"
    with warnings.catch_warnings(), static_export_patches(128):
        warnings.simplefilter("ignore")
        torch.onnx.export(lite_export.wrapper, (x,), str(path), dynamo=True, input_names=["images"],
                          output_names=OUTPUTS)
    assert check_model(path) == []
    gate, _ = check_parity(path, lite_export.wrapper, scene_images[:2], ParityRules(), eager=False)
    assert gate.passed, gate.failures()
