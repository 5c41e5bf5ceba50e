"""`maskrt bench` end to end on a tiny exported model: JSON schema, statuses, baseline, torch-free path.

A test of the tool, not of speed: nothing here compares a time with a number.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from maskrt.cli import main
from maskrt.runtime.bench.report import validate_document

SIZE = 128
FAST = ["--iters", "3", "--warmup", "1", "--frames", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A random-weight ``lite`` checkpoint and its ONNX export at 128x128 (a few seconds on one core)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from maskrt.export.metadata import make_meta
    from maskrt.export.onnx_export import export_onnx
    from maskrt.export.wrapper import ExportWrapper
    from maskrt.train.checkpoint import save_checkpoint
    from maskrt.train.models import ModelRecipe, build_model

    out = tmp_path_factory.mktemp("bench-model")
    torch.manual_seed(0)
    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=SIZE, max_det=20)
    model = build_model(recipe).eval()
    ckpt = save_checkpoint(out / "lite.pt", model, recipe)
    wrapper = ExportWrapper(model, (SIZE, SIZE), max_det=20, mean=recipe.mean, std=recipe.std)
    export_onnx(wrapper, make_meta(recipe, (SIZE, SIZE), 20), out / "lite.onnx", simplify=False)
    return {"onnx": out / "lite.onnx", "ckpt": ckpt, "dir": out}


def _run(args: list[str]) -> int:
    return main(["-q", "bench", *args])


def _load(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    assert validate_document(doc) == []
    return doc


def _check_ok(row: dict[str, Any]) -> None:
    lat = row["latency"]
    assert row["status"] == "ok" and row["frames"] == 3 and lat["n"] == 3
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert lat["fps_p50"] == pytest.approx(1000.0 / lat["p50"])
    assert set(row["stages"]) >= {"preprocess", "infer", "postprocess", "draw"}


def test_ort_cpu_rows_and_unavailable_backend(tiny: dict[str, Path], tmp_path: Path) -> None:
    out, md = tmp_path / "b.json", tmp_path / "b.md"
    code = _run([str(tiny["onnx"]), "-b", "ort-cpu,trt", *FAST, "--json", str(out), "--md", str(md)])
    assert code == 0
    doc = _load(out)
    ok, trt = doc["rows"]
    _check_ok(ok)
    assert ok["backend"] == "onnxruntime:cpu" and ok["input_size"] == [SIZE, SIZE] and ok["peak_rss_mb"] > 0
    assert ok["file_size_mb"] == pytest.approx(tiny["onnx"].stat().st_size / 1e6)
    assert "CPUExecutionProvider" in ok["device"]
    assert trt["status"] == "unavailable" and trt["reason"]
    assert doc["baseline"] is None and ok["speedup"] is None
    assert doc["config"]["frame_shape"] == [SIZE, SIZE, 3]
    assert "| lite.onnx | onnxruntime:cpu | ok |" in md.read_text()


@pytest.mark.parametrize("interleave", [False, True])
def test_torch_baseline_gives_every_row_a_speedup(tiny: dict[str, Path], tmp_path: Path, interleave: bool) -> None:
    out = tmp_path / "b.json"
    code = _run([str(tiny["onnx"]), "-b", "ort-cpu", "--torch", str(tiny["ckpt"]), "--conf", "0.05", *FAST,
                 "--json", str(out), *(["--interleave"] if interleave else [])])
    assert code == 0
    doc = _load(out)
    ort_row, eager = doc["rows"]
    _check_ok(ort_row)
    _check_ok(eager)
    assert doc["baseline"] == "torch-eager" and eager["speedup"] == pytest.approx(1.0)
    assert doc["config"]["interleave"] is interleave
    # per-row peak memory only when rows run one after the other
    assert (ort_row["peak_rss_mb"] is None) is interleave and (eager["peak_rss_mb"] is None) is interleave
    assert ort_row["speedup"] == pytest.approx(eager["latency"]["p50"] / ort_row["latency"]["p50"])
    # both run the same work: the artifact's input size and the lowered threshold (random weights)
    assert eager["input_size"] == [SIZE, SIZE]
    assert ort_row["instances_mean"] > 0 and eager["instances_mean"] > 0


def test_corrupt_model_is_a_failed_row(tiny: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(tiny["onnx"].read_bytes()[:5000])
    out = tmp_path / "b.json"
    assert _run([str(bad), str(tiny["onnx"]), "-b", "ort-cpu", *FAST, "--json", str(out)]) == 0
    failed, ok = _load(out)["rows"]
    assert failed["status"] == "failed" and failed["reason"] and failed["latency"] is None
    assert ok["status"] == "ok"  # one bad model does not stop the others


def test_user_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([str(tmp_path / "m.onnx"), "-b", "ort-gpu"]) == 2
    assert "unknown backend ort-gpu" in capsys.readouterr().err
    assert _run([]) == 2
    assert _run([str(tmp_path / "m.onnx"), "--images", str(tmp_path / "nope")]) == 2


def test_bench_of_an_onnx_model_never_imports_torch(tiny: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    code = (
        "import sys\n"
        "sys.modules['torch'] = None; sys.modules['torchvision'] = None  # any import of them now fails\n"
        "from maskrt.cli.app import app\n"
        "import maskrt.cli.bench\n"
        f"app(['-q', 'bench', {str(tiny['onnx'])!r}, '-b', 'ort-cpu', '--iters', '2', '--warmup', '0',\n"
        f"     '--frames', '1', '--json', {str(out)!r}], standalone_mode=False)\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                         env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    row = _load(out)["rows"][0]
    assert row["status"] == "ok", row["reason"]
