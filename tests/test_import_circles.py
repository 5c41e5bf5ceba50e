"""No two maskrt modules import each other (at the top or inside a function): each knot has one direction.

The circles issue 20 named, ``runtime/stream/mjpeg.py`` <-> ``sources.py`` and ``train/data/labelme.py`` <->
``loader.py``, are gone: what both sides need lives in a third module (``stream/spec.py``, ``data/files.py``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"maskrt": "maskrt", "maskrt.train": "train", "maskrt.export": "export", "maskrt.runtime": "runtime"}
KNOWN = {("maskrt.train.synth.scenes", "maskrt.train.synth.taylor")}  # Scene under TYPE_CHECKING; not yet untied


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg, folder in FOLDERS.items():
        for f in (ROOT / folder).rglob("*.py"):
            parts = [p for p in f.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            mods[".".join([pkg, *parts])] = f
    return mods


def _imports(path: Path, mods: dict[str, Path]) -> set[str]:
    deps = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                deps.add(full if full in mods else node.module)
        elif isinstance(node, ast.Import):
            deps.update(alias.name for alias in node.names)
    return {d for d in deps if d in mods}


def test_no_two_modules_import_each_other() -> None:
    mods = _modules()
    graph = {name: _imports(path, mods) - {name} for name, path in mods.items()}
    circles = {
        tuple(sorted((a, b)))
        for a, deps in graph.items()
        for b in deps
        if a in graph[b] and not (a.startswith(b + ".") or b.startswith(a + "."))  # a package and its own module
    }
    assert circles <= KNOWN, sorted(circles - KNOWN)
    for pair in (("maskrt.runtime.stream.mjpeg", "maskrt.runtime.stream.sources"),
                 ("maskrt.train.data.labelme", "maskrt.train.data.loader")):
        assert pair[1] not in graph[pair[0]] or pair[0] not in graph[pair[1]], pair
