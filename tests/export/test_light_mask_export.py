"""A lite model with the light (64-channel) mask head exports and runs like any other."""
from __future__ import annotations

import onnx
from onnx import numpy_helper

from maskrt.cli import main
from maskrt.export.scenes import synthetic_scenes
from maskrt.runtime import Segmenter
from maskrt.train.checkpoint import save_checkpoint
from maskrt.train.models import ModelRecipe

SIZE = 64


def test_a_light_mask_head_exports_with_parity_and_segments(tmp_path, make_model) -> None:  # type: ignore[no-untyped-def]
    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=SIZE, mask_channels=64)
    ckpt = save_checkpoint(tmp_path / "light.pt", make_model(recipe), recipe, metrics={})
    out = tmp_path / "light.onnx"
    assert main(["export", str(ckpt), "--imgsz", str(SIZE), "--max-det", "20", "--out", str(out),
                 "--parity-images", "2"]) == 0  # exit 0 only when ONNX Runtime matches PyTorch
    graph = onnx.load(str(out)).graph
    inits = {t.name: t for t in graph.initializer}
    mask_convs = [n for n in graph.node if n.op_type == "Conv" and n.name.startswith("/roi_heads/mask_head/")]
    widths = sorted(numpy_helper.to_array(inits[n.input[1]]).shape[0] for n in mask_convs if n.input[1] in inits)
    assert len(mask_convs) == 2 and widths == [64, 64]
    seg = Segmenter(out, conf=0.3)
    image = synthetic_scenes(1, (SIZE, SIZE), seed=2)[0].image
    result = seg(image)
    assert len(result) > 0 and result.masks.shape[1:] == image.shape[:2]
