"""Time a model on rotating frames and turn the timings into one benchmark row.

A "frame model" is anything called on a BGR frame that returns the frame's instances and keeps the
last call's per-stage times in milliseconds in ``.timings`` (``maskrt.runtime.Segmenter`` does; so does
the PyTorch eager adapter of ``maskrt bench --torch``). A row's latency is the whole frame: the model
call (preprocess + infer + postprocess) plus the same overlay drawing for every row.

Example:
    >>> frames = synthetic_frames(4, (512, 512), instances=30)
    >>> row = bench_artifact("lite.onnx", "openvino:cpu", frames, iters=20)
    >>> row.status, row.latency["p50"]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from maskrt.errors import MaskrtError
from maskrt.runtime.backends import is_triton_url
from maskrt.runtime.backends.formats import check_model_format
from maskrt.runtime.bench import memory
from maskrt.runtime.bench.backends import availability, concrete_row, split_row
from maskrt.runtime.bench.stats import latency_stats, speedup, stage_stats

log = logging.getLogger(__name__)

STATUSES = ("ok", "failed", "unavailable")
STAGES = ("preprocess", "infer", "postprocess", "draw")
TORCH_BACKEND = "torch-eager"

ProgressFn = Callable[[int, int], None]
DrawFn = Callable[[np.ndarray, Any], np.ndarray]


class FrameModel(Protocol):
    """What the benchmark times: ``model(frame) -> instances`` with the last call's stage times in ms."""

    timings: Mapping[str, float]

    def __call__(self, frame: np.ndarray) -> Any: ...


@dataclass
class BenchRow:
    """One model x backend result: status, size, latency statistics, stage split, memory, speed-up."""

    model: str
    backend: str
    status: str = "ok"
    reason: str = ""
    device: str = ""
    file_size_mb: float | None = None
    input_size: list[int] | None = None
    precision: str | None = None
    frames: int = 0
    instances_mean: float | None = None
    throughput_fps: float | None = None
    latency: dict[str, float] | None = None
    stages: dict[str, dict[str, float]] = field(default_factory=dict)
    load_s: float | None = None
    peak_rss_mb: float | None = None
    gpu_mem_mb: float | None = None
    speedup: float | None = None

    @property
    def p50(self) -> float | None:
        return self.latency["p50"] if self.latency else None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def file_size_mb(path: str | Path) -> float | None:
    """Size of a model file in MB (10^6 bytes); with a TensorRT engine's JSON sidecar not counted."""
    try:
        return Path(path).stat().st_size / 1e6
    except OSError:
        return None


def reason_of(exc: BaseException) -> str:
    """A one-line reason for a failed row: the message's first line, with the type for unexpected errors."""
    from maskrt.errors import MaskrtError

    text = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, MaskrtError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def default_draw() -> DrawFn:
    """The runtime's overlay drawing when available, else a minimal mask blend (so rows stay comparable)."""
    try:
        from maskrt.runtime import draw_overlay  # type: ignore[attr-defined]

        return draw_overlay  # type: ignore[no-any-return]
    except ImportError:
        return simple_overlay


