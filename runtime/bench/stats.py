"""Latency statistics for a list of per-frame timings: min, percentiles, max and FPS.

Example:
    >>> s = latency_stats([10.0, 12.0, 11.0, 30.0])
    >>> s.p50, s.fps_p50
    (11.5, 86.95652173913044)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-frame latencies in milliseconds; what a benchmark row reports about speed."""

    n: int
    min: float
    p50: float
    p90: float
    p99: float
    max: float
    mean: float
    std: float

    @property
    def fps_p50(self) -> float:
        """Frames per second at the median latency (one frame at a time)."""
        return 1000.0 / self.p50 if self.p50 > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        """Plain dict for JSON, FPS included."""
        d: dict[str, Any] = asdict(self)
        d["fps_p50"] = self.fps_p50
        return d


def latency_stats(samples_ms: Sequence[float] | np.ndarray) -> LatencyStats:
    """Summarise latencies (ms). Percentiles use linear interpolation, so min <= p50 <= p90 <= p99 <= max.

    Raises:
        ValueError: when there are no samples (a row without timings has no statistics).
    """
    a = np.asarray(samples_ms, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("no latency samples to summarise")
    p50, p90, p99 = (float(v) for v in np.percentile(a, PERCENTILES))
    return LatencyStats(
        n=int(a.size),
        min=float(a.min()),
        p50=p50,
        p90=p90,
        p99=p99,
        max=float(a.max()),
        mean=float(a.mean()),
        std=float(a.std()),
    )


def stage_stats(stage_samples: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """Per-stage median and mean (ms) from per-frame stage timings, e.g. ``{"infer": [..], "draw": [..]}``."""
    out: dict[str, dict[str, float]] = {}
    for name, values in stage_samples.items():
        a = np.asarray(values, dtype=np.float64)
        if a.size:
            out[name] = {"p50": float(np.median(a)), "mean": float(a.mean())}
    return out


def speedup(baseline_p50: float | None, p50: float | None) -> float | None:
    """How many times faster a row is than the baseline at the median (``None`` when either is missing)."""
    if not baseline_p50 or not p50:
        return None
    return baseline_p50 / p50
