"""The results document, its Markdown table, the terminal table and the PNG chart."""

from __future__ import annotations

import builtins
import json
from pathlib import Path
from typing import Any

import pytest

from maskrt.runtime.bench.report import (
    SCHEMA,
    results_document,
    rich_table,
    to_markdown,
    validate_document,
    write_json,
    write_png,
)
from maskrt.runtime.bench.runner import BenchRow, apply_speedups, fill
from maskrt.runtime.bench.stats import latency_stats
from maskrt.runtime.bench.sysinfo import system_info


def _doc() -> dict[str, Any]:
    def ok(model: str, backend: str, samples: list[float]) -> BenchRow:
        row = BenchRow(model, backend, file_size_mb=12.5, input_size=[512, 512])
        return fill(row, {"latency": latency_stats(samples).to_dict(), "frames": len(samples),
                          "stages": {"infer": {"p50": samples[0], "mean": samples[0]}}, "instances_mean": 42.0})

    rows = [
        ok("/m/lite.onnx", "ort-cpu", [100.0, 110.0, 130.0]),
        BenchRow("/m/lite.onnx", "ort-cuda", status="unavailable", reason="CUDAExecutionProvider missing [gpu]"),
        BenchRow("/m/bad.onnx", "ort-cpu", status="failed", reason="bad.onnx: no maskrt metadata"),
        ok("/m/lite.pt", "torch-eager", [300.0, 330.0, 390.0]),
    ]
    base = apply_speedups(rows)
    return results_document(rows, system_info(2), {"warmup": 1, "timed": "3 timed frames per row"},
                            base.backend if base else None)


def test_document_follows_the_schema_and_round_trips(tmp_path: Path) -> None:
    doc = _doc()
    assert validate_document(doc) == []
    path = write_json(tmp_path / "out" / "bench.json", doc)
    back = json.loads(path.read_text())
    assert back["schema"] == SCHEMA and back["baseline"] == "torch-eager"
    assert back["rows"][0]["speedup"] == pytest.approx(330.0 / 110.0)
    assert back["system"]["cpu_threads_used"] == 2


def test_validation_names_what_is_wrong() -> None:
    doc = _doc()
    doc["rows"][1]["reason"] = ""
    del doc["rows"][0]["latency"]["p99"]
    doc["rows"][2]["status"] = "crashed"
    problems = validate_document(doc)
    assert any("row 0" in p and "latency" in p for p in problems)
    assert any("row 1" in p and "without a reason" in p for p in problems)
    assert any("row 2" in p and "crashed" in p for p in problems)


def test_markdown_has_one_line_per_row_and_the_reasons() -> None:
    md = to_markdown(_doc())
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 4  # header + rows
    assert "| lite.onnx | ort-cpu | ok | 12.5 | 512x512 | 110.0 |" in table[1]
    assert "3.00x" in table[1] and "1.00x" in table[4]
    assert "[1] CUDAExecutionProvider missing [gpu]" in md and "[2] bad.onnx: no maskrt metadata" in md
    assert "AMD" in md or "System:" in md.splitlines()[0]


def test_terminal_table_keeps_brackets_in_reasons() -> None:
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(rich_table(_doc()))
    text = console.export_text()
    assert "missing [gpu]" in text  # not eaten as rich markup
    assert "torch-eager" in text and "110.0" in text


def test_png_chart(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = write_png(tmp_path / "chart.png", _doc())
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_skipped_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert write_png(tmp_path / "chart.png", _doc()) is None
    assert not (tmp_path / "chart.png").exists()
