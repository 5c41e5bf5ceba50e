"""Shared pieces of the scaling benchmarks: tiny random-weight models, paired ONNX Runtime / eager rows.

Not a benchmark itself (``run_all.py`` skips ``*_common.py``). Models are built with random weights
(speed does not depend on what the weights learned, only on how many detections they produce) and
cached in ``benchmarks/results/models/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskrt.runtime.bench import BenchRow, results_document, system_info, write_json
from maskrt.runtime.bench.report import to_markdown

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = RESULTS / "models"
log = logging.getLogger("maskrt.benchmarks")


def common_args(description: str, iters: int = 5) -> argparse.ArgumentParser:
    """Options every scaling script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--iters", type=int, default=iters, help="timed frames per row")
    p.add_argument("--warmup", type=int, default=1, help="untimed frames per row")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all available cores)")
    p.add_argument("--backend", default="ort-cpu", help="bench backend of the runtime rows (ort-cpu, ort-cuda, ...)")
    p.add_argument("--device", default="cpu", help="device of the PyTorch eager rows (cpu, cuda)")
    p.add_argument("--out", type=Path, default=None, help="JSON output (default: benchmarks/results/<script>.json)")
    p.add_argument("--quick", action="store_true", help="fewer sizes/counts and frames (a smoke run)")
    return p


def _in_subprocess(call: str) -> None:
    """Run ``call`` (Python, with this module imported) in a child process, so that torch's memory stays out
    of this process and the runtime rows' peak RSS is their own."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import scaling_common as c; c.{call}"
    subprocess.run([sys.executable, "-c", code], check=True)


def checkpoint(arch: str = "lite", seed: int = 0) -> Path:
    """A random-weight one-class checkpoint of ``arch`` (cached; built in a child process)."""
    path = MODELS / f"{arch}-seed{seed}.pt"
    if not path.is_file():
        _in_subprocess(f"_make_checkpoint({arch!r}, {seed}, {str(path)!r})")
    return path


def _make_checkpoint(arch: str, seed: int, path: str) -> None:
    import torch

    from maskrt.train.checkpoint import save_checkpoint
    from maskrt.train.models import ModelRecipe, build_model

    torch.manual_seed(seed)
    recipe = ModelRecipe(arch=arch, classes=["bubble"], image_size=512)
    save_checkpoint(path, build_model(recipe).eval(), recipe)


def exported(ckpt: Path, size: int, max_det: int = 100) -> Path:
    """The checkpoint exported to a static ``size`` x ``size`` ONNX model with ``max_det`` rows (cached)."""
    path = MODELS / f"{ckpt.stem}-{size}-d{max_det}.onnx"
    if not path.is_file():
        _in_subprocess(f"_export({str(ckpt)!r}, {size}, {max_det}, {str(path)!r})")
    return path


def _export(ckpt: str, size: int, max_det: int, path: str) -> None:
    from maskrt.export.metadata import make_meta
    from maskrt.export.onnx_export import export_onnx
    from maskrt.export.wrapper import ExportWrapper
    from maskrt.train.checkpoint import load_model

    model, recipe, _ = load_model(ckpt)
    wrapper = ExportWrapper(model, (size, size), max_det=max_det, mean=recipe.mean, std=recipe.std)
    export_onnx(wrapper, make_meta(recipe, (size, size), max_det), path)


def eager_row(ckpt: Path, frames: Sequence[np.ndarray], label: str, *, size: int, conf: float, max_det: int,
              iters: int, warmup: int, threads: int | None, device: str = "cpu", half: bool = False) -> BenchRow:
    """The PyTorch eager row (torchvision's own resize, network and full-resolution paste + the same draw)."""
    from maskrt.export.eager import TorchEager
    from maskrt.runtime.bench import memory
    from maskrt.runtime.bench.runner import TORCH_BACKEND, fill, measure, reason_of

    row = BenchRow(model=label, backend=TORCH_BACKEND, input_size=[size, size])
    memory.reset_peak_rss()
    try:
        eager = TorchEager(ckpt, input_size=size, score_threshold=conf, max_det=max_det, device=device,
                           threads=threads, half=half)
        row.device, row.precision = eager.name, "fp16" if eager.half else "fp32"
        fill(row, measure(eager, frames, warmup=warmup, iters=iters))
    except Exception as exc:  # noqa: BLE001  (a failed row is a result too)
        row.status, row.reason = "failed", reason_of(exc)
    return row


def pair_rows(onnx: Path, ckpt: Path, frames: Sequence[np.ndarray], label: str, *, backend: str, size: int,
              conf: float, max_det: int, iters: int, warmup: int, threads: int | None,
              device: str = "cpu") -> list[BenchRow]:
    """The runtime row and the eager row of one model, timed in turns frame by frame (ratio-safe under load).

    Peak RSS is not per row here (one process holds both); ``maskrt bench`` without ``--interleave`` gives it.
    """
    from functools import partial

    from maskrt.export.eager import TorchEager
    from maskrt.runtime.bench.runner import (
        TORCH_BACKEND,
        fill,
        measure_interleaved,
        open_artifact,
        open_segmenter,
        reason_of,
    )

    # timed in turns with eager: ONNX Runtime's idle workers must not spin through the eager frame
    rt, seg = open_artifact(onnx, backend, threads=threads, conf=conf, loader=partial(open_segmenter, spin=False))
    rt.model = f"{label}.onnx"
    eg = BenchRow(model=f"{label}.pt", backend=TORCH_BACKEND, input_size=[size, size])
    eager = None
    try:
        eager = TorchEager(ckpt, input_size=size, score_threshold=conf, max_det=max_det, device=device, threads=threads)
        eg.device, eg.precision = eager.name, "fp32"
    except Exception as exc:  # noqa: BLE001  (a failed row is a result too)
        eg.status, eg.reason = "failed", reason_of(exc)
    entries = [(r, m) for r, m in ((rt, seg), (eg, eager)) if m is not None]
    try:
        results = measure_interleaved([m for _, m in entries], frames, warmup=warmup, iters=iters)
        for (row, _), result in zip(entries, results):
            fill(row, result, rss=False)
    except Exception as exc:  # noqa: BLE001
        for row, _ in entries:
            row.status, row.reason = "failed", reason_of(exc)
    pair_speedup(rt, eg)
    return [rt, eg]


def pair_speedup(runtime: BenchRow, eager: BenchRow) -> None:
    """Speed-up of the runtime row over its own eager row (same model, size and instance count)."""
    eager.speedup = 1.0 if eager.status == "ok" else None
    if runtime.status == "ok" and eager.status == "ok" and runtime.p50 and eager.p50:
        runtime.speedup = eager.p50 / runtime.p50


def save(name: str, rows: Sequence[BenchRow], config: dict[str, Any], threads: int | None,
         out: Path | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` (the ``maskrt bench`` schema) and print its Markdown table."""
    doc = results_document(rows, system_info(threads), {"benchmark": name, **config}, baseline="torch-eager")
    path = write_json(out or RESULTS / f"{name}.json", doc)
    print(to_markdown(doc))
    print(f"wrote {path}")
    return path
