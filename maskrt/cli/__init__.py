"""The ``maskrt`` command line: one typer app over train, export and runtime.

Each command module imports its heavy dependencies (torch, onnxruntime) inside the command, so
``maskrt --help`` and the runtime commands start fast and work without torch.
"""

from __future__ import annotations

import sys

import typer

from maskrt.cli import bench, data, demo, export, predict, serve, stream, synth, train  # noqa: F401  (registers commands)
from maskrt.cli.app import app
from maskrt.errors import MaskrtError


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        app(args=argv, prog_name="maskrt")  # standalone mode: usage errors exit 2 by themselves
        code = 0
    except MaskrtError as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 2
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        code = 130
    if argv is None:  # called as the console script
        sys.exit(code)
    return code


__all__ = ["app", "main"]
