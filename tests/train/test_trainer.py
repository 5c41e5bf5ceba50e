"""Training runs end to end: train, checkpoint, resume (also after SIGKILL), evaluate, non-finite guard."""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from maskrt.errors import MaskrtError
from maskrt.train import engine
from maskrt.train.checkpoint import load_checkpoint, load_model
from maskrt.train.trainer import TrainConfig, train


def test_train_save_resume_evaluate(tiny_run: Path, shapes_val: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    assert (out / "curves.png").stat().st_size > 1000 and (out / "best.pt").is_file()
    ck = load_checkpoint(out / "last.pt")
    assert (
        ck["iteration"] == 3 and ck["recipe"]["classes"] == ["bubble"] and ck["recipe"]["image_size"] == 128
    )
    for key in ("optimizer", "lr_scheduler", "rng", "args", "metrics"):
        assert key in ck
    assert math.isfinite(ck["metrics"]["segm"]["AP"])
    # resume and extend to 5 iterations: continues from 3, the log has each iteration once
    r2 = train(TrainConfig(out=str(out), resume=True, iters=5, workers=0, progress=False))
    assert r2.iterations == 5
    ck2 = load_checkpoint(r2.last)
    assert ck2["iteration"] == 5 and ck2["lr_scheduler"]["last_epoch"] == 5
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    iters = [r["iter"] for r in rows if "loss" in r]
    assert (
        iters == sorted(set(iters))
        and iters[-1] == 5
        and all(math.isfinite(r["loss"]) for r in rows if "loss" in r)
    )
    # the checkpoint alone rebuilds the model; COCO metrics are finite numbers in [0, 1]
    model, recipe, _ = load_model(r2.last)
    assert recipe.classes == ["bubble"] and not model.training
    m = r2.metrics
    for t in ("bbox", "segm"):
        assert set(m[t]) == {"AP", "AP50", "AP75", "APs", "APm", "APl"}
        assert all(math.isfinite(v) and -1 <= v <= 1 for v in m[t].values())
    assert "bubble" in m["per_class"]


def test_interrupted_run_resumes_from_last_checkpoint(
    shapes_val: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "interrupted"
    cfg = {
        "data": [str(shapes_val)],
        "val_split": 0.0,
        "imgsz": 96,
        "iters": 4,
        "batch": 1,
        "workers": 0,
        "out": str(out),
        "save_every": 2,
        "log_every": 1,
        "progress": False,
        "augment": "none",
    }
    real = engine.train_one_epoch

    def dies_at_3(*args, on_step, **kw):  # type: ignore[no-untyped-def]
        def step(it: int, values: dict[str, float]) -> None:
            on_step(it, values)
            if it == 3:  # logged iteration 3, but its checkpoint (every 2) is not written
                raise KeyboardInterrupt

        return real(*args, on_step=step, **kw)

    monkeypatch.setattr(engine, "train_one_epoch", dies_at_3)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**cfg))  # type: ignore[arg-type]
    monkeypatch.setattr(engine, "train_one_epoch", real)
    assert load_checkpoint(out / "last.pt")["iteration"] == 2
    r = train(TrainConfig(out=str(out), resume=True, workers=0, progress=False))
    assert r.iterations == 4 and load_checkpoint(out / "last.pt")["iteration"] == 4
    iters = [json.loads(x)["iter"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert iters == [1, 2, 3, 4]  # iteration 3 of the dead run was dropped and redone once


@pytest.mark.slow
def test_kill_mid_run_then_resume_reaches_same_step_count(shapes_coco: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "maskrt",
        "-q",
        "train",
        "--data",
        str(shapes_coco),
        "--val-split",
        "0",
        "--imgsz",
        "96",
        "--batch",
        "1",
        "--iters",
        "40",
        "--save-every",
        "1",
        "--workers",
        "0",
        "--augment",
        "none",
        "--no-progress",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = -1
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if (out / "last.pt").is_file():
                seen = int(load_checkpoint(out / "last.pt")["iteration"])
                if seen >= 2:
                    break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert 2 <= seen < 40, f"run did not reach a checkpoint before the kill (saw {seen})"
    killed_at = int(load_checkpoint(out / "last.pt")["iteration"])  # loads: not corrupt
    assert killed_at < 40
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "maskrt",
            "-q",
            "train",
            "--out",
            str(out),
            "--resume",
            "--iters",
            "4",
            "--workers",
            "0",
            "--no-progress",
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ck = load_checkpoint(out / "last.pt")
    assert ck["iteration"] == 4
    assert not list(out.glob(".*.tmp*")), "temporary checkpoint files left behind"
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    iters = [r["iter"] for r in rows if "loss" in r]
    assert iters == sorted(set(iters)) and iters[-1] == 4


class _NanModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, images, targets):  # type: ignore[no-untyped-def]
        return {"loss_mask": self.w * float("nan"), "loss_box_reg": self.w * 1.0}


def test_non_finite_loss_stops_with_a_message() -> None:
    model = _NanModel()
    opt = engine.build_optimizer(model, "sgd", 0.1)
    sched = engine.build_scheduler(opt, 10, 0, "cosine")
    batches = [([torch.zeros(3, 8, 8)], [{"boxes": torch.zeros(0, 4)}])]
    with pytest.raises(MaskrtError, match=r"loss became nan at iteration 8 .*loss_mask=nan.*--lr"):
        engine.train_one_epoch(model, opt, sched, batches, torch.device("cpu"), 7)
    assert float(model.w.detach()) == 1.0  # nothing was stepped


def test_schedule_warms_up_then_decays() -> None:
    f = [engine.lr_factor(i, 100, 10, "cosine") for i in range(101)]
    assert f[0] < 0.01 and abs(f[10] - 1) < 1e-9 and f[100] == pytest.approx(0.01)
    assert all(a <= b for a, b in itertools.pairwise(f[:11])) and all(a >= b for a, b in itertools.pairwise(f[10:]))
    s = [engine.lr_factor(i, 90, 0, "step") for i in (0, 59, 60, 80)]
    assert s == pytest.approx([1, 1, 0.1, 0.01])
    with pytest.raises(MaskrtError, match="schedule"):
        engine.lr_factor(0, 10, 0, "linear")


def test_cli_eval_and_user_errors(tiny_run: Path, shapes_val: Path, tmp_path: Path) -> None:
    from maskrt.cli import main

    res = tmp_path / "results.json"
    metrics = tmp_path / "metrics.json"
    code = main(
        [
            "eval",
            str(tiny_run / "last.pt"),
            "--data",
            f"{shapes_val},{shapes_val}",
            "--json",
            str(res),
            "--metrics",
            str(metrics),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    results = json.loads(res.read_text())
    assert all(
        isinstance(r["segmentation"]["counts"], str) and r["image_id"] in (1, 2, 3, 4) for r in results
    )
    m = json.loads(metrics.read_text())
    assert m["images"] == 4 and m["instances"] == m["per_class"]["bubble"]["instances"] > 0
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x")]) == 2
    assert (
        main(["train", "--data", str(shapes_val), "--augment", "sparkle", "--out", str(tmp_path / "y")]) == 2
    )
    assert (
        main(
            [
                "train",
                "--data",
                str(shapes_val),
                "--epochs",
                "1",
                "--iters",
                "1",
                "--out",
                str(tmp_path / "z"),
            ]
        )
        == 2
    )
    assert main(["eval", str(tmp_path / "nothing.pt"), "--data", str(shapes_val)]) == 2


@pytest.fixture(autouse=True)
def _quiet_threads() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")


def test_cli_eval_at_another_size_and_max_det(tiny_run: Path, shapes_val: Path, tmp_path: Path) -> None:
    from collections import Counter

    from maskrt.cli import main

    res = tmp_path / "results.json"
    args = ["eval", str(tiny_run / "last.pt"), "--data", str(shapes_val), "--device", "cpu", "--json", str(res)]
    assert main([*args, "--imgsz", "96", "--max-det", "2"]) == 0
    per_image = Counter(r["image_id"] for r in json.loads(res.read_text()))
    assert per_image and max(per_image.values()) <= 2
    assert main([*args, "--imgsz", "8"]) == 2
    assert main([*args, "--max-det", "0"]) == 2
