"""Parity images (synthetic scenes, user folders with the artifact's letterbox) and output naming."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.errors import MaskrtError
from maskrt.export.pipeline import ExportOptions, output_paths
from maskrt.export.scenes import folder_images, letterbox, synthetic_scenes


def test_synthetic_scenes_have_objects_and_an_empty_last_one():
    scenes = synthetic_scenes(3, (96, 128), seed=1)
    assert [s.image.shape for s in scenes] == [(96, 128, 3)] * 3
    assert all(len(s.masks) >= 2 for s in scenes[:2]) and scenes[2].masks == []
    assert all(s.image.dtype == np.uint8 for s in scenes)
    # objects differ from their background: masked pixels are not the image mean
    s = scenes[0]
    inside = s.image[np.logical_or.reduce(s.masks)].mean()
    assert abs(inside - s.image.mean()) > 5


def test_letterbox_is_top_left_with_padding():
    img = np.full((50, 100, 3), 200, dtype=np.uint8)
    out = letterbox(img, (64, 64), pad_value=114)
    assert out.shape == (64, 64, 3)
    assert (out[:32] == 200).all() and (out[32:] == 114).all()


def test_folder_images_and_errors(tmp_path):
    (tmp_path / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "sub" / "a.png"), np.zeros((40, 80, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.jpg"), np.full((80, 40, 3), 255, np.uint8))
    scenes = folder_images(tmp_path, (64, 64))
    assert len(scenes) == 2 and all(s.image.shape == (64, 64, 3) for s in scenes)
    with pytest.raises(MaskrtError, match="no images"):
        folder_images(tmp_path / "sub" / "..", (64, 64), limit=0)
    with pytest.raises(MaskrtError, match="folder"):
        folder_images(tmp_path / "missing", (64, 64))
    (tmp_path / "c.png").write_bytes(b"not a png")
    with pytest.raises(MaskrtError, match="c.png"):
        folder_images(tmp_path, (64, 64))


@pytest.mark.parametrize(
    "out,half,expected",
    [
        (None, False, ("runs/best.onnx", "runs/best.engine")),
        (None, True, ("runs/best.fp16.onnx", "runs/best.fp16.engine")),
        ("m/x.onnx", False, ("m/x.onnx", "m/x.engine")),
        ("m/x.engine", True, ("m/x.fp16.onnx", "m/x.engine")),
        ("m/x", False, ("m/x.onnx", "m/x.engine")),
    ],
)
def test_output_paths(out, half, expected):
    opts = ExportOptions(out=Path(out) if out else None, half=half)
    assert tuple(str(p) for p in output_paths(Path("runs/best.pt"), opts)) == expected
