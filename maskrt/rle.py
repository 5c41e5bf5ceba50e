"""COCO run-length encoding in plain numpy (no pycocotools), for the runtime and the importers.

COCO RLE counts alternate runs of 0 and 1 over the mask flattened in column-major order, starting
with a run of 0 (possibly empty). The compressed form packs the counts into an ASCII string, as
pycocotools' ``rleToString`` does, so files written here read back in pycocotools and vice versa.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mask_to_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a 2-D boolean mask in COCO order (column-major, first run is zeros)."""
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return [int(c) for c in counts]


def counts_to_mask(counts: list[int], height: int, width: int) -> np.ndarray:
    """Decode uncompressed COCO counts into an ``(height, width)`` boolean mask."""
    total = height * width
    counts_arr = np.asarray(counts, dtype=np.int64)
    if counts_arr.sum() != total:
        raise ValueError(f"RLE counts sum to {int(counts_arr.sum())}, expected {total} for {height}x{width}")
    values = np.zeros(len(counts_arr), dtype=bool)
    values[1::2] = True
    flat = np.repeat(values, counts_arr)
    return flat.reshape((height, width), order="F")


def counts_to_string(counts: list[int]) -> str:
    """Compress counts into COCO's ASCII form (pycocotools ``rleToString``)."""
    out: list[str] = []
    for i, c in enumerate(counts):
        x = int(c)
        if i > 2:
            x -= int(counts[i - 2])
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5
            more = (x != -1) if (ch & 0x10) else (x != 0)
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def string_to_counts(s: str) -> list[int]:
    """Decompress COCO's ASCII counts (pycocotools ``rleFrString``)."""
    counts: list[int] = []
    p = 0
    n = len(s)
    while p < n:
        x = 0
        k = 0
        more = True
        while more:
            if p >= n:
                raise ValueError("truncated RLE string")
            ch = ord(s[p]) - 48
            x |= (ch & 0x1F) << (5 * k)
            more = bool(ch & 0x20)
            p += 1
            k += 1
            if not more and (ch & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode(mask: np.ndarray, compressed: bool = True) -> dict[str, Any]:
    """Encode a boolean mask as a COCO RLE dict ``{"size": [h, w], "counts": ...}``."""
    h, w = mask.shape[:2]
    counts = mask_to_counts(mask)
    return {"size": [int(h), int(w)], "counts": counts_to_string(counts) if compressed else counts}


def decode(rle: dict[str, Any]) -> np.ndarray:
    """Decode a COCO RLE dict (compressed string, bytes, or uncompressed list) to a boolean mask."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = string_to_counts(counts)
    return counts_to_mask(list(counts), h, w)


def area(rle: dict[str, Any]) -> int:
    """Number of foreground pixels of an RLE without decoding it."""
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    if isinstance(counts, str):
        counts = string_to_counts(counts)
    return int(sum(counts[1::2]))


def counts_bbox(counts: list[int], height: int, width: int) -> tuple[float, float, float, float]:
    """Tight ``[x, y, w, h]`` box of an RLE's foreground straight from its counts (no decoding).

    Runs are column-major: a run of ones from flat index ``s`` to ``e`` covers columns ``s // h`` to
    ``e // h``; a run spanning two or more columns reaches both the top and the bottom row.
    """
    c = np.asarray(counts, dtype=np.int64)
    if c.size < 2:
        return (0.0, 0.0, 0.0, 0.0)
    ends = np.cumsum(c)
    starts = ends[0::2][: len(c[1::2])]  # flat start of each run of ones
    lengths = c[1::2]
    keep = lengths > 0
    if not keep.any():
        return (0.0, 0.0, 0.0, 0.0)
    s, e = starts[keep], starts[keep] + lengths[keep] - 1
    col0, col1 = s // height, e // height
    multi = col1 > col0
    y0 = int(np.where(multi, 0, s % height).min())
    y1 = int(np.where(multi, height - 1, e % height).max()) + 1
    x0, x1 = int(col0.min()), int(col1.max()) + 1
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
