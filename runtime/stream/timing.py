"""Per-stage timing of a long-running stream: running mean over everything, p99 over a recent window."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

STAGE_ORDER = ("capture", "preprocess", "infer", "postprocess", "measure", "track", "output", "latency")


class StageTimes:
    """Thread-safe collector of stage durations in milliseconds.

    Means cover the whole run; percentiles the last ``window`` samples of each stage, so memory stays
    bounded on a stream that runs for days.
    """

    def __init__(self, window: int = 20000) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._count: dict[str, int] = {}
        self._total: dict[str, float] = {}
        self._recent: dict[str, deque[float]] = {}

    def add(self, stage: str, ms: float) -> None:
        """Record one duration of ``stage``."""
        with self._lock:
            if stage not in self._count:
                self._count[stage] = 0
                self._total[stage] = 0.0
                self._recent[stage] = deque(maxlen=self._window)
            self._count[stage] += 1
            self._total[stage] += ms
            self._recent[stage].append(ms)

    def summary(self) -> dict[str, dict[str, float]]:
        """``{stage: {"n", "mean_ms", "p50_ms", "p99_ms", "max_ms"}}`` in pipeline order."""
        with self._lock:
            names = sorted(self._count, key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER else 99, s))
            out = {}
            for s in names:
                recent = np.asarray(self._recent[s], dtype=np.float64)
                out[s] = {
                    "n": self._count[s],
                    "mean_ms": self._total[s] / max(self._count[s], 1),
                    "p50_ms": float(np.percentile(recent, 50)) if len(recent) else 0.0,
                    "p99_ms": float(np.percentile(recent, 99)) if len(recent) else 0.0,
                    "max_ms": float(recent.max()) if len(recent) else 0.0,
                }
            return out
