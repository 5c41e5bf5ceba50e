"""The folded FPN stride-4 level: the same features and detections from fewer multiply-adds."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torchvision.ops import FeaturePyramidNetwork

from maskrt.export.fold_fpn import FoldedFPN, fold_saves
from maskrt.export.metadata import make_meta
from maskrt.export.onnx_export import export_onnx
from maskrt.export.verify import ort_session, run_ort
from maskrt.export.wrapper import ExportWrapper
from maskrt.train.models import ModelRecipe, build_model

from .conftest import MAX_DET, SIZE


def _randomised(fpn: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """torchvision starts FPN biases at zero; random ones check that the fold carries them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in fpn.modules():
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
    return fpn.eval()


def _features(channels: list[int], finest: tuple[int, int], seed: int = 1) -> OrderedDict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    h, w = finest
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for level, c in enumerate(channels):
        out[str(level)] = torch.randn(1, c, h, w, generator=g)
        h, w = (h + 1) // 2, (w + 1) // 2
    return out


@pytest.mark.parametrize("finest", [(32, 48), (9, 13)], ids=["double-sizes", "odd-sizes"])
def test_folded_levels_equal_torchvision_fpn(finest):
    """Every level, the biases included; an odd finest map (not twice the next) takes torchvision's own path."""
    fpn = _randomised(FeaturePyramidNetwork([24, 40, 112, 160], 64))
    x = _features([24, 40, 112, 160], finest)
    with torch.no_grad():
        ref = fpn(x)
        got = FoldedFPN(fpn)(x)
    assert list(got) == list(ref)
    for name in ref:
        assert got[name].shape == ref[name].shape
        scale = float(ref[name].abs().max())
        assert float((got[name] - ref[name]).abs().max()) <= 1e-5 * max(scale, 1.0), name


def test_fold_is_used_only_where_it_saves_work():
    lite = build_model(ModelRecipe(arch="lite", classes=["bubble"], image_size=64))
    fast = build_model(ModelRecipe(arch="lite-fast", classes=["bubble"], image_size=64))
    assert fold_saves(lite.backbone.fpn)  # 24-channel stride-4 map into a 128-channel FPN
    assert not fold_saves(fast.backbone.fpn)  # its stride-4 block is separable already
    assert not fold_saves(FeaturePyramidNetwork([256, 512, 1024, 2048], 256))  # ResNet: C2 as wide as the FPN
    assert not fold_saves(None)
    with pytest.raises(ValueError):
        FoldedFPN(fast.backbone.fpn)


def _fpn_macs(path) -> int:
    """Multiply-adds of the FPN's convolutions in an exported graph (weights x output pixels)."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    weights = {t.name: numpy_helper.to_array(t).shape for t in model.graph.initializer}
    total = 0
    for node in model.graph.node:
        if node.op_type == "Conv" and node.name.startswith("/backbone/fpn/"):
            w = weights[node.input[1]]
            h, wd = shapes[node.output[0]][-2:]
            total += int(np.prod(w)) * h * wd
    return total


@pytest.fixture(scope="module")
def unfolded_export(tmp_path_factory, lite_recipe, make_model):
    wrapper = ExportWrapper(make_model(lite_recipe), (SIZE, SIZE), MAX_DET, lite_recipe.mean, lite_recipe.std,
                            fold_fpn=False)
    path = tmp_path_factory.mktemp("unfolded") / "lite.onnx"
    export_onnx(wrapper, make_meta(lite_recipe, (SIZE, SIZE), MAX_DET), path)
    return path


def test_export_folds_the_level_and_gives_the_same_detections(lite_export, unfolded_export, scene_images):
    folded_ops = {n.op_type for n in onnx.load(str(lite_export.path)).graph.node if n.name.startswith("/backbone/")}
    assert "DepthToSpace" in folded_ops
    # the FPN's convolutions: 128 x 24 x 9 + 4 x 128 x 128 x 4 / 4 per stride-4 pixel instead of 128 x (24 + 128 x 9)
    assert _fpn_macs(lite_export.path) < 0.85 * _fpn_macs(unfolded_export)
    # tracing swapped the module only while it traced: the wrapper's model is torchvision's again
    assert type(lite_export.wrapper.model.backbone.fpn) is FeaturePyramidNetwork
    folded, plain = ort_session(lite_export.path), ort_session(unfolded_export)
    found = 0
    for image in scene_images:
        (boxes, scores, _, masks, num), (boxes0, scores0, _, masks0, num0) = run_ort(folded, image)[:5], \
            run_ort(plain, image)[:5]
        n = int(num[0])
        assert n == int(num0[0])
        found += n
        np.testing.assert_allclose(scores[0, :n], scores0[0, :n], atol=1e-4)
        # equal scores may come in either order: each detection has its twin (box, score, mask) in the other list
        for i in range(n):
            near = np.abs(boxes0[0, :n] - boxes[0, i]).max(axis=1) + np.abs(scores0[0, :n] - scores[0, i])
            j = int(np.argmin(near))
            assert near[j] < 1e-2, (i, boxes[0, i], scores[0, i])
            assert float(np.abs(masks[0, i] - masks0[0, j]).mean()) < 1e-4
    assert found > 20  # the comparison compared detections
