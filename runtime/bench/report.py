"""Benchmark results as one JSON document, a Markdown table, a rich table and a PNG bar chart.

The JSON document (``SCHEMA``) is what scripts and tests read::

    {"schema": "maskrt.bench/1", "created": "...Z", "system": {...}, "config": {...},
     "baseline": "torch-eager" | null, "rows": [BenchRow.to_dict(), ...]}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from maskrt.atomic import atomic_path, write_text
from maskrt.runtime.bench.runner import BenchRow
from maskrt.runtime.bench.sysinfo import describe

log = logging.getLogger(__name__)

SCHEMA = "maskrt.bench/1"
ROW_KEYS = (
    "model", "backend", "status", "reason", "device", "file_size_mb", "input_size", "precision", "frames",
    "instances_mean", "throughput_fps", "latency", "stages", "load_s", "peak_rss_mb", "gpu_mem_mb", "speedup",
)
LATENCY_KEYS = ("n", "min", "p50", "p90", "p99", "max", "mean", "std", "fps_p50")


def results_document(
    rows: Sequence[BenchRow], system: Mapping[str, Any], config: Mapping[str, Any], baseline: str | None = None
) -> dict[str, Any]:
    """The JSON document of one benchmark run."""
    return {
        "schema": SCHEMA,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "system": dict(system),
        "config": dict(config),
        "baseline": baseline,
        "rows": [r.to_dict() for r in rows],
    }


def validate_document(doc: Mapping[str, Any]) -> list[str]:
    """Problems with a results document (empty when it follows :data:`SCHEMA`)."""
    problems = []
    if doc.get("schema") != SCHEMA:
        problems.append(f"schema is {doc.get('schema')!r}, expected {SCHEMA!r}")
    for key in ("created", "system", "config", "rows"):
        if key not in doc:
            problems.append(f"missing key {key!r}")
    for i, row in enumerate(doc.get("rows", [])):
        missing = [k for k in ROW_KEYS if k not in row]
        if missing:
            problems.append(f"row {i}: missing {', '.join(missing)}")
        if row.get("status") not in ("ok", "failed", "unavailable"):
            problems.append(f"row {i}: status {row.get('status')!r}")
        if row.get("status") == "ok":
            lat = row.get("latency") or {}
            if any(k not in lat for k in LATENCY_KEYS):
                problems.append(f"row {i}: latency lacks some of {', '.join(LATENCY_KEYS)}")
        elif not row.get("reason"):
            problems.append(f"row {i}: {row.get('status')} without a reason")
    return problems


def write_json(path: str | Path, doc: Mapping[str, Any]) -> Path:
    """Atomically write the results document."""
    write_text(path, json.dumps(doc, indent=2) + "\n")
    return Path(path)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _model_name(row: Mapping[str, Any]) -> str:
    return Path(row["model"]).name


SHORT = {"preprocess": "pre", "postprocess": "post"}


def _stage_split(row: Mapping[str, Any]) -> str:
    """``pre 0.4 · infer 120.3 · post 2.1 · draw 3.0``: every timed stage's median, in pipeline order."""
    stages = row.get("stages") or {}
    return " · ".join(f"{SHORT.get(name, name)} {_fmt(v.get('p50'))}" for name, v in stages.items()) or "-"