def simple_overlay(frame: np.ndarray, instances: Any) -> np.ndarray:
    """Blend each instance's cropped mask into a copy of ``frame`` (fallback drawing)."""
    out = frame.copy()
    regions = getattr(instances, "regions", None)
    crops = getattr(instances, "crops", None)
    if regions is None or crops is None:
        return out
    colour = np.array([0, 200, 255], dtype=np.uint16)
    for (x0, y0, x1, y1), crop in zip(np.asarray(regions).tolist(), crops):
        if x1 <= x0 or y1 <= y0 or crop.size == 0:
            continue
        roi = out[y0:y1, x0:x1]
        roi[crop] = ((roi[crop].astype(np.uint16) + colour) // 2).astype(np.uint8)
    return out


def measure(
    model: FrameModel,
    frames: Sequence[np.ndarray],
    *,
    warmup: int = 5,
    iters: int = 50,
    seconds: float | None = None,
    draw: DrawFn | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Run ``model`` on ``frames`` in rotation and time every frame.

    Args:
        model: the frame model to time.
        frames: BGR uint8 frames; frame ``i`` of the run is ``frames[i % len(frames)]``.
        warmup: untimed calls first (lazy initialisation, caches, TensorRT/CUDA autotuning).
        iters: timed frames, when ``seconds`` is not given.
        seconds: time for about this long instead (at least 3 frames).
        draw: overlay drawing applied to every result (timed as stage ``draw``); ``None``: the default one.
        progress: called with ``(done, total)`` after each timed frame (total is an estimate with ``seconds``).

    Returns:
        ``{"latency": LatencyStats dict, "stages": {stage: {"p50", "mean"}}, "frames": n,
        "instances_mean": float, "throughput_fps": frames per second over the timed run}``.
    """
    return measure_interleaved([model], frames, warmup=warmup, iters=iters, seconds=seconds, draw=draw,
                               progress=progress)[0]


def measure_interleaved(
    models: Sequence[FrameModel],
    frames: Sequence[np.ndarray],
    *,
    warmup: int = 5,
    iters: int = 50,
    seconds: float | None = None,
    draw: DrawFn | None = None,
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """Time several models in turn on the same frames: every model on frame ``i``, then frame ``i + 1``.

    On a shared machine the load changes from minute to minute; taking turns frame by frame puts the
    same load on every model, so the ratios between them hold even when the absolute times drift.
    The order within a round alternates, so no model always runs right after another's work.
    ``seconds`` is then the time of the whole run. Arguments as in :func:`measure`; one result per model.
    """
    if not frames:
        raise ValueError("no frames to benchmark on")
    if not models:
        return []
    draw = default_draw() if draw is None else draw
    for model in models:
        for i in range(max(0, warmup)):
            draw(frames[i % len(frames)], model(frames[i % len(frames)]))
    acc: list[dict[str, Any]] = [{"totals": [], "stages": {}, "counts": [], "busy": 0.0} for _ in models]
    start = time.perf_counter()
    i = 0
    while True:
        frame = frames[i % len(frames)]
        order = range(len(models)) if i % 2 == 0 else range(len(models) - 1, -1, -1)
        for k in order:
            _time_frame(models[k], frame, draw, acc[k])
        i += 1
        if seconds is not None:
            elapsed = time.perf_counter() - start
            if progress:
                progress(i, max(i, int(i * seconds / max(elapsed, 1e-9))))
            if elapsed >= seconds and i >= 3:
                break
        else:
            if progress:
                progress(i, iters)
            if i >= iters:
                break
    return [_summary(a) for a in acc]


def _time_frame(model: FrameModel, frame: np.ndarray, draw: DrawFn, acc: dict[str, Any]) -> None:
    t0 = time.perf_counter()
    inst = model(frame)
    t1 = time.perf_counter()
    draw(frame, inst)
    t2 = time.perf_counter()
    acc["totals"].append((t2 - t0) * 1e3)
    acc["busy"] += t2 - t0
    for name, ms in dict(getattr(model, "timings", {}) or {}).items():
        acc["stages"].setdefault(name, []).append(float(ms))
    acc["stages"].setdefault("draw", []).append((t2 - t1) * 1e3)
    try:
        acc["counts"].append(len(inst))
    except TypeError:
        pass


def _summary(acc: dict[str, Any]) -> dict[str, Any]:
    stages = acc["stages"]
    ordered = {k: stages[k] for k in (*STAGES, *sorted(set(stages) - set(STAGES))) if k in stages}
    return {
        "latency": latency_stats(acc["totals"]).to_dict(),
        "stages": stage_stats(ordered),
        "frames": len(acc["totals"]),
        "instances_mean": float(np.mean(acc["counts"])) if acc["counts"] else None,
        "throughput_fps": len(acc["totals"]) / max(acc["busy"], 1e-9),  # over its own frames' time
    }


def open_segmenter(
    model: str | Path, backend: str, threads: int | None = None, conf: float | None = None, spin: bool = True
) -> Any:
    """Load ``model`` with ``maskrt.runtime.Segmenter`` for a row name (``openvino:cpu``, ``ort-cuda``...)."""
    from maskrt.runtime.segmenter import Segmenter

    runtime_backend, device = split_row(backend)
    return Segmenter(str(model), backend=runtime_backend, device=device, threads=threads, conf=conf, spin=spin)


def bench_artifact(
    model: str | Path,
    backend: str,
    frames: Sequence[np.ndarray],
    *,
    threads: int | None = None,
    conf: float | None = None,
    warmup: int = 5,
    iters: int = 50,
    seconds: float | None = None,
    draw: DrawFn | None = None,
    progress: ProgressFn | None = None,
    loader: Callable[..., Any] = open_segmenter,
) -> BenchRow:
    """Benchmark one model file on one backend; never raises for a bad model or a missing backend.

    Args:
        model: ``.onnx`` or ``.engine`` file.
        backend: a row name: a backend of :data:`~maskrt.runtime.bench.backends.BACKENDS`, or a backend
            and device (``openvino:cpu``, as rows are labelled).
        frames: frames to rotate among.
        threads: CPU threads for ONNX Runtime and OpenVINO.
        conf: score threshold (default: the model's own).
        warmup, iters, seconds, draw, progress: as in :func:`measure`.
        loader: ``loader(model, backend, threads, conf) -> frame model`` (tests pass fakes).

    Returns:
        A row with status ``ok``, ``unavailable`` (with why, e.g. no GPU) or ``failed`` (with the
        error, e.g. a corrupt file).
    """
    memory.reset_peak_rss()
    row, seg = open_artifact(model, backend, threads=threads, conf=conf, loader=loader)
    if seg is None:
        return row
    try:
        result = measure(seg, frames, warmup=warmup, iters=iters, seconds=seconds, draw=draw, progress=progress)
    except Exception as exc:  # a benchmark reports every failure as a row, never a crash
        row.status, row.reason = "failed", reason_of(exc)
        log.debug("%s on %s failed: %s", model, backend, row.reason, exc_info=True)
        return row
    fill(row, result)
    return row


def open_artifact(
    model: str | Path,
    backend: str,
    *,
    threads: int | None = None,
    conf: float | None = None,
    loader: Callable[..., Any] = open_segmenter,
) -> tuple[BenchRow, Any | None]:
    """Check that ``backend`` can run ``model`` here and load it; never raises.

    Returns:
        ``(row, frame model)``; the frame model is ``None`` and the row says why (``unavailable`` or
        ``failed``) when it cannot be loaded.
    """
    row = BenchRow(model=str(model), backend=backend, file_size_mb=file_size_mb(model))
    concrete = concrete_row(backend, model)
    if concrete is not None:  # rows are labelled with what runs them: openvino:cpu, auto:onnxruntime:cuda
        row.backend = f"auto:{concrete}" if split_row(backend)[0] == "auto" else concrete
    if Path(model).is_file():
        try:
            check_model_format(model)  # an ONNX file named .engine: say so, not "tensorrt unavailable"
        except MaskrtError as exc:
            row.status, row.reason = "failed", str(exc)
            return row, None
    why = availability(backend, model)
    if why is not None or concrete is None:
        row.status, row.reason = "unavailable", why or "no backend can run this model here"
        log.debug("%s on %s: unavailable (%s)", model, backend, row.reason)
        return row, None
    if not Path(model).is_file() and not is_triton_url(model):
        row.status, row.reason = "failed", f"{model}: model file not found; pass the path of an exported model"
        return row, None
    try:
        t0 = time.perf_counter()
        seg = loader(model, concrete, threads, conf)
        row.load_s = time.perf_counter() - t0
        describe_segmenter(row, seg)
    except Exception as exc:  # a benchmark reports every failure as a row, never a crash
        row.status, row.reason = "failed", reason_of(exc)
        log.debug("%s on %s failed to load: %s", model, backend, row.reason, exc_info=True)
        return row, None
    return row, seg


def describe_segmenter(row: BenchRow, seg: Any) -> None:
    """Copy what the loaded model says about itself (input size, precision, device) into the row."""
    meta = getattr(seg, "meta", None)
    if meta is not None:
        size = getattr(meta, "input_size", None)
        row.input_size = [int(v) for v in size] if size else None
        row.precision = getattr(meta, "precision", None)
    backend = getattr(seg, "backend", None)
    for value in (getattr(backend, "name", None), getattr(seg, "device", None)):
        if isinstance(value, str) and value:
            row.device = value
            break


def fill(row: BenchRow, result: Mapping[str, Any], rss: bool = True) -> BenchRow:
    """Put :func:`measure`'s result, the peak host memory (unless ``rss`` is false) and GPU memory into ``row``."""
    row.latency = dict(result["latency"])
    row.stages = dict(result["stages"])
    row.frames = int(result["frames"])
    row.instances_mean = result.get("instances_mean")
    row.throughput_fps = result.get("throughput_fps")
    row.peak_rss_mb = memory.peak_rss_mb() if rss else None
    if row.gpu_mem_mb is None and not row.backend.endswith(":cpu") and row.backend != TORCH_BACKEND:
        row.gpu_mem_mb = memory.gpu_memory_mb()
    row.status = "ok"
    return row


def apply_speedups(rows: Sequence[BenchRow], baseline_backend: str = TORCH_BACKEND) -> BenchRow | None:
    """Set every row's speed-up over the baseline row (PyTorch eager); returns the baseline or ``None``."""
    base = next((r for r in rows if r.backend == baseline_backend and r.status == "ok"), None)
    for r in rows:
        r.speedup = speedup(base.p50, r.p50) if base is not None and r.status == "ok" else None
    return base
