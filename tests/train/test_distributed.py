"""DDP under torchrun: two CPU processes (gloo) train a few iterations and write one checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from maskrt.train.checkpoint import load_checkpoint


def test_torchrun_two_cpu_processes(shapes_coco: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
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
        "3",
        "--workers",
        "0",
        "--augment",
        "none",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    ck = load_checkpoint(out / "last.pt")
    assert ck["iteration"] == 3 and not any(k.startswith("module.") for k in ck["model"])
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # 6 images, 1 per batch on each of 2 ranks: an epoch is 3 iterations (one process would need 6)
    assert rows[-1]["iter"] == 3 and rows[-1]["epoch"] == 1.0
    assert done.stdout.count("trained 3 iterations") == 1  # only rank 0 reports
