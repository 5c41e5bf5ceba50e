"""A checkpoint with an empty or broken recipe (or weights that are not tensors) is one line naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.train.checkpoint import load_checkpoint, load_model
from maskrt.train.weights_source import read_weights

GOOD = {"arch": "lite", "classes": ["bubble"], "image_size": 64}

BROKEN: dict[str, tuple[Any, str]] = {
    "empty": ({}, "the checkpoint's recipe is empty"),
    "none": (None, "the checkpoint's recipe is empty"),
    "text": ("lite", "the checkpoint's recipe is a str, not a dict"),
    "no-classes": ({"arch": "lite"}, "the checkpoint's recipe lacks classes"),
    "classes-string": ({**GOOD, "classes": "bubble"}, "recipe key 'classes' is 'bubble', expected a non-empty list"),
    "classes-empty-name": ({**GOOD, "classes": ["bubble", ""]}, "recipe key 'classes'"),
    "size-text": ({**GOOD, "image_size": "big"}, "recipe key 'image_size' is 'big', expected a positive integer"),
    "size-bool": ({**GOOD, "image_size": True}, "recipe key 'image_size'"),
    "mean-text": ({**GOOD, "mean": "abc"}, "recipe key 'mean' is 'abc', expected three numbers"),
    "std-zero": ({**GOOD, "std": [0.2, 0.0, 0.2]}, "recipe key 'std'"),
    "anchors": ({**GOOD, "anchor_sizes": [[16], "x"]}, "recipe key 'anchor_sizes'"),
    "max-det": ({**GOOD, "max_det": -1}, "recipe key 'max_det' is '-1', expected a positive integer"),
    "arch-unknown": ({**GOOD, "arch": "yolo"}, "unknown architecture 'yolo'"),
}


def _ckpt(path: Path, recipe: Any, model: Any = None) -> Path:
    torch.save({"model": {"w": torch.zeros(2)} if model is None else model, "recipe": recipe}, path)
    return path


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_recipe_is_one_maskrt_error_naming_file_and_key(tmp_path: Path, case: str) -> None:
    recipe, expected = BROKEN[case]
    path = _ckpt(tmp_path / "broken.pt", recipe)
    for load in (load_checkpoint, load_model, read_weights):
        with pytest.raises(MaskrtError) as info:
            load(path)
        assert str(info.value).startswith(f"{path}: ") and expected in str(info.value)


@pytest.mark.parametrize("model", [{"w": [1.0, 2.0]}, {}, "weights"], ids=["list", "empty", "text"])
def test_model_entry_that_is_not_tensors(tmp_path: Path, model: Any) -> None:
    path = _ckpt(tmp_path / "odd.pt", GOOD, model)
    with pytest.raises(MaskrtError, match=r"odd\.pt: the checkpoint's 'model' entry is not a state dict of tensors"):
        load_checkpoint(path)


def test_weights_of_another_model_are_one_line(tmp_path: Path) -> None:
    path = _ckpt(tmp_path / "other.pt", GOOD, {"backbone.body.0.weight": torch.zeros(1)})
    with pytest.raises(MaskrtError, match=r"other\.pt: the weights do not fit the lite model of its recipe"):
        load_model(path)


@pytest.mark.parametrize("case", ["empty", "classes-string", "size-text"])
def test_cli_export_and_eval_answer_one_line(
    tmp_path: Path, shapes_coco: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    path = _ckpt(tmp_path / "broken.pt", BROKEN[case][0])
    for argv in (["export", str(path), "--imgsz", "64", "--out", str(tmp_path / "m.onnx")],
                 ["eval", str(path), "--data", str(shapes_coco), "--device", "cpu"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(path) in err[0] and BROKEN[case][1] in err[0]
