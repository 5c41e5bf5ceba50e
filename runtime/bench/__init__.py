"""maskrt.runtime.bench: time models on realistic frames and report the results (torch-free).

The pieces ``maskrt bench`` and the ``benchmarks/`` scripts share: frames with realistic content
(:mod:`.scenes`), the timing loop and result rows (:mod:`.runner`), statistics (:mod:`.stats`),
memory (:mod:`.memory`), the system description (:mod:`.sysinfo`), backend availability
(:mod:`.backends`) and the JSON / Markdown / terminal / PNG writers (:mod:`.report`).
"""

from maskrt.runtime.bench.backends import BACKENDS, availability, available_backends, resolve_auto
from maskrt.runtime.bench.report import (
    SCHEMA,
    results_document,
    rich_table,
    to_markdown,
    validate_document,
    write_json,
    write_markdown,
    write_png,
)
from maskrt.runtime.bench.runner import BenchRow, apply_speedups, bench_artifact, measure, measure_interleaved
from maskrt.runtime.bench.scenes import load_folder, render_scene, synthetic_frames, video_frames
from maskrt.runtime.bench.stats import LatencyStats, latency_stats
from maskrt.runtime.bench.sysinfo import system_info

__all__ = [
    "BACKENDS", "SCHEMA", "BenchRow", "LatencyStats", "apply_speedups", "availability", "available_backends",
    "bench_artifact", "latency_stats", "load_folder", "measure", "measure_interleaved", "render_scene", "resolve_auto", "results_document",
    "rich_table", "synthetic_frames", "system_info", "to_markdown", "validate_document", "video_frames",
    "write_json", "write_markdown", "write_png",
]