def table_rows(doc: Mapping[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, cells and numbered notes (why rows failed or were unavailable) for both tables."""
    notes: list[str] = []
    header = ["Model", "Backend", "Status", "Size MB", "Input", "p50 ms", "p90 ms", "p99 ms", "min/max ms",
              "FPS p50/run", "stages ms (p50)", "Inst.", "Peak RSS MB", "GPU MB", "vs eager"]
    cells = []
    for r in doc["rows"]:
        lat = r.get("latency") or {}
        status = r["status"] if r["status"] == "ok" else f"{r['status']} [{len(notes) + 1}]"
        if r["status"] != "ok":
            notes.append(r.get("reason", ""))
        size = "x".join(str(v) for v in r["input_size"]) if r.get("input_size") else "-"
        cells.append([
            _model_name(r), r["backend"], status, _fmt(r.get("file_size_mb")), size,
            _fmt(lat.get("p50")), _fmt(lat.get("p90")), _fmt(lat.get("p99")),
            f"{_fmt(lat.get('min'))}/{_fmt(lat.get('max'))}" if lat else "-",
            f"{_fmt(lat.get('fps_p50'), 2)}/{_fmt(r.get('throughput_fps'), 2)}" if lat else "-",
            _stage_split(r) if lat else "-", _fmt(r.get("instances_mean")),
            _fmt(r.get("peak_rss_mb"), 0), _fmt(r.get("gpu_mem_mb"), 0),
            f"{r['speedup']:.2f}x" if r.get("speedup") else "-",
        ])
    return header, cells, notes


COMPACT = ("Model", "Backend", "Status", "Input", "p50 ms", "p99 ms", "FPS p50/run", "stages ms (p50)", "Inst.",
           "vs eager")


def to_markdown(doc: Mapping[str, Any], compact: bool = False) -> str:
    """A Markdown table (for the README) with the system line and the run's settings above it.

    ``compact`` keeps only the columns of :data:`COMPACT` (for summaries).
    """
    header, cells, notes = table_rows(doc)
    if compact:
        keep = [header.index(c) for c in COMPACT]
        header, cells = [header[i] for i in keep], [[row[i] for i in keep] for row in cells]
    cfg = doc.get("config", {})
    lines = [
        f"System: {describe(doc['system'])}",
        "",
        (f"Frames: {cfg.get('frames_desc', '?')}; warm-up {cfg.get('warmup', '?')}, "
         f"{cfg.get('timed', '?')}; latency = whole frame (preprocess + infer + postprocess + draw)."),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in cells:
        lines.append("| " + " | ".join(c.replace("|", "/") for c in row) + " |")
    if notes:
        lines.append("")
        lines.extend(f"[{i}] {note}  " for i, note in enumerate(notes, 1))
    return "\n".join(lines) + "\n"


def write_markdown(path: str | Path, doc: Mapping[str, Any]) -> Path:
    """Atomically write :func:`to_markdown`."""
    write_text(path, to_markdown(doc))
    return Path(path)


def rich_table(doc: Mapping[str, Any]) -> Any:
    """A ``rich.table.Table`` of the results for the terminal, with the system as its title."""
    from rich.table import Table
    from rich.text import Text

    header, cells, notes = table_rows(doc)
    drop = header.index("min/max ms")  # in the JSON and Markdown; too wide for a terminal
    header = header[:drop] + header[drop + 1:]
    cells = [c[:drop] + c[drop + 1:] for c in cells]
    caption = Text("\n".join(f"[{i}] {n}" for i, n in enumerate(notes, 1))) if notes else None
    table = Table(title=Text(describe(doc["system"])), title_justify="left", caption=caption,
                  caption_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i < 3 else "right", no_wrap=i < 3)
    for row, r in zip(cells, doc["rows"]):
        style = {"ok": None, "failed": "red", "unavailable": "dim"}[r["status"]]
        table.add_row(*(Text(c) for c in row), style=style)
    return table


def write_png(path: str | Path, doc: Mapping[str, Any]) -> Path | None:
    """A bar chart of p50 latency with p99 whiskers per ok row; ``None`` (and a log line) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no PNG chart (pip install 'maskrt[plot]')")
        return None
    rows = [r for r in doc["rows"] if r["status"] == "ok"]
    if not rows:
        log.warning("no successful row to plot; %s not written", path)
        return None
    labels = [f"{_model_name(r)}\n{r['backend']}" for r in rows]
    p50 = [r["latency"]["p50"] for r in rows]
    p99 = [r["latency"]["p99"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(rows) + 1.5), 4.0), dpi=120)
    yerr = [[0.0] * len(rows), [b - a for a, b in zip(p50, p99)]]
    bars = ax.bar(range(len(rows)), p50, yerr=yerr, capsize=6, color="#3b75af", ecolor="#333333")
    for bar, r in zip(bars, rows):
        text = f"{r['latency']['p50']:.0f} ms"
        if r.get("speedup"):
            text += f"\n{r['speedup']:.2f}x"
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, r["latency"]["p99"]), ha="center", va="bottom",
                    fontsize=7, xytext=(0, 3), textcoords="offset points")  # above the whisker
    ax.set_ylim(0, max(p99) * 1.18)
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel("latency per frame, ms (bar p50, whisker p99)")
    ax.set_title(describe(doc["system"]).split(" | ")[0], fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)
