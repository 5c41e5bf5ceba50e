"""`maskrt bench` fails (exit 2, a line per row) when no row could be measured; a partial failure is a report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maskrt.cli import main

FAST = ["--iters", "1", "--warmup", "0", "--frames", "1", "--imgsz", "64", "--instances", "2"]


def test_every_row_failed_exits_2_with_one_line_per_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07" + bytes(range(256)) * 8)  # starts like ONNX, then is not
    missing = tmp_path / "missing.onnx"
    out = tmp_path / "b.json"
    code = main(["-q", "bench", str(corrupt), str(missing), "-b", "ort-cpu", *FAST, "--json", str(out)])
    assert code == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 2, errors
    assert "corrupt.onnx" in errors[0] and "failed" in errors[0]
    assert "missing.onnx" in errors[1] and "not found" in errors[1]
    rows = json.loads(out.read_text())["rows"]  # the report is still written, for the record
    assert [r["status"] for r in rows] == ["failed", "failed"]


def test_a_model_no_backend_here_can_run_is_not_a_success(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"ftrt" + bytes(64))
    assert main(["-q", "bench", str(engine), *FAST]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "model.engine" in errors[0]


def test_an_onnx_file_named_engine_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundled = Path(__file__).resolve().parents[2] / "runtime" / "models" / "bubbles-lite.onnx"
    fake = tmp_path / "model.engine"
    fake.write_bytes(bundled.read_bytes())
    assert main(["-q", "bench", str(fake), *FAST]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "is an ONNX model" in errors[0] and "model.onnx" in errors[0], errors
