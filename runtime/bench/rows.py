"""The rows of one ``maskrt bench`` run: every model x backend, timed one after the other or in turns.

Rows of other frame models (the PyTorch eager baseline of ``--torch``, which needs torch and so lives in
:mod:`maskrt.export.eager`) are plugged in from outside as *openers*: callables that return a row and its
model (``None`` when it could not be loaded; the row then says why). Nothing here imports torch.

Example:
    >>> plan = [("lite.onnx", ["onnxruntime", "openvino"])]
    >>> rows = bench_rows(plan, synthetic_frames(4), timing={"warmup": 2, "iters": 20, "seconds": None})
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from maskrt.runtime.bench import memory
from maskrt.runtime.bench.runner import (
    BenchRow,
    FrameModel,
    ProgressFn,
    bench_artifact,
    fill,
    measure,
    measure_interleaved,
    open_artifact,
    open_segmenter,
    reason_of,
)

log = logging.getLogger(__name__)

Plan = Sequence[tuple[str | Path, Sequence[str]]]
"""Each model with the rows (backend names) it is timed on."""
RowOpener = Callable[[], tuple[BenchRow, FrameModel | None]]
"""Loads one more row's model: ``(row, model)``, ``model`` None when it failed (the row says why)."""
TaskFn = Callable[[str, int], ProgressFn]
"""Starts a progress task (description, total frames) and returns its ``(done, total)`` callback."""


def _no_task(description: str, total: int) -> ProgressFn:
    return lambda done, total: None


def bench_rows(
    plan: Plan,
    frames: Sequence[np.ndarray],
    *,
    timing: dict[str, Any],
    threads: int | None = None,
    conf: float | None = None,
    extra: Sequence[tuple[str, RowOpener]] = (),
    interleave: bool = False,
    stream: str | None = None,
    task: TaskFn = _no_task,
) -> list[BenchRow]:
    """Time every row of ``plan`` and of ``extra`` (``(description, opener)`` pairs) on ``frames``.

    Args:
        plan: models and their backend rows.
        frames: the frames every row rotates among.
        timing: ``warmup``, ``iters`` and ``seconds`` of :func:`~maskrt.runtime.bench.runner.measure`.
        threads: CPU threads of every row.
        conf: score threshold of every row (None: each model's own).
        extra: rows of other frame models, e.g. the PyTorch eager baseline, timed after the artifacts.
        interleave: load every row first, then time them in turns frame by frame (ratio-safe on a shared
            machine; peak RSS is then the process's, not per row).
        stream: a ``maskrt run`` source: each model x backend also gets an end-to-end row through the
            threaded stream pipeline (:func:`~maskrt.runtime.bench.stream_row.bench_stream`).
        task: progress reporting.
    """
    from maskrt.runtime.bench.stream_row import bench_stream

    run = _interleaved if interleave else _sequential
    rows = run(plan, frames, timing, threads, conf, extra, task)
    for model, model_rows in plan if stream is not None else []:
        for b in model_rows:
            rows.append(bench_stream(model, b, str(stream), threads=threads, conf=conf, max_frames=timing["iters"],
                                     progress=task(f"{Path(model).name} {b} stream", timing["iters"])))
    return rows


def _sequential(
    plan: Plan, frames: Sequence[np.ndarray], timing: dict[str, Any], threads: int | None, conf: float | None,
    extra: Sequence[tuple[str, RowOpener]], task: TaskFn,
) -> list[BenchRow]:
    """One row after the other (each row's peak RSS is its own)."""
    rows = []
    for model, model_rows in plan:
        for b in model_rows:
            progress = task(f"{Path(model).name} {b}", timing["iters"])
            rows.append(bench_artifact(model, b, frames, threads=threads, conf=conf, **timing, progress=progress))
    for description, opener in extra:
        memory.reset_peak_rss()
        row, frame_model = opener()
        if frame_model is not None:
            progress = task(description, timing["iters"])
            try:
                fill(row, measure(frame_model, frames, **timing, progress=progress))
                _gpu_memory(row, frame_model)
            except Exception as exc:  # reported as a row like every other failure
                row.status, row.reason = "failed", reason_of(exc)
                log.debug("%s row failed", description, exc_info=True)
        rows.append(row)
    return rows


def _interleaved(
    plan: Plan, frames: Sequence[np.ndarray], timing: dict[str, Any], threads: int | None, conf: float | None,
    extra: Sequence[tuple[str, RowOpener]], task: TaskFn,
) -> list[BenchRow]:
    """Load every row's model, then time them in turns frame by frame."""
    # rows share the cores in turns: ONNX Runtime's idle workers must not spin through the next row's frame
    quiet_loader = partial(open_segmenter, spin=False)
    rows, entries = [], []
    for model, model_rows in plan:
        for b in model_rows:
            row, seg = open_artifact(model, b, threads=threads, conf=conf, loader=quiet_loader)
            rows.append(row)
            if seg is not None:
                entries.append((row, seg))
    for _, opener in extra:
        row, frame_model = opener()
        rows.append(row)
        if frame_model is not None:
            entries.append((row, frame_model))
    if not entries:
        return rows
    progress = task(f"{len(entries)} rows in turns", timing["iters"])
    try:
        results = measure_interleaved([m for _, m in entries], frames, **timing, progress=progress)
    except Exception as exc:  # one model failing mid-run stops the round: every row says so
        log.debug("interleaved run failed", exc_info=True)
        for row, _ in entries:
            row.status, row.reason = "failed", f"interleaved run stopped: {reason_of(exc)}"
        return rows
    for (row, frame_model), result in zip(entries, results):
        fill(row, result, rss=False)
        _gpu_memory(row, frame_model)
    return rows


def _gpu_memory(row: BenchRow, model: Any) -> None:
    """The model's own peak GPU memory, when it reports one (``gpu_memory_mb()``, as the eager adapter does)."""
    report = getattr(model, "gpu_memory_mb", None)
    value = report() if callable(report) else None
    if value is not None:
        row.gpu_mem_mb = value
