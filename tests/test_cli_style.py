"""Every command module declares its options one way: ``name: Annotated[T, typer.Option(...)] = default``."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "maskrt" / "cli"


def test_no_option_is_declared_as_a_default_value() -> None:
    old_style = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.arguments):
                for d in [*node.defaults, *node.kw_defaults]:
                    if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr in (
                            "Option", "Argument"):
                        old_style.append(f"{path.name}:{d.lineno}")
    assert not old_style, old_style
