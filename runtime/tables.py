"""How a value is written into a CSV cell: the one formatter of every maskrt table (``predict``, ``run``).

``maskrt predict --csv`` and ``maskrt run --csv/--instances/--tracks`` write the same measurement columns; one
formatter gives them the same text, so a table from either reads the same.

Example:
    >>> [csv_cell(v) for v in (0.12345678, -0.0, None, [1, 2], 3)]
    [0.123457, 0.0, '', '[1, 2]', 3]
"""

from __future__ import annotations

import json
from typing import Any

DIGITS = 6
"""Decimal places of a float cell."""


def csv_cell(v: Any) -> Any:
    """One CSV cell: floats rounded to :data:`DIGITS` places (never ``-0.0``), lists/dicts as JSON, None empty."""
    if isinstance(v, float):
        return round(v, DIGITS) + 0.0  # no "-0.0" cells
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v)
    return "" if v is None else v
