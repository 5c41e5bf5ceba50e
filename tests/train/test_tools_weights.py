"""tools/interpolate_weights.py and tools/lite_fast_from_lite.py on a tiny run: values, refusals, exit codes."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from maskrt.train.checkpoint import load_checkpoint, save_checkpoint
from maskrt.train.models import ModelRecipe, build_model

TOOLS = Path(__file__).resolve().parents[2] / "tools"


def _tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pair(tmp_path: Path, change_bn: bool = False) -> tuple[Path, Path]:
    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=128)
    torch.manual_seed(0)
    a = build_model(recipe)
    b = build_model(recipe)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        for name, p in b.named_parameters():
            p.add_(1.0 if name.startswith("roi_heads.") else 0.5)
        if change_bn:
            next(m for m in b.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_mean.add_(1.0)
    return save_checkpoint(tmp_path / "a.pt", a, recipe), save_checkpoint(tmp_path / "b.pt", b, recipe)


def test_interpolation_is_the_weighted_mean_of_the_two(tmp_path: Path) -> None:
    tool = _tool("interpolate_weights")
    pa, pb = _pair(tmp_path)
    assert tool.main([str(pa), str(pb), "--alpha", "0.25", "--out", str(tmp_path / "s.pt")]) == 0
    a, b, s = (load_checkpoint(p)["model"] for p in (pa, pb, tmp_path / "s.pt"))
    k = "roi_heads.box_predictor.cls_score.weight"
    assert torch.allclose(s[k], a[k] + 0.25, atol=1e-6) and torch.allclose(s[k], 0.75 * a[k] + 0.25 * b[k], atol=1e-6)
    assert torch.equal(s["backbone.body.0.1.num_batches_tracked"], b["backbone.body.0.1.num_batches_tracked"])
    model = build_model(ModelRecipe.from_dict(load_checkpoint(tmp_path / "s.pt")["recipe"]))
    model.load_state_dict(s)  # a complete checkpoint of the same model


def test_interpolation_refuses_what_it_cannot_average(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tool = _tool("interpolate_weights")
    pa, pb = _pair(tmp_path, change_bn=True)
    out = tmp_path / "s.pt"
    assert tool.main([str(pa), str(pb), "--alpha", "0.5", "--out", str(out)]) == 2
    assert "BatchNorm statistics differ" in capsys.readouterr().err and not out.exists()
    assert tool.main([str(pa), str(pb), "--alpha", "0.5", "--out", str(out), "--allow-bn-change"]) == 0
    assert tool.main([str(pa), str(pb), "--alpha", "1.5", "--out", str(tmp_path / "t.pt")]) == 2
    before = pb.read_bytes()
    assert tool.main([str(pa), str(pb), "--alpha", "0.5", "--out", str(pb)]) == 2  # never over an input
    assert pb.read_bytes() == before
    other = build_model(ModelRecipe(arch="lite", classes=["bubble", "droplet"], image_size=128))
    po = save_checkpoint(tmp_path / "o.pt", other, ModelRecipe(arch="lite", classes=["bubble", "droplet"],
                                                                image_size=128))
    assert tool.main([str(pa), str(po), "--alpha", "0.5", "--out", str(tmp_path / "u.pt")]) == 2
    assert "differ in classes" in capsys.readouterr().err


def test_lite_fast_from_lite_keeps_every_other_weight(tmp_path: Path, shapes_coco: Path) -> None:
    tool = _tool("lite_fast_from_lite")
    pa, _ = _pair(tmp_path)
    out = tmp_path / "fast.pt"
    assert tool.main([str(pa), "--data", str(shapes_coco), "--images", "2", "--steps", "20", "--out", str(out)]) == 0
    fast, lite = load_checkpoint(out), load_checkpoint(pa)
    assert fast["recipe"]["arch"] == "lite-fast" and fast["distilled"]["images"] == 2
    for k, v in fast["model"].items():
        if not k.startswith(("backbone.fpn.layer_blocks.0.", "rpn.head.conv_fine.")):
            assert torch.equal(v, lite["model"][k]), k
    assert fast["distilled"]["fpn"]["output_error"] < fast["distilled"]["fpn"]["output_error_factorised"]
    assert tool.main([str(out), "--data", str(shapes_coco), "--out", str(tmp_path / "again.pt")]) == 2  # not lite
