"""The end-to-end row of ``maskrt bench --stream``: the threaded stream pipeline on a real source.

Where the other rows time one frame at a time, this one runs :func:`maskrt.runtime.stream.pipeline.stream`
(capture, inference and analysis overlapping in threads) and reports the frames per second it
sustains (``throughput_fps``) and each frame's latency from capture to drawn overlay. Comparing its
throughput with the inference-only row of the same model and backend shows the pipeline's overhead.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from maskrt.runtime.bench import memory
from maskrt.runtime.bench.backends import availability, concrete_row
from maskrt.runtime.bench.runner import (
    BenchRow,
    DrawFn,
    ProgressFn,
    default_draw,
    describe_segmenter,
    file_size_mb,
    open_segmenter,
    reason_of,
)
from maskrt.runtime.bench.stats import latency_stats, stage_stats

log = logging.getLogger(__name__)

STREAM_SUFFIX = "+stream"


def bench_stream(
    model: str | Path,
    backend: str,
    source: str,
    *,
    threads: int | None = None,
    conf: float | None = None,
    max_frames: int = 50,
    draw: DrawFn | None = None,
    progress: ProgressFn | None = None,
) -> BenchRow:
    """Run the stream pipeline on ``source`` for up to ``max_frames`` frames; never raises for a bad model.

    Returns:
        A row whose backend is ``<backend>+stream``; ``latency`` is capture-to-overlay per frame,
        ``throughput_fps`` the processed frames over the wall time, ``stages`` the pipeline's own.
    """
    row = BenchRow(model=str(model), backend=backend + STREAM_SUFFIX, file_size_mb=file_size_mb(model))
    concrete = concrete_row(backend, model)
    why = availability(backend, model)
    if why is not None or concrete is None:
        row.status, row.reason = "unavailable", why or "no backend can run this model here"
        return row
    draw = default_draw() if draw is None else draw
    memory.reset_peak_rss()
    try:
        from maskrt.runtime.stream.pipeline import stream

        t0 = time.perf_counter()
        seg = open_segmenter(model, concrete, threads, conf)
        row.load_s = time.perf_counter() - t0
        describe_segmenter(row, seg)
        pipe = stream(seg, source, max_frames=max_frames)
        latencies, counts, draws = [], [], []
        for result in pipe:
            t_draw = time.perf_counter()
            draw(result.frame, result.instances)
            draws.append((time.perf_counter() - t_draw) * 1e3)
            latencies.append((time.perf_counter() - result.t_capture) * 1e3)
            counts.append(len(result.instances))
            if progress:
                progress(len(latencies), max_frames)
        summary: dict[str, Any] = pipe.summary
    except Exception as exc:  # reported as a row like every other failure
        row.status, row.reason = "failed", reason_of(exc)
        log.debug("stream row failed", exc_info=True)
        return row
    if not latencies:
        row.status, row.reason = "failed", f"no frame came out of {source}; check the source"
        return row
    row.latency = latency_stats(latencies).to_dict()
    row.frames = len(latencies)
    row.instances_mean = sum(counts) / len(counts)
    row.throughput_fps = float(summary.get("fps") or 0.0)
    row.stages = {name: {"p50": v.get("p50_ms", 0.0), "mean": v.get("mean_ms", 0.0)}
                  for name, v in summary.get("stages_ms", {}).items() if name != "latency"}
    row.stages.update(stage_stats({"draw": draws}))
    row.peak_rss_mb = memory.peak_rss_mb()
    row.gpu_mem_mb = memory.gpu_memory_mb() if not concrete.endswith(":cpu") else None
    return row
