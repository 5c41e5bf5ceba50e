"""Run every benchmark script in this folder and write ``benchmarks/results/summary.md``.

Each script writes its own JSON into ``benchmarks/results/``; this runner calls them one after the
other (never in parallel: they would measure each other), records how each ended, and renders every
result JSON found into one Markdown summary with the machine it came from. ``maskrt bench`` documents
(schema ``maskrt.bench/1``) become compact tables; other JSON is rendered from its ``rows``/``results``
list or its top-level numbers.

    python benchmarks/run_all.py                 # everything (tens of minutes on 2 shared cores)
    python benchmarks/run_all.py --quick         # smoke run: scripts that accept --quick get it
    python benchmarks/run_all.py --only scaling_size scaling_instances
    python benchmarks/run_all.py --summary-only  # re-render summary.md from the JSON already there
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SUMMARY = RESULTS / "summary.md"
RUN_LOG = RESULTS / "run_all.json"
NOT_SCRIPTS = ("run_all.py", "gpu_check.py")  # gpu_check runs on a GPU machine, by gpu_check.sh


def scripts() -> list[Path]:
    """Benchmark scripts: every ``*.py`` here except this runner, helpers (``_*``, ``*_common.py``)."""
    return sorted(p for p in HERE.glob("*.py")
                  if p.name not in NOT_SCRIPTS and not p.name.startswith("_") and not p.stem.endswith("_common"))


def accepts(script: Path, flag: str) -> bool:
    """Whether ``script`` mentions ``flag`` among its options (read from its source, no run needed)."""
    return f'"{flag}"' in script.read_text(encoding="utf-8", errors="replace")


def run_script(script: Path, extra: list[str], timeout: float) -> dict[str, Any]:
    """Run one script with this interpreter; return its status, wall time and output tail."""
    cmd = [sys.executable, str(script), *extra]
    print(f"== {script.name} {' '.join(extra)}", flush=True)
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True, timeout=timeout, check=False)
        status = "ok" if res.returncode == 0 else f"failed (exit {res.returncode})"
        tail = (res.stdout + res.stderr)[-3000:]
    except subprocess.TimeoutExpired as exc:
        status, tail = f"timed out after {timeout:.0f} s", str(exc.stdout or "")[-3000:]
    wall = time.perf_counter() - t0
    print(f"   {status} in {wall:.0f} s", flush=True)
    if status != "ok":
        print("   " + "\n   ".join(tail.strip().splitlines()[-8:]), flush=True)
    return {"script": script.name, "args": extra, "status": status, "wall_s": round(wall, 1), "tail": tail}


def _scalar(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    if isinstance(v, (list, tuple)) and all(_scalar(x) for x in v) and len(v) <= 4:
        return "x".join(str(x) for x in v)
    return "-" if v is None else str(v).replace("|", "/").replace("\n", " ")[:60]


def _flatten(d: dict[str, Any], prefix: str = "", depth: int = 2) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and depth > 0:
            out.update(_flatten(v, key + ".", depth - 1))
        elif _scalar(v) or (isinstance(v, list) and len(v) <= 4 and all(_scalar(x) for x in v)):
            out[key] = v
    return out


def generic_markdown(doc: Any, max_cols: int = 12) -> str:
    """Markdown for a result JSON of any shape: a table of its row list, else a list of its numbers."""
    if isinstance(doc, list):
        doc = {"rows": doc}
    if not isinstance(doc, dict):
        return f"`{_cell(doc)}`\n"
    lines = []
    system = doc.get("system") or doc.get("machine")
    if isinstance(system, dict):
        try:
            from maskrt.runtime.bench.sysinfo import describe

            lines += [f"System: {describe(system)}", ""]
        except (KeyError, TypeError, ImportError):
            lines += ["System: " + ", ".join(f"{k} {_cell(v)}" for k, v in _flatten(system, depth=0).items()), ""]
    elif isinstance(system, str):
        lines += [f"System: {system}", ""]
    table = next((doc[k] for k in ("rows", "results", "runs", "measurements")
                  if isinstance(doc.get(k), list) and doc[k] and all(isinstance(r, dict) for r in doc[k])), None)
    keyed = None
    if table is None:  # a dict of dicts ({"scene": {...}, ...}) is a table keyed by its names
        keyed = next((k for k, v in doc.items() if isinstance(v, dict) and len(v) > 1
                      and all(isinstance(r, dict) for r in v.values())), None)
        if keyed:
            table = [{"name": name, **row} for name, row in doc[keyed].items()]
    if table:
        flat = [_flatten(r) for r in table]
        cols: list[str] = []
        for r in flat:
            cols += [k for k in r if k not in cols]
        cols = cols[:max_cols]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join("---" for _ in cols) + "|")
        lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in flat]
    rest = {k: v for k, v in doc.items() if k not in ("system", "machine", keyed)}
    scalars = {k: v for k, v in _flatten(rest).items()
               if not isinstance(v, str) or len(v) < 80}
    if scalars:
        if table:
            lines.append("")
        lines += [f"- {k}: {_cell(v)}" for k, v in list(scalars.items())[:30]]
    return "\n".join(lines) + "\n"


def render(path: Path) -> str:
    """One result file as a Markdown section."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return f"### {path.stem}\n\nunreadable: {exc}\n"
    head = f"### {path.stem}\n\n"
    if isinstance(doc, dict) and doc.get("schema") == "maskrt.bench/1":
        from maskrt.runtime.bench.report import to_markdown

        created = doc.get("created", "?")
        return head + f"Measured {created}.\n\n" + to_markdown(doc, compact=True)
    return head + generic_markdown(doc)


