"""The timing loop and benchmark rows, with fake models: rotation, stages, statuses and reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maskrt.errors import MaskrtError
from maskrt.runtime import backends
from maskrt.runtime.bench import runner
from maskrt.runtime.bench.runner import BenchRow, apply_speedups, bench_artifact, measure, measure_interleaved
from maskrt.runtime.bench.scenes import synthetic_frames


class FakeModel:
    """Records which frames it saw and reports fixed stage times; returns one instance per call."""

    def __init__(self, infer_ms: float = 2.0) -> None:
        self.seen: list[int] = []
        self.infer_ms = infer_ms
        self.timings: dict[str, float] = {}

    def __call__(self, frame: np.ndarray) -> list[int]:
        self.seen.append(int(frame[0, 0, 0]))
        self.timings = {"preprocess": 0.5, "infer": self.infer_ms, "postprocess": 1.0}
        return [1, 2, 3]


def _tagged_frames(n: int) -> list[np.ndarray]:
    frames = []
    for i in range(n):
        f = np.full((8, 8, 3), 100, dtype=np.uint8)
        f[0, 0, 0] = i
        frames.append(f)
    return frames


def test_measure_rotates_frames_and_reports_stages() -> None:
    model = FakeModel()
    calls: list[tuple[int, int]] = []
    res = measure(model, _tagged_frames(3), warmup=2, iters=7, draw=lambda f, i: f,
                  progress=lambda d, t: calls.append((d, t)))
    assert res["frames"] == 7
    assert model.seen == [0, 1] + [0, 1, 2, 0, 1, 2, 0]  # warm-up, then every frame in turn
    assert list(res["stages"]) == ["preprocess", "infer", "postprocess", "draw"]
    assert res["stages"]["infer"]["p50"] == 2.0
    assert res["instances_mean"] == 3.0
    lat = res["latency"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert calls[-1] == (7, 7)


def test_interleaved_models_take_turns_on_the_same_frames() -> None:
    calls: list[tuple[str, int]] = []

    class Named(FakeModel):
        def __init__(self, name: str, infer_ms: float) -> None:
            super().__init__(infer_ms)
            self.name = name

        def __call__(self, frame: np.ndarray) -> list[int]:
            calls.append((self.name, int(frame[0, 0, 0])))
            return super().__call__(frame)

    a, b = Named("a", 1.0), Named("b", 5.0)
    res_a, res_b = measure_interleaved([a, b], _tagged_frames(3), warmup=1, iters=4, draw=lambda f, i: f)
    timed = calls[2:]  # after one warm-up call each
    assert timed == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2), ("b", 0), ("a", 0)]
    assert res_a["frames"] == res_b["frames"] == 4
    assert res_a["stages"]["infer"]["p50"] == 1.0 and res_b["stages"]["infer"]["p50"] == 5.0
    assert measure_interleaved([], _tagged_frames(1)) == []


def test_measure_for_a_duration_runs_at_least_three_frames() -> None:
    res = measure(FakeModel(), _tagged_frames(2), warmup=0, seconds=0.001, draw=lambda f, i: f)
    assert res["frames"] >= 3


def _onnx_file(tmp_path: Path) -> Path:
    p = tmp_path / "m.onnx"
    p.write_bytes(b"x" * 2000)
    return p


def test_unavailable_backend_is_a_row_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "ort_providers", lambda: ["CPUExecutionProvider"])
    frames = synthetic_frames(2, (64, 64), 3)
    rows = [bench_artifact(_onnx_file(tmp_path), b, frames, loader=lambda *a: FakeModel())
            for b in ("ort-cuda", "ort-trt", "trt")]
    assert [r.status for r in rows] == ["unavailable"] * 3
    assert "CUDAExecutionProvider" in rows[0].reason and "onnxruntime-gpu" in rows[0].reason
    assert ".engine" in rows[2].reason  # native TensorRT needs an engine, and says how to build one
    assert all(r.latency is None for r in rows)


def test_no_onnxruntime_makes_ort_rows_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "ort_providers", list)
    monkeypatch.setattr(backends, "openvino_devices", list)
    row = bench_artifact(_onnx_file(tmp_path), "auto", synthetic_frames(1, (32, 32), 1))
    assert row.status == "unavailable" and "onnxruntime" in row.reason


def test_failing_model_is_reported_with_its_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "ort_providers", lambda: ["CPUExecutionProvider"])
    frames = synthetic_frames(2, (64, 64), 3)

    def corrupt(*args: Any) -> Any:
        raise MaskrtError("no maskrt metadata in this model; export it with `maskrt export`", path=args[0])

    row = bench_artifact(_onnx_file(tmp_path), "ort-cpu", frames, loader=corrupt)
    assert row.status == "failed"
    assert "no maskrt metadata" in row.reason and "m.onnx" in row.reason
    assert row.file_size_mb == pytest.approx(0.002)

    class Crashes(FakeModel):
        def __call__(self, frame: np.ndarray) -> list[int]:
            raise RuntimeError("bad input shape\nlong traceback text")

    row = bench_artifact(_onnx_file(tmp_path), "ort-cpu", frames, loader=lambda *a: Crashes())
    assert row.status == "failed" and row.reason == "RuntimeError: bad input shape"

    row = bench_artifact(tmp_path / "missing.onnx", "ort-cpu", frames, loader=lambda *a: FakeModel())
    assert row.status == "failed" and "not found" in row.reason


def test_ok_row_has_latency_memory_and_auto_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "ort_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(backends, "openvino_devices", list)  # auto on a CPU: OpenVINO when installed
    used: list[str] = []

    def loader(model: Path, backend: str, threads: int | None, conf: float | None) -> FakeModel:
        used.append(backend)
        return FakeModel()

    row = bench_artifact(_onnx_file(tmp_path), "auto", synthetic_frames(2, (64, 64), 3), iters=4, warmup=1,
                         loader=loader, draw=lambda f, i: f)
    assert row.status == "ok" and used == ["onnxruntime:cpu"] and row.backend == "auto:onnxruntime:cpu"
    assert row.frames == 4 and row.latency is not None and row.latency["p50"] > 0
    assert row.peak_rss_mb is not None and row.peak_rss_mb > 1


def test_speedups_relative_to_the_eager_row() -> None:
    def row(backend: str, p50: float | None, status: str = "ok") -> BenchRow:
        return BenchRow("m", backend, status=status, latency={"p50": p50} if p50 else None)

    rows = [row("ort-cpu", 100.0), row("ort-cuda", None, "unavailable"), row(runner.TORCH_BACKEND, 250.0)]
    base = apply_speedups(rows)
    assert base is rows[2]
    assert rows[0].speedup == pytest.approx(2.5) and rows[2].speedup == pytest.approx(1.0)
    assert rows[1].speedup is None
    assert apply_speedups(rows[:2]) is None and rows[0].speedup is None
