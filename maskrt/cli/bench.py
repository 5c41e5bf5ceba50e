"""`maskrt bench`: latency, stage split and memory of models x backends, with a PyTorch eager baseline.

The rows, timing and reporting live in :mod:`maskrt.runtime.bench` (torch-free); the ``--torch`` row is
:mod:`maskrt.export.eager`'s adapter, plugged into the rows from here.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from maskrt.cli.app import app
from maskrt.runtime.backends import BACKEND_HELP, DEVICE_HELP


def _split(values: list[str]) -> list[str]:
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@app.command()
def bench(
    models: Annotated[
        list[Path] | None, typer.Argument(help="Model artifacts (.onnx, .engine) to measure.", show_default=False)
    ] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option("--backend", "-b", help=f"{BACKEND_HELP} Or a backend:device row such as openvino:cpu. Repeat "
                     "or comma-separate for several (default: every backend installed for the device, e.g. openvino "
                     "and onnxruntime side by side on a CPU)."),
    ] = None,
    device: Annotated[str, typer.Option("--device", help=f"Device of every row: {DEVICE_HELP}")] = "auto",
    imgsz: Annotated[int | None, typer.Option(
        "--imgsz", help="Size of the synthetic frames and of the eager model's input (default: the first model's "
        "input size, else 512).")] = None,
    threads: Annotated[int | None, typer.Option(
        "--threads", "-t", help="CPU threads (ONNX Runtime, OpenVINO and torch).")] = None,
    conf: Annotated[float | None, typer.Option(
        "--conf", help="Score threshold for every row (default: the model's own; lower it to load the "
        "postprocess of an untrained model).")] = None,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed frames before timing.")] = 5,
    iters: Annotated[int, typer.Option("--iters", "-n", help="Timed frames per row.")] = 50,
    seconds: Annotated[float | None, typer.Option("--seconds", "-s", help="Time each row for this long instead.")] = None,
    images: Annotated[Path | None, typer.Option(
        "--images", help="Folder of images to use instead of synthetic scenes.")] = None,
    instances: Annotated[int, typer.Option("--instances", help="Bubbles per synthetic scene.")] = 30,
    num_frames: Annotated[int, typer.Option("--frames", help="Different frames to rotate among.")] = 8,
    stream: Annotated[str | None, typer.Option(
        "--stream", help="Video file, folder or stream (any `maskrt run` source): the frames come from it, and "
        "each model x backend gets an end-to-end row through the threaded stream pipeline.")] = None,
    torch_ckpt: Annotated[Path | None, typer.Option(
        "--torch", help="Checkpoint (.pt) whose PyTorch eager run is the baseline row (needs the train extra).")] = None,
    torch_device: Annotated[str, typer.Option("--torch-device", help="Device of the eager row: auto|cpu|cuda.")] = "auto",
    torch_half: Annotated[bool, typer.Option("--torch-half", help="fp16 autocast for the eager row (CUDA only).")] = False,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON here.")] = None,
    md_out: Annotated[Path | None, typer.Option("--md", help="Write a Markdown table here.")] = None,
    png_out: Annotated[Path | None, typer.Option("--png", help="Write a bar chart (p50, p99 whiskers) here.")] = None,
    interleave: Annotated[bool, typer.Option(
        "--interleave", help="Time all rows in turns, frame by frame, so a shared machine's changing load falls on "
        "every row alike (ratios hold; peak RSS is then not per row).")] = False,
) -> None:
    """Measure latency (min/p50/p90/p99/max), FPS, stage split and memory of every model x backend."""
    from rich.console import Console

    from maskrt.errors import MaskrtError
    from maskrt.export.eager import open_eager_row
    from maskrt.runtime.bench import (
        apply_speedups,
        results_document,
        rich_table,
        system_info,
        write_json,
        write_markdown,
        write_png,
    )
    from maskrt.runtime.bench.artifacts import read_artifact_meta
    from maskrt.runtime.bench.backends import BACKENDS, is_backend_name, row_names, split_row
    from maskrt.runtime.bench.rows import bench_rows
    from maskrt.runtime.bench.scenes import bench_frames

    models = list(models or [])
    backends = _split(backend or [])
    bad = [b for b in backends if not is_backend_name(b)]
    if bad:
        raise MaskrtError(f"unknown backend {', '.join(bad)}; choose from {', '.join(BACKENDS)} "
                          "(or backend:device, e.g. openvino:cpu)")
    for b in backends:
        split_row(b, device)  # an impossible pair (openvino on cuda, an unknown device) is a user error
    if not models and torch_ckpt is None:
        raise MaskrtError("nothing to measure; pass model files (.onnx/.engine) and/or --torch CHECKPOINT")
    if iters < 1 or warmup < 0 or (seconds is not None and seconds <= 0):
        raise MaskrtError("--iters must be >= 1, --warmup >= 0 and --seconds > 0")
    meta = next((m for m in map(read_artifact_meta, models) if m is not None), None)
    size = imgsz or (max(meta.input_size) if meta else 512)
    frames, frames_desc = bench_frames(images, stream, size, num_frames, instances)
    console = Console(stderr=True)
    eager_opts = {"meta": meta, "imgsz": imgsz, "conf": conf, "device": torch_device, "half": torch_half,
                  "threads": threads}
    timing = {"warmup": warmup, "iters": iters, "seconds": seconds}
    plan = [(model, row_names(backends, model, device)) for model in models]  # model x its rows
    extra = [(f"{torch_ckpt.name} torch eager", partial(open_eager_row, torch_ckpt, **eager_opts))] \
        if torch_ckpt is not None else []  # the torch row, plugged into the runtime's rows
    with _progress(console) as progress:
        rows = bench_rows(plan, frames, timing=timing, threads=threads, conf=conf, extra=extra,
                          interleave=interleave, stream=stream, task=partial(_task, progress))
    base = apply_speedups(rows)
    timed = f"{seconds:g} s per row" if seconds else f"{iters} timed frames per row"
    if interleave:
        timed += " (rows took turns frame by frame; peak RSS is the process's, not per row)"
    config: dict[str, Any] = {
        "models": [str(m) for m in models], "backends": backends or ["default"], "device": device,
        "threads": threads, "warmup": warmup,
        "iters": iters, "seconds": seconds, "conf": conf, "frames_desc": frames_desc, "timed": timed,
        "frame_shape": list(frames[0].shape), "torch": str(torch_ckpt) if torch_ckpt else None,
        "interleave": interleave,
    }
    doc = results_document(rows, system_info(threads), config, baseline=base.backend if base else None)
    Console(width=max(Console().width, 160)).print(rich_table(doc))
    for path, writer in ((json_out, write_json), (md_out, write_markdown)):
        if path is not None:
            writer(path, doc)
            console.print(f"wrote {path}")
    if png_out is not None:
        console.print(f"wrote {png_out}" if write_png(png_out, doc) else
                      "no PNG: matplotlib is missing (pip install 'maskrt[plot]') or no row succeeded")
    if rows and not any(r.status == "ok" for r in rows):  # nothing was measured: a failed run (one line per row)
        for r in rows:
            typer.echo(f"error: {r.model} on {r.backend}: {r.status}: {r.reason}", err=True)
        raise typer.Exit(2)


def _progress(console: Any) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def _task(progress: Any, description: str, total: int) -> Any:
    """A progress bar for one row; it hides itself when the row is done."""
    task = progress.add_task(description, total=total)

    def update(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total, visible=done < total)

    return update
