"""mypy plugin for ``mypy-trt.ini`` (a developer tool, not shipped in the package): make the tensorrt-stubs package
usable by mypy.

tensorrt-stubs 10.13 (pure stubs of the TensorRT Python API, ``pip install --no-deps tensorrt-stubs``)
installs ``tensorrt/__init__.pyi`` without a ``py.typed`` marker, and four plugin-interface methods in
``tensorrt_bindings/tensorrt.pyi`` name a parameter ``in`` (a Python keyword) and one puts a
parameter without default after defaulted ones: no parser accepts either. When mypy loads this
plugin, it copies those stubs, with ``in`` renamed ``in_`` and the missing defaults added, into
``.mypy_cache/trt-stubs`` (on ``mypy_path`` in ``mypy-trt.ini``), so every TensorRT call is checked
against the real 10.13 signatures. It adds no type-checking behaviour of its own.
"""

from __future__ import annotations

import ast
import re
import sysconfig
from pathlib import Path

from mypy.plugin import Plugin

STUB_FILES = ("tensorrt/__init__.pyi", "tensorrt_bindings/__init__.pyi", "tensorrt_bindings/tensorrt.pyi")
TARGET = Path(__file__).resolve().parent.parent / ".mypy_cache" / "trt-stubs"
_KEYWORD_PARAM = re.compile(r"([(,]\s*)in(\s*:)")
_DEF = re.compile(r"^(\s*def \w+\()(.*)(\)\s*->.*:\s*)$")


def _split_params(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return parts + [cur] if cur.strip() else parts


def _fix_line(line: str) -> str:
    line = _KEYWORD_PARAM.sub(r"\1in_\2", line)
    m = _DEF.match(line)
    if not m:
        return line
    params, seen_default, changed = _split_params(m.group(2)), False, False
    for i, p in enumerate(params):
        bare = p.strip()
        if "=" in bare:
            seen_default = True
        elif seen_default and bare and not bare.startswith("*"):
            params[i] = p + " = ..."
            changed = True
        if bare.startswith("*"):
            seen_default = False
    return m.group(1) + ",".join(params) + m.group(3) if changed else line


def fix_stub(text: str) -> str:
    """The stub text made parseable (keyword parameter names, defaults out of order)."""
    return "\n".join(_fix_line(line) for line in text.split("\n"))


def _site_dirs() -> list[Path]:
    return [Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")]


def prepare_stubs(target: Path = TARGET) -> bool:
    """Write the fixed stub copy under ``target``; False when tensorrt-stubs is not installed."""
    for site in _site_dirs():
        if all((site / f).is_file() for f in STUB_FILES):
            for f in STUB_FILES:
                text = (site / f).read_text(encoding="utf-8")
                out = target / f
                out.parent.mkdir(parents=True, exist_ok=True)
                fixed = fix_stub(text)
                ast.parse(fixed, filename=str(out))  # fail here, clearly, if a new stub bug appears
                if not out.is_file() or out.read_text(encoding="utf-8") != fixed:
                    out.write_text(fixed, encoding="utf-8")
            return True
    return False


class _TrtStubsPlugin(Plugin):
    pass


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point."""
    if not prepare_stubs():
        raise RuntimeError("tensorrt-stubs is not installed: run `pip install --no-deps tensorrt-stubs`")
    return _TrtStubsPlugin
