"""Latency statistics: ordered percentiles, the values numpy gives, FPS and speed-ups."""

from __future__ import annotations

import numpy as np
import pytest

from maskrt.runtime.bench.stats import latency_stats, speedup, stage_stats


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_are_ordered_positive_and_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples = rng.lognormal(3.0, 0.5, size=int(rng.integers(3, 200)))
    s = latency_stats(samples)
    assert 0 < s.min <= s.p50 <= s.p90 <= s.p99 <= s.max
    assert s.n == len(samples)
    assert s.min == samples.min() and s.max == samples.max()
    assert s.p90 == pytest.approx(np.percentile(samples, 90))
    assert s.mean == pytest.approx(samples.mean())
    assert s.fps_p50 == pytest.approx(1000.0 / np.median(samples))


def test_single_sample_and_no_sample() -> None:
    s = latency_stats([40.0])
    assert (s.min, s.p50, s.p99, s.max, s.std) == (40.0, 40.0, 40.0, 40.0, 0.0)
    assert s.to_dict()["fps_p50"] == pytest.approx(25.0)
    with pytest.raises(ValueError):
        latency_stats([])


def test_stage_stats_median_and_mean() -> None:
    out = stage_stats({"infer": [10.0, 20.0, 60.0], "draw": [], "preprocess": [1.0, 1.0]})
    assert out["infer"] == {"p50": 20.0, "mean": 30.0}
    assert out["preprocess"]["p50"] == 1.0
    assert "draw" not in out  # no samples, no statistics


def test_speedup_is_baseline_over_row() -> None:
    assert speedup(300.0, 100.0) == pytest.approx(3.0)
    assert speedup(100.0, 200.0) == pytest.approx(0.5)
    assert speedup(None, 100.0) is None and speedup(100.0, None) is None
