"""bench_rows: a frame model plugged in from outside (the eager row's way) is timed like the artifacts' rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from maskrt.runtime.bench.rows import bench_rows
from maskrt.runtime.bench.runner import TORCH_BACKEND, BenchRow


class Plugged:
    """A frame model that reports its own GPU memory, as the eager adapter does on CUDA."""

    def __init__(self) -> None:
        self.calls = 0
        self.timings: dict[str, float] = {}

    def __call__(self, frame: np.ndarray) -> Any:
        self.calls += 1
        self.timings = {"preprocess": 0.1, "infer": 1.0, "postprocess": 0.2}
        return []

    def gpu_memory_mb(self) -> float:
        return 42.0


def _opener(model: Plugged | None, reason: str = "") -> Any:
    def open_row() -> tuple[BenchRow, Plugged | None]:
        row = BenchRow(model="m.pt", backend=TORCH_BACKEND)
        if model is None:
            row.status, row.reason = "unavailable", reason
        return row, model

    return open_row


@pytest.mark.parametrize("interleave", [False, True])
def test_plugged_rows_are_timed_and_report_their_gpu_memory(interleave: bool) -> None:
    model = Plugged()
    frames = [np.zeros((16, 16, 3), np.uint8)] * 2
    tasks: list[str] = []
    rows = bench_rows([], frames, timing={"warmup": 1, "iters": 3, "seconds": None}, interleave=interleave,
                      extra=[("eager", _opener(model)), ("gone", _opener(None, "torch is not installed"))],
                      task=lambda d, total: tasks.append(d) or (lambda done, total: None))
    assert [(r.backend, r.status) for r in rows] == [(TORCH_BACKEND, "ok"), (TORCH_BACKEND, "unavailable")]
    assert rows[0].frames == 3 and model.calls == 4 and rows[0].gpu_mem_mb == 42.0
    assert rows[1].reason == "torch is not installed"
    assert tasks == (["1 rows in turns"] if interleave else ["eager"])
