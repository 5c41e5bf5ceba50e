"""Collect the problems an importer finds, each as one line naming the file and the item.

Importers never raise for a bad annotation: they fix it or skip it and record why here, so that
``maskrt data check`` can list every problem and training can go on with what is usable. Only a
file that cannot be read at all, or a dataset with nothing usable left, raises
:class:`~maskrt.errors.MaskrtError`.

Example:
    >>> log = ProblemLog("annotations.json")
    >>> log.add("annotation id 17 (image 'a.jpg')", "polygon has 2 points; skipped")
    >>> log.messages
    ["annotations.json: annotation id 17 (image 'a.jpg'): polygon has 2 points; skipped"]
"""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


class ProblemLog:
    """Problems found in one annotation file (or folder), as ready-to-print one-line messages."""

    def __init__(self, file: str | Path) -> None:
        self.file = str(file)
        self.messages: list[str] = []

    def add(self, item: str | None, what: str) -> None:
        """Record that ``item`` (e.g. ``"annotation id 17 (image 'a.jpg')"``) had problem ``what``."""
        msg = f"{self.file}: {item}: {what}" if item else f"{self.file}: {what}"
        logger.debug(msg)
        self.messages.append(msg)

    def __len__(self) -> int:
        return len(self.messages)


def display_name(path: Path, root: Path | None) -> str:
    """A short name for ``path`` in messages: relative to ``root`` when inside it, else as given."""
    if root is not None:
        try:
            rel = path.resolve().relative_to(root.resolve())
            return str(rel) if str(rel) != "." else path.name
        except ValueError:
            pass
    return str(path)


def summary_lines(problems: list[str], name: str | Path, limit: int = 5) -> list[str]:
    """A count line and the first ``limit`` problems, for commands that go on with what is usable.

    ``maskrt train`` and ``maskrt eval`` log these; ``maskrt data check NAME`` lists them all.
    """
    if not problems:
        return []
    n = len(problems)
    more = f" (first {limit} below; `maskrt data check {name}` lists all)" if n > limit else ""
    head = f"{name}: {n} problem{'s' if n != 1 else ''} on import, each fixed or skipped as it says{more}"
    return [head] + [f"  {p}" for p in problems[:limit]]
