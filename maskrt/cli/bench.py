"""`maskrt` commands: bench."""

from __future__ import annotations

from maskrt.cli.app import app  # noqa: F401
