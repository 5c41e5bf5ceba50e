"""Reading a checkpoint never runs code from it; real checkpoints (trainer's, bundled, numpy 1 era) still load.

Each hostile file carries a ``__reduce__`` payload that would create a marker file. Through every command
that reads a ``.pt`` the marker must never appear, and the command answers one line naming the file.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import shlex
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.train.checkpoint import load_checkpoint, load_model, safe_load, save_checkpoint
from maskrt.train.models import ModelRecipe, build_model
from maskrt.train.weights_source import bundled_path, read_weights


class _Shell:
    """Pickles as ``os.system("touch MARKER")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


class _Open:
    """Pickles as ``open(MARKER, "w")``: no shell, just a file created while loading."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.open, (str(self.marker), "w"))


def _hostile(path: Path, marker: Path, kind: str) -> Path:
    """A maskrt-looking checkpoint (real tensors, a valid recipe) whose ``metrics`` entry is the payload."""
    payload = (_Open if kind.endswith("open") else _Shell)(marker)
    ckpt = {
        "model": {"w": torch.zeros(3)},
        "recipe": {"arch": "lite", "classes": ["bubble"], "image_size": 64},
        "metrics": payload,
        "iteration": 1,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind.startswith("torch"):
        torch.save(ckpt, path)
    else:  # a plain pickle, protocol 2 (what torch's legacy reader parses) or the default (4/5)
        with open(path, "wb") as f:
            pickle.dump(ckpt, f, protocol=2 if kind.startswith("pickle2") else pickle.DEFAULT_PROTOCOL)
    return path


KINDS = ["torch-shell", "torch-open", "pickle2-shell", "pickle-open"]


def _one_line_refusal(err: str, path: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] and "refused: not a maskrt checkpoint / unsafe content" in lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("kind", KINDS)
def test_library_loaders_refuse_without_running_the_payload(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "PWNED"
    bad = _hostile(tmp_path / "bad.pt", marker, kind)
    for load in (safe_load, load_checkpoint, load_model, read_weights):
        with pytest.raises(MaskrtError, match="refused: not a maskrt checkpoint / unsafe content") as info:
            load(bad)
        assert str(bad) in str(info.value)
    assert not marker.exists()
    if kind.startswith("torch"):  # torch's own reader names what the pickle would build
        expected = "posix.system" if "shell" in kind else "io.open"
        with pytest.raises(MaskrtError, match=f"it would build {expected}"):
            safe_load(bad)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", ["export", "eval", "train --weights", "train --resume"])
def test_cli_refuses_hostile_checkpoint_in_one_line(
    tmp_path: Path, shapes_coco: Path, capsys: pytest.CaptureFixture[str], command: str, kind: str
) -> None:
    marker = tmp_path / "PWNED"
    run = tmp_path / "run"
    bad = _hostile((run / "last.pt") if command == "train --resume" else (tmp_path / "shared.pt"), marker, kind)
    args = {
        "export": ["export", str(bad), "--imgsz", "64", "--out", str(tmp_path / "m.onnx")],
        "eval": ["eval", str(bad), "--data", str(shapes_coco), "--device", "cpu"],
        "train --weights": ["train", "--data", str(shapes_coco), "--weights", str(bad), "--imgsz", "64",
                            "--iters", "1", "--workers", "0", "--device", "cpu", "--out", str(run),
                            "--no-progress"],
        "train --resume": ["train", "--out", str(run), "--resume", "--workers", "0", "--device", "cpu",
                           "--no-progress"],
    }[command]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    _one_line_refusal(err, bad)
    assert not marker.exists()
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("kind", ["torch-shell", "pickle-open"])
def test_bench_torch_row_refuses_hostile_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    marker = tmp_path / "PWNED"
    bad = _hostile(tmp_path / "shared.pt", marker, kind)
    out = tmp_path / "b.json"
    code = main(["-q", "bench", "--torch", str(bad), "--torch-device", "cpu", "--imgsz", "64", "--iters", "1",
                 "--warmup", "0", "--frames", "1", "--json", str(out)])
    assert not marker.exists()
    assert code == 2  # no row could be measured
    (row,) = json.loads(out.read_text())["rows"]
    assert row["status"] == "failed"
    assert row["reason"].startswith(f"{bad}: refused: not a maskrt checkpoint / unsafe content")
    assert f"{bad}: refused: not a maskrt checkpoint" in capsys.readouterr().err


def test_text_and_truncated_files_are_unreadable_not_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(MaskrtError, match=r"notes\.pt: cannot read checkpoint \(not a PyTorch file\)"):
        load_checkpoint(text)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(bundled_path("bubbles-lite").read_bytes()[:4096])
    with pytest.raises(MaskrtError, match=r"cut\.pt: cannot read checkpoint \(RuntimeError\); is the file complete"):
        load_checkpoint(cut)


def test_trainer_last_pt_loads_safely_and_resumes(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    ckpt = load_checkpoint(run / "last.pt")
    # everything a resume needs came back through weights_only, numpy's RNG state included
    assert {"optimizer", "lr_scheduler", "scaler", "rng", "args"} <= set(ckpt)
    name, keys, *_ = ckpt["rng"]["numpy"]
    assert name == "MT19937" and isinstance(keys, np.ndarray) and keys.dtype == np.uint32 and keys.shape == (624,)
    assert isinstance(ckpt["rng"]["python"], tuple) and ckpt["rng"]["torch"].dtype == torch.uint8
    assert ckpt["iteration"] == 3
    code = main(["train", "--out", str(run), "--resume", "--iters", "4", "--workers", "0", "--device", "cpu",
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert load_checkpoint(run / "last.pt")["iteration"] == 4


def test_bundled_checkpoint_loads_for_fine_tuning_and_export() -> None:
    model, recipe, _ = load_model(bundled_path("bubbles-lite"))
    assert recipe.arch == "lite" and recipe.classes == ["bubble", "droplet"]
    state, src = read_weights("bubbles-lite")
    assert src == recipe and len(state) == len(model.state_dict())


def _as_numpy1(src: Path, dst: Path) -> None:
    """Rewrite a torch zip checkpoint as numpy 1 pickled it (``numpy.core.multiarray`` for ``numpy._core``)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(item, data)


