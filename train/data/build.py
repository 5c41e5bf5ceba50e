"""Turn the raw shapes an importer read into a checked :class:`Annotation`, fixing or skipping bad ones.

Every importer reduces its format to a class index plus a list of :class:`Part` s (polygons, full-image
masks or COCO RLEs that together make one instance) and calls :func:`make_annotation`, so all formats
share one set of checks and one wording of the problems:

- a polygon with fewer than 3 points, non-finite coordinates or zero area is skipped;
- points outside the image are clipped to it (the polygon is cut at the border), and reported;
- an RLE whose size does not match the image, or whose counts are corrupt, is skipped;
- an instance with no usable part left is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from maskrt import rle as rle_codec
from maskrt.train.data.geometry import (
    clip_polygon,
    mask_bbox,
    polygon_area,
    polygon_perimeter,
    polygons_bbox,
    rasterize_polygons,
    rasterized_pixels,
)
from maskrt.train.data.problems import ProblemLog
from maskrt.train.data.record import Annotation

MIN_AREA = 1e-6  # square pixels; below this a polygon is degenerate (collinear points)
EDGE_TOLERANCE = 1e-6  # pixels; coordinates this close outside the image are not worth a report


@dataclass
class Part:
    """One piece of an instance: exactly one of ``polygon`` ``(K, 2)``, ``mask`` ``(H, W)`` bool, ``rle``."""

    polygon: np.ndarray | None = None
    mask: np.ndarray | None = None
    rle: dict[str, Any] | None = None
    kind: str = "polygon"  # what the user drew (polygon, rectangle, circle, ...) for messages


@np.errstate(over="ignore", invalid="ignore")  # absurd coordinates get a problem line, not a warning
def check_polygon(
    points: Any, width: int, height: int, item: str, log: ProblemLog, kind: str = "polygon"
) -> np.ndarray | None:
    """Return the polygon as a ``(K, 2)`` float array clipped to the image, or ``None`` (reported) if unusable."""
    try:
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        log.add(item, f"{kind} has malformed coordinates; skipped")
        return None
    if not np.isfinite(p).all():
        log.add(item, f"{kind} has non-finite coordinates; skipped")
        return None
    if len(p) < 3:
        log.add(item, f"{kind} has {len(p)} point{'s' if len(p) != 1 else ''}; skipped")
        return None
    if polygon_area(p) < MIN_AREA:
        log.add(item, f"{kind} has zero area; skipped")
        return None
    tol = EDGE_TOLERANCE
    outside = (p[:, 0] < -tol) | (p[:, 0] > width + tol) | (p[:, 1] < -tol) | (p[:, 1] > height + tol)
    if outside.any():
        clipped = clip_polygon(p, width, height)
        if len(clipped) < 3 or polygon_area(clipped) < MIN_AREA:
            log.add(item, f"{kind} lies outside the {width}x{height} image; skipped")
            return None
        log.add(
            item,
            f"{int(outside.sum())} of {len(p)} {kind} points outside the {width}x{height} image; clipped to the image",
        )
        return clipped
    return np.clip(p, 0.0, [float(width), float(height)])


def _rle_runs(
    rle: dict[str, Any], width: int, height: int, item: str, log: ProblemLog
) -> tuple[list[int], Any] | None:
    """A COCO RLE's run lengths checked against this image (size, corrupt or negative counts, total), with its
    ``counts`` as given (compressed string or list); ``None`` (reported) when it does not fit or is corrupt."""
    try:
        size = [int(v) for v in rle["size"]]
        counts = rle["counts"]
        if len(size) != 2:
            raise ValueError("size is not [h, w]")
    except (KeyError, TypeError, ValueError, OverflowError):
        log.add(item, "RLE needs 'size' [h, w] and 'counts'; skipped")
        return None
    if size != [height, width]:
        log.add(item, f"RLE size {size[0]}x{size[1]} (h x w) does not match the image's {height}x{width}; skipped")
        return None
    try:
        if isinstance(counts, bytes):
            counts = counts.decode("ascii")
        runs = rle_codec.string_to_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]
        if any(c < 0 for c in runs):
            raise ValueError("negative run length")
        if sum(runs) != height * width:
            raise ValueError(f"RLE counts sum to {sum(runs)}, expected {height * width} for {height}x{width}")
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError) as exc:
        log.add(item, f"RLE counts are corrupt ({exc}); skipped")
        return None
    return runs, counts


def check_rle(rle: dict[str, Any], width: int, height: int, item: str, log: ProblemLog) -> np.ndarray | None:
    """Decode a COCO RLE for this image, or return ``None`` (reported) when it does not fit or is corrupt."""
    checked = _rle_runs(rle, width, height, item, log)
    return None if checked is None else rle_codec.counts_to_mask(checked[0], height, width)


@np.errstate(over="ignore", invalid="ignore")  # absurd coordinates get a problem line, not a warning
def make_annotation(
    category: int,
    parts: list[Part],
    width: int,
    height: int,
    item: str,
    log: ProblemLog,
    *,
    iscrowd: bool = False,
    part_items: list[str] | None = None,
) -> Annotation | None:
    """Check every part and build one instance; ``None`` (reported) when nothing usable is left.

    Polygon-only instances stay polygons (box = vertex extent, as COCO writes it). When any part is a
    mask or RLE, all parts are rasterised and united into one compressed RLE (box = tight pixel box).
    ``part_items`` names each part in messages (default: ``"<item>, part k"``).
    """
    if len(parts) == 1 and parts[0].rle is not None and part_items is None:
        # one RLE (synthetic and exported datasets): check it from its counts, no full-frame decode
        return _rle_annotation(category, parts[0].rle, width, height, item, log, iscrowd)
    polys: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    keep_rle: dict[str, Any] | None = None
    for k, part in enumerate(parts):
        if part_items is not None:
            where = part_items[k]
        else:
            where = item if len(parts) == 1 else f"{item}, part {k + 1}"
        if part.polygon is not None:
            p = check_polygon(part.polygon, width, height, where, log, part.kind)
            if p is not None:
                polys.append(p)
        elif part.rle is not None:
            m = check_rle(part.rle, width, height, where, log)
            if m is not None:
                if not m.any():
                    log.add(where, "mask is empty (zero area); skipped")
                    continue
                masks.append(m)
                if len(parts) == 1:
                    keep_rle = dict(part.rle)
                    if isinstance(keep_rle["counts"], bytes):
                        keep_rle["counts"] = keep_rle["counts"].decode("ascii")
        elif part.mask is not None:
            m = np.asarray(part.mask, dtype=bool)
            if m.shape != (height, width):
                log.add(
                    where, f"mask is {m.shape[1]}x{m.shape[0]}, not the image's {width}x{height}; skipped"
                )
            elif not m.any():
                log.add(where, f"{part.kind} is empty (zero area); skipped")
            else:
                masks.append(m)
    if not polys and not masks:
        if len(parts) > 1:
            log.add(item, "no usable part left; instance skipped")
        elif not parts:
            log.add(item, "has no shape; skipped")
        return None
    if not masks:
        # a shape thinner than about two pixels may cover no pixel by half: it would train on an empty mask
        thin = sum(polygon_area(p) for p in polys) < sum(polygon_perimeter(p) for p in polys)
        if thin and rasterized_pixels(polys, height, width) == 0:
            log.add(item, "shape covers no pixel by half (thinner than a pixel, empty mask); skipped")
            return None
        return Annotation(category, polygons=polys, bbox=polygons_bbox(polys), iscrowd=iscrowd, source=item)
    union = np.zeros((height, width), dtype=bool)
    for m in masks:
        union |= m
    if polys:
        union |= rasterize_polygons(polys, height, width)
    rle = keep_rle if keep_rle is not None else rle_codec.encode(union)
    return Annotation(category, rle=rle, bbox=mask_bbox(union), iscrowd=iscrowd, source=item)


def _rle_annotation(
    category: int, rle: dict[str, Any], width: int, height: int, item: str, log: ProblemLog, iscrowd: bool
) -> Annotation | None:
    """One-RLE instance checked on its run lengths: size, corrupt counts, emptiness, tight box."""
    checked = _rle_runs(rle, width, height, item, log)
    if checked is None:
        return None
    runs, counts = checked
    if sum(runs[1::2]) == 0:
        log.add(item, "mask is empty (zero area); skipped")
        return None
    keep = {"size": [height, width], "counts": counts if isinstance(counts, str) else rle_codec.counts_to_string(runs)}
    return Annotation(
        category, rle=keep, bbox=rle_codec.counts_bbox(runs, height, width), iscrowd=iscrowd, source=item
    )