def summary_markdown(runs: list[dict[str, Any]]) -> str:
    """The whole summary: which scripts ran and how, then every result JSON."""
    from maskrt.runtime.bench.sysinfo import describe, system_info

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark summary",
        "",
        f"Generated {now} by `python benchmarks/run_all.py` on: {describe(system_info())}",
        "",
        ("Speeds are ratios to a baseline measured in the same run (PyTorch eager unless a section says "
         "otherwise); absolute times on a shared machine vary from run to run. See benchmarks/README.md."),
        "",
    ]
    if runs:
        lines += ["| Script | Status | Wall s |", "|---|---|---|"]
        lines += [f"| {r['script']} {' '.join(r['args'])} | {r['status']} | {r['wall_s']} |" for r in runs]
        lines.append("")
    results = sorted(p for p in RESULTS.glob("*.json") if p.name != RUN_LOG.name and not p.name.startswith("."))
    if not results:
        lines.append("No result JSON in benchmarks/results/ yet.")
    for path in results:
        lines += [render(path), ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="+", default=None, help="script names (with or without .py) to run")
    p.add_argument("--skip", nargs="+", default=[], help="script names to leave out")
    p.add_argument("--quick", action="store_true", help="pass --quick to every script that accepts it")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per script before it is stopped")
    p.add_argument("--summary-only", action="store_true", help="only re-render summary.md from existing JSON")
    args = p.parse_args(argv)
    names = {n.removesuffix(".py") for n in args.only} if args.only else None
    skip = {n.removesuffix(".py") for n in args.skip}
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    if not args.summary_only:
        todo = [s for s in scripts() if (names is None or s.stem in names) and s.stem not in skip]
        if names and not todo:
            print(f"no script named {', '.join(sorted(names))}; have {', '.join(s.stem for s in scripts())}")
            return 2
        for script in todo:
            extra = ["--quick"] if args.quick and accepts(script, "--quick") else []
            runs.append(run_script(script, extra, args.timeout))
        earlier = json.loads(RUN_LOG.read_text(encoding="utf-8")) if RUN_LOG.is_file() else []
        ran = {r["script"] for r in runs}  # keep how the scripts not run this time ended last time
        log_rows = sorted([r for r in earlier if r["script"] not in ran] + runs, key=lambda r: r["script"])
        RUN_LOG.write_text(json.dumps(log_rows, indent=2) + "\n", encoding="utf-8")
        runs = log_rows
    elif RUN_LOG.is_file():
        runs = json.loads(RUN_LOG.read_text(encoding="utf-8"))
    sys.path.insert(0, str(HERE.parent))
    from maskrt.atomic import write_text

    write_text(SUMMARY, summary_markdown(runs))
    print(f"wrote {SUMMARY}")
    return 0 if all(r["status"] == "ok" for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