def test_numpy1_era_checkpoint_with_numpy_arrays_and_scalars_loads(tmp_path: Path) -> None:
    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=64)
    rng = np.random.get_state()
    src = save_checkpoint(tmp_path / "new.pt", build_model(recipe), recipe, rng={"numpy": rng},
                          metrics={"segm": {"AP": np.float64(0.25)}, "count": np.int64(7)})
    _as_numpy1(src, tmp_path / "old.pt")
    ckpt = load_checkpoint(tmp_path / "old.pt")
    assert ckpt["metrics"] == {"segm": {"AP": 0.25}, "count": 7}
    assert ckpt["rng"]["numpy"][0] == "MT19937" and np.array_equal(ckpt["rng"]["numpy"][1], rng[1])


def test_torchvision_references_checkpoint_with_namespace_args_loads(tmp_path: Path) -> None:
    import argparse

    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=64)
    state = build_model(recipe).state_dict()
    path = tmp_path / "model_25.pth"
    buf = io.BytesIO()
    torch.save({"model": state, "optimizer": {}, "epoch": 25, "args": argparse.Namespace(lr=0.02, data="x")}, buf)
    path.write_bytes(buf.getvalue())
    loaded, src = read_weights(path)
    assert src is None and set(loaded) == set(state)


def _bundle_tool() -> Any:
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "tools" / "bundle_model.py"
    spec = importlib.util.spec_from_file_location("bundle_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bundle_tool_refuses_hostile_checkpoint_and_compacts_a_real_one(tmp_path: Path) -> None:
    from maskrt.train.checkpoint import compact_checkpoint  # what tools/bundle_model.py compacts with

    tool = _bundle_tool()
    marker = tmp_path / "PWNED"
    bad = _hostile(tmp_path / "best.pt", marker, "torch-shell")
    with pytest.raises(MaskrtError, match="refused: not a maskrt checkpoint / unsafe content"):
        compact_checkpoint(bad, tmp_path / "small.pt", tool.ARTIFACT_MAX_DET)
    assert not marker.exists() and not (tmp_path / "small.pt").exists()
    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=64, max_det=550)
    good = save_checkpoint(tmp_path / "good.pt", build_model(recipe), recipe, iteration=7)
    compact_checkpoint(good, tmp_path / "small.pt", tool.ARTIFACT_MAX_DET)
    small = load_checkpoint(tmp_path / "small.pt")
    assert small["recipe"]["max_det"] == tool.ARTIFACT_MAX_DET == 300 and small["source"]["iteration"] == 7
    assert all(v.dtype != torch.float32 for v in small["model"].values())
