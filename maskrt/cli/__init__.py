"""The ``maskrt`` command line: one typer app over train, export and runtime.

Each command module imports its heavy dependencies (torch, onnxruntime) inside the command, so
``maskrt --help`` and the runtime commands start fast and work without torch.
"""

from __future__ import annotations

import sys

import click

from maskrt.cli import bench, data, demo, export, predict, stream, synth, train  # noqa: F401  (registers commands)
from maskrt.cli.app import app
from maskrt.errors import MaskrtError


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors become one line on stderr and exit code 2."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="maskrt")
    except MaskrtError as exc:
        click.echo(f"error: {exc}", err=True)
        return _exit(2, argv)
    except click.exceptions.Exit as exc:
        return _exit(exc.exit_code, argv)
    except click.ClickException as exc:
        exc.show()
        return _exit(exc.exit_code, argv)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return _exit(130, argv)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return _exit(130, argv)
    code = result if isinstance(result, int) else 0
    return _exit(code, argv)


def _exit(code: int, argv: list[str] | None) -> int:
    if argv is None:  # called as the console script
        sys.exit(code)
    return code


__all__ = ["app", "main"]
