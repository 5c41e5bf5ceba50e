"""`maskrt synth`: synthetic bubble and droplet scenes."""

from __future__ import annotations

from maskrt.cli.app import app  # noqa: F401
