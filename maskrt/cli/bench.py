"""`maskrt bench`: latency, stage split and memory of models x backends, with a PyTorch eager baseline.

The timing and reporting live in :mod:`maskrt.runtime.bench` (torch-free). Only the ``--torch`` row
imports torch, inside :class:`TorchEager`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from maskrt.cli.app import app
from maskrt.runtime.backends import BACKEND_HELP, DEVICE_HELP

log = logging.getLogger(__name__)


class TorchEager:
    """The PyTorch eager baseline of a checkpoint, called like a ``Segmenter``: ``model(frame) -> Instances``.

    It runs torchvision's own ``model([image])`` (resize, network, full-resolution mask paste), then
    thresholds the masks into the runtime's ``Instances`` so the same drawing follows. Input size,
    score threshold and ``max_det`` are set to the compared artifact's, so both produce the same work.

    Args:
        checkpoint: a maskrt ``.pt`` checkpoint.
        input_size: longer side the model resizes to (default: the checkpoint's recipe).
        score_threshold: detections below it are dropped before the paste (default 0.5).
        mask_threshold: probability threshold of the masks.
        max_det: detections per image (default: the recipe's).
        device: ``cpu``, ``cuda`` or ``auto``.
        threads: torch CPU threads (``None``: leave torch's default).
        half: fp16 autocast on CUDA.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        input_size: int | None = None,
        score_threshold: float = 0.5,
        mask_threshold: float = 0.5,
        max_det: int | None = None,
        device: str = "auto",
        threads: int | None = None,
        half: bool = False,
    ) -> None:
        import torch

        from maskrt.train.checkpoint import load_model
        from maskrt.train.models import set_max_det

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = torch.device(device)
        self.half = bool(half and self.device.type == "cuda")
        model, recipe, _ = load_model(checkpoint, self.device)
        size = int(input_size or recipe.image_size)
        model.transform.min_size = (size,)
        model.transform.max_size = size
        model.roi_heads.score_thresh = float(score_threshold)
        set_max_det(model, int(max_det or recipe.max_det))  # with the proposals the export keeps
        self.model = model
        self.recipe = recipe
        self.input_size = size
        self.mask_threshold = float(mask_threshold)
        self.class_names = list(recipe.classes)
        self.name = f"torch {self.device.type}{' fp16 autocast' if self.half else ''}"
        self.timings: dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def __call__(self, frame: Any) -> Any:
        """Segment one BGR frame the way a plain torchvision user would; stage times land in ``timings``."""
        import numpy as np

        torch = self.torch
        t0 = time.perf_counter()
        rgb = np.ascontiguousarray(frame[..., ::-1])
        x = torch.from_numpy(rgb).to(self.device).permute(2, 0, 1).float().div_(255.0)
        self._sync()
        t1 = time.perf_counter()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.half):
            out = self.model([x])[0]
        self._sync()
        t2 = time.perf_counter()
        inst = self._instances(out, frame.shape[:2])
        t3 = time.perf_counter()
        self.timings = {"preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3}
        return inst

    def _instances(self, out: dict[str, Any], hw: tuple[int, int]) -> Any:
        """torchvision's output dict -> the runtime's ``Instances`` (masks cropped to their boxes)."""
        import numpy as np

        from maskrt.runtime.instances import Instances

        boxes = out["boxes"].float().cpu().numpy()
        masks = (out["masks"][:, 0] > self.mask_threshold).cpu().numpy()
        h, w = hw
        regions = np.zeros((len(boxes), 4), dtype=np.int64)
        crops = []
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            r = (max(int(x0), 0), max(int(y0), 0), min(int(np.ceil(x1)) + 1, w), min(int(np.ceil(y1)) + 1, h))
            regions[i] = r
            crops.append(masks[i, r[1]:r[3], r[0]:r[2]])
        return Instances(boxes, out["scores"].float().cpu().numpy(), out["labels"].cpu().numpy() - 1,
                         self.class_names, hw, regions, crops)


def _frames(images: Path | None, stream: str | None, imgsz: int, count: int, instances: int) -> tuple[list, str]:
    """The frames to rotate among, and a description for the report."""
    from maskrt.runtime.bench import load_folder, synthetic_frames, video_frames

    if images is not None:
        frames = load_folder(images, limit=count)
        return frames, f"{len(frames)} images from {images}"
    if stream is not None:
        frames = video_frames(stream, limit=count)
        return frames, f"{len(frames)} frames read from {stream}"
    frames = synthetic_frames(count, (imgsz, imgsz), instances)
    return frames, f"{count} synthetic {imgsz}x{imgsz} scenes with {instances} bubbles each, in rotation"


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
    from maskrt.runtime.bench.stream_row import bench_stream

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
    frames, frames_desc = _frames(images, stream, size, num_frames, instances)
    console = Console(stderr=True)
    eager_opts = {"meta": meta, "imgsz": imgsz, "conf": conf, "device": torch_device, "half": torch_half,
                  "threads": threads}
    timing = {"warmup": warmup, "iters": iters, "seconds": seconds}
    plan = [(model, row_names(backends, model, device)) for model in models]  # model x its rows
    with _progress(console) as progress:
        run = _interleaved_rows if interleave else _sequential_rows
        rows = run(plan, frames, torch_ckpt, eager_opts, threads, conf, timing, progress)
        for model, model_rows in plan if stream is not None else []:
            for b in model_rows:
                task = progress.add_task(f"{Path(model).name} {b} stream", total=iters)
                rows.append(bench_stream(
                    model, b, str(stream), threads=threads, conf=conf, max_frames=iters,
                    progress=lambda done, total, task=task: progress.update(task, completed=done, total=total),
                ))
                progress.update(task, visible=False)
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


def _sequential_rows(
    plan: list[tuple[Path, list[str]]], frames: list, torch_ckpt: Path | None, eager_opts: dict[str, Any],
    threads: int | None, conf: float | None, timing: dict[str, Any], progress: Any,
) -> list[Any]:
    """One row after the other (each row's peak RSS is its own)."""
    from maskrt.runtime.bench import memory
    from maskrt.runtime.bench.runner import bench_artifact, fill, measure, reason_of

    rows = []
    for model, model_rows in plan:
        for b in model_rows:
            task = progress.add_task(f"{Path(model).name} {b}", total=timing["iters"])
            rows.append(bench_artifact(
                model, b, frames, threads=threads, conf=conf, **timing,
                progress=lambda done, total, task=task: progress.update(task, completed=done, total=total),
            ))
            progress.update(task, visible=False)
    if torch_ckpt is not None:
        memory.reset_peak_rss()
        row, eager = _open_torch(torch_ckpt, **eager_opts)
        if eager is not None:
            task = progress.add_task(f"{torch_ckpt.name} torch eager", total=timing["iters"])
            try:
                fill(row, measure(eager, frames, **timing,
                                  progress=lambda done, total: progress.update(task, completed=done, total=total)))
                _eager_gpu_memory(row, eager)
            except Exception as exc:  # reported as a row like every other failure
                row.status, row.reason = "failed", reason_of(exc)
                log.debug("torch row failed", exc_info=True)
            progress.update(task, visible=False)
        rows.append(row)
    return rows


def _interleaved_rows(
    plan: list[tuple[Path, list[str]]], frames: list, torch_ckpt: Path | None, eager_opts: dict[str, Any],
    threads: int | None, conf: float | None, timing: dict[str, Any], progress: Any,
) -> list[Any]:
    """Load every row's model, then time them in turns frame by frame."""
    from functools import partial

    from maskrt.runtime.bench.runner import (
        fill,
        measure_interleaved,
        open_artifact,
        open_segmenter,
        reason_of,
    )

    # rows share the cores in turns: ONNX Runtime's idle workers must not spin through the next row's frame
    quiet_loader = partial(open_segmenter, spin=False)
    rows, entries = [], []
    for model, model_rows in plan:
        for b in model_rows:
            row, seg = open_artifact(model, b, threads=threads, conf=conf, loader=quiet_loader)
            rows.append(row)
            if seg is not None:
                entries.append((row, seg))
    if torch_ckpt is not None:
        row, eager = _open_torch(torch_ckpt, **eager_opts)
        rows.append(row)
        if eager is not None:
            entries.append((row, eager))
    if not entries:
        return rows
    task = progress.add_task(f"{len(entries)} rows in turns", total=timing["iters"])
    try:
        results = measure_interleaved([m for _, m in entries], frames, **timing,
                                      progress=lambda done, total: progress.update(task, completed=done, total=total))
    except Exception as exc:  # one model failing mid-run stops the round: every row says so
        log.debug("interleaved run failed", exc_info=True)
        for row, _ in entries:
            row.status, row.reason = "failed", f"interleaved run stopped: {reason_of(exc)}"
        return rows
    for (row, model), result in zip(entries, results):
        fill(row, result, rss=False)
        _eager_gpu_memory(row, model)
    return rows


def _open_torch(
    ckpt: Path, meta: Any, imgsz: int | None, conf: float | None, device: str, half: bool, threads: int | None,
) -> tuple[Any, TorchEager | None]:
    """The PyTorch eager baseline row and its model; a failure (no torch, bad checkpoint) is a row, not a crash."""
    from maskrt.runtime.bench.runner import TORCH_BACKEND, BenchRow, file_size_mb, reason_of

    row = BenchRow(model=str(ckpt), backend=TORCH_BACKEND, file_size_mb=file_size_mb(ckpt))
    try:
        import torch  # noqa: F401
    except ImportError:
        row.status, row.reason = "unavailable", "torch is not installed; pip install 'maskrt[train]'"
        return row, None
    try:
        t0 = time.perf_counter()
        eager = TorchEager(
            ckpt,
            input_size=imgsz or (max(meta.input_size) if meta else None),
            score_threshold=conf if conf is not None else meta.score_threshold if meta else 0.5,
            mask_threshold=meta.mask_threshold if meta else 0.5,
            max_det=meta.max_det if meta else None,
            device=device, threads=threads, half=half,
        )
    except Exception as exc:  # reported as a row like every other failure
        row.status, row.reason = "failed", reason_of(exc)
        log.debug("torch row failed", exc_info=True)
        return row, None
    row.load_s = time.perf_counter() - t0
    row.device, row.input_size, row.precision = eager.name, [eager.input_size] * 2, "fp16" if eager.half else "fp32"
    return row, eager


def _eager_gpu_memory(row: Any, model: Any) -> None:
    """Peak CUDA memory of the eager model (torch's allocator), when it ran on a GPU."""
    if isinstance(model, TorchEager) and model.device.type == "cuda":
        row.gpu_mem_mb = model.torch.cuda.max_memory_allocated(model.device) / 2**20
