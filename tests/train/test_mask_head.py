"""The light mask head (``ModelRecipe(mask_channels=64)``) and its distillation from a checkpoint's own head."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from maskrt.errors import MaskrtError
from maskrt.train.checkpoint import load_checkpoint, recipe_of, save_checkpoint
from maskrt.train.mask_head import distil_mask_head, is_mask_param
from maskrt.train.models import MASK_HEAD_LIGHT, ModelRecipe, build_model, load_matching

TOOLS = Path(__file__).resolve().parents[2] / "tools"
SIZE = 128


def _recipe(**kw: object) -> ModelRecipe:
    return ModelRecipe(arch="lite", classes=["bubble", "drop"], image_size=SIZE, **kw)  # type: ignore[arg-type]


def _mask_macs(model: torch.nn.Module) -> int:
    """Multiply-adds of the mask head and predictor for one 14x14 RoI."""
    heads = model.roi_heads
    x = torch.zeros(1, 128, 14, 14)
    total = 0

    def count(m: torch.nn.Module, _args: object, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, torch.nn.ConvTranspose2d):
            total += int(_args[0].shape[2] * _args[0].shape[3] * m.weight.numel())  # type: ignore[index]
        elif isinstance(m, torch.nn.Conv2d):
            total += int(out.shape[2] * out.shape[3] * m.weight.numel())

    hooks = [m.register_forward_hook(count) for m in (*heads.mask_head.modules(), *heads.mask_predictor.modules())
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        heads.mask_predictor(heads.mask_head(x))
    for h in hooks:
        h.remove()
    return total


def _teacher(seed: int = 0) -> torch.nn.Module:
    """A random lite model that detects (varied box scores) and draws crisp masks (scaled mask logits)."""
    torch.manual_seed(seed)
    model = build_model(_recipe()).eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.roi_heads.box_predictor.cls_score.weight, std=3.0)
        model.roi_heads.box_predictor.cls_score.bias.zero_()
        model.roi_heads.mask_predictor.mask_fcn_logits.weight.mul_(20)
    return model


def _images(n: int, seed: int = 0) -> list[torch.Tensor]:
    from maskrt.export.scenes import synthetic_scenes

    return [torch.from_numpy(s.image).permute(2, 0, 1).float() / 255 for s in synthetic_scenes(n, (SIZE, SIZE), seed=seed)]


def test_the_light_head_is_narrower_where_the_frame_spends_and_the_same_elsewhere() -> None:
    wide, narrow = build_model(_recipe()), build_model(_recipe(mask_channels=MASK_HEAD_LIGHT))
    assert _mask_macs(wide) / _mask_macs(narrow) > 2.7  # 71 -> 25 million multiply-adds per RoI at 128 channels
    ws, ns = wide.state_dict(), narrow.state_dict()
    assert {k for k in ws if not is_mask_param(k)} == {k for k in ns if not is_mask_param(k)}
    assert all(ws[k].shape == ns[k].shape for k in ws if not is_mask_param(k))
    assert ns["roi_heads.mask_head.0.0.weight"].shape == (64, 128, 3, 3)
    out = narrow.eval()([_images(1)[0]])[0]
    assert out["masks"].shape[1:] == (1, SIZE, SIZE)


def test_the_width_is_in_the_checkpoint_and_checked(tmp_path: Path) -> None:
    recipe = _recipe(mask_channels=64)
    path = save_checkpoint(tmp_path / "n.pt", build_model(recipe), recipe)
    back = recipe_of(load_checkpoint(path))
    assert back.mask_channels == 64
    build_model(back).load_state_dict(load_checkpoint(path)["model"])  # rebuilds the same shapes
    assert ModelRecipe.from_dict({"arch": "lite", "classes": ["b"]}).mask_channels == 0  # older checkpoints
    with pytest.raises(MaskrtError, match="lite-preset option"):
        ModelRecipe(arch="r50-fpn", classes=["b"], mask_channels=64)
    with pytest.raises(MaskrtError, match="not in 8..512"):
        _recipe(mask_channels=4)
    with pytest.raises(MaskrtError, match="mask_channels"):
        recipe_of({"model": {}, "recipe": {"arch": "lite", "classes": ["b"], "mask_channels": "64"}})


def test_distillation_brings_the_narrow_head_to_the_teachers_masks_and_nothing_else_moves() -> None:
    teacher = _teacher()
    student = build_model(_recipe(mask_channels=64))
    load_matching(student, teacher.state_dict())
    before = {k: v.clone() for k, v in student.state_dict().items()}
    report = distil_mask_head(student, teacher, _images(8), steps=150, batch=64, lr=3e-3)
    assert report["heldout_rois"] > 0 and report["fit_rois"] > report["heldout_rois"]
    init, got = report["initial"], report["distilled"]
    # the random narrow head draws other masks; fitted, it draws the teacher's on RoIs of images it never saw
    assert got["mean_mask_iou"] > init["mean_mask_iou"] + 0.2 and got["mean_mask_iou"] > 0.6
    assert got["pixel_disagreement"] < init["pixel_disagreement"] / 2
    after = student.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v) != is_mask_param(k), k  # exactly the mask tensors changed
    # the student's detections are the teacher's (same boxes and scores); only the masks are its own
    image = _images(1, seed=9)[0]
    with torch.no_grad():
        a, b = teacher.eval()([image])[0], student.eval()([image])[0]
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("light_mask_head", TOOLS / "light_mask_head.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_tool_writes_a_narrow_checkpoint_and_refuses_bad_requests(
    tmp_path: Path, shapes_coco: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tool = _tool()
    src = save_checkpoint(tmp_path / "lite.pt", _teacher(), _recipe(), metrics={"mask_mAP50": 0.5})
    out = tmp_path / "light.pt"
    args = ["--data", str(shapes_coco), "--images", "4", "--steps", "20", "--batch", "32"]
    assert tool.main([str(src), *args, "--out", str(out)]) == 0
    got, lite = load_checkpoint(out), load_checkpoint(src)
    assert got["recipe"]["mask_channels"] == 64 and got["mask_distilled"]["images"] == 4
    assert got["mask_distilled"]["copied_tensors"] == sum(not is_mask_param(k) for k in lite["model"])
    for k, v in got["model"].items():
        if not is_mask_param(k):
            assert torch.equal(v, lite["model"][k]), k
    capsys.readouterr()
    before = src.read_bytes()
    assert tool.main([str(src), *args, "--out", str(src)]) == 2  # never over its input
    assert src.read_bytes() == before and "error:" in capsys.readouterr().err
    assert tool.main([str(out), *args, "--out", str(tmp_path / "again.pt")]) == 2  # already 64 wide
    assert "already 64 wide" in capsys.readouterr().err and not (tmp_path / "again.pt").exists()
    assert tool.main([str(src), *args[:2], "--images", "1", "--out", str(tmp_path / "one.pt")]) == 2
    assert not (tmp_path / "one.pt").exists()


def test_a_run_with_another_mask_width_distils_the_head_first_and_later_runs_keep_it(
    tmp_path: Path, tiny_run: Path, shapes_coco: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from maskrt.train.trainer import TrainConfig, train

    caplog.set_level(logging.INFO)
    common: dict = {"data": [str(shapes_coco)], "imgsz": 128, "iters": 1, "batch": 2, "lr": 1e-9, "warmup": 0,
                    "workers": 0, "progress": False}
    train(TrainConfig(weights=str(tiny_run / "last.pt"), mask_channels=64, out=str(tmp_path / "a"), **common))
    assert "mask head distilled from" in caplog.text
    got = load_checkpoint(tmp_path / "a" / "last.pt")
    assert got["recipe"]["mask_channels"] == 64
    assert got["model"]["roi_heads.mask_head.0.0.weight"].shape == (64, 128, 3, 3)
    caplog.clear()
    train(TrainConfig(weights=str(tmp_path / "a" / "last.pt"), out=str(tmp_path / "b"), **common))
    again = load_checkpoint(tmp_path / "b" / "last.pt")
    assert again["recipe"]["mask_channels"] == 64 and "mask head distilled" not in caplog.text
    k = "roi_heads.mask_predictor.mask_fcn_logits.weight"  # loaded, not fresh (lr 1e-9: unchanged to 1e-6)
    assert torch.allclose(again["model"][k], got["model"][k], atol=1e-6)
