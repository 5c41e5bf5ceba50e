"""Shape geometry shared by the importers: polygons from rectangles, circles and ellipses, clipping, areas.

All coordinates are image pixels with ``x`` to the right and ``y`` down; the image covers
``[0, width] x [0, height]`` (COCO's convention: a pixel's centre is at ``i + 0.5``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

ELLIPSE_VERTICES = 64


def polygon_area(poly: np.ndarray) -> float:
    """Absolute area of a simple or self-touching polygon (shoelace formula), in square pixels."""
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    twice = np.dot(x[:-1], y[1:]) - np.dot(y[:-1], x[1:]) + x[-1] * y[0] - y[-1] * x[0]
    return float(abs(twice) / 2.0)


def clip_polygon(poly: np.ndarray, width: float, height: float) -> np.ndarray:
    """Intersection of a polygon with the image rectangle (Sutherland-Hodgman, exact for any polygon).

    Returns a ``(K, 2)`` array; ``K`` may be below 3 when nothing is left inside.
    """
    pts: list[tuple[float, float]] = [
        (float(x), float(y)) for x, y in np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    ]
    # each edge: (axis, limit, keep_if_greater)
    for axis, limit, greater in (
        (0, 0.0, True),
        (0, float(width), False),
        (1, 0.0, True),
        (1, float(height), False),
    ):
        if not pts:
            break
        out: list[tuple[float, float]] = []
        prev = pts[-1]
        for cur in pts:
            cur_in = cur[axis] >= limit if greater else cur[axis] <= limit
            prev_in = prev[axis] >= limit if greater else prev[axis] <= limit
            if cur_in != prev_in:
                t = (limit - prev[axis]) / (cur[axis] - prev[axis])
                cross = (prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1]))
                cross = (limit, cross[1]) if axis == 0 else (cross[0], limit)
                out.append(cross)
            if cur_in:
                out.append(cur)
            prev = cur
        pts = out
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def rotate_points(pts: np.ndarray, cx: float, cy: float, angle_rad: float) -> np.ndarray:
    """Rotate points about ``(cx, cy)``; positive angles turn clockwise on screen (y points down)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    d = np.asarray(pts, dtype=np.float64) - (cx, cy)
    return np.stack([cx + d[:, 0] * c - d[:, 1] * s, cy + d[:, 0] * s + d[:, 1] * c], axis=1)


def rectangle_polygon(x0: float, y0: float, x1: float, y1: float, angle_deg: float = 0.0) -> np.ndarray:
    """The four corners of a box (optionally rotated about its centre by ``angle_deg`` clockwise)."""
    xa, xb = sorted((float(x0), float(x1)))
    ya, yb = sorted((float(y0), float(y1)))
    pts = np.array([[xa, ya], [xb, ya], [xb, yb], [xa, yb]], dtype=np.float64)
    if angle_deg:
        pts = rotate_points(pts, (xa + xb) / 2, (ya + yb) / 2, math.radians(angle_deg))
    return pts


def ellipse_polygon(
    cx: float, cy: float, rx: float, ry: float, angle_rad: float = 0.0, vertices: int = ELLIPSE_VERTICES
) -> np.ndarray:
    """A polygon with the same area as the ellipse (vertices pushed out to make up for the chords)."""
    rx, ry = abs(float(rx)), abs(float(ry))
    n = max(8, int(vertices))
    # an inscribed regular n-gon has area n/2 sin(2pi/n) r^2; scale radii so it equals pi r^2
    k = math.sqrt(2.0 * math.pi / (n * math.sin(2.0 * math.pi / n)))
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    pts = np.stack([cx + k * rx * np.cos(t), cy + k * ry * np.sin(t)], axis=1)
    if angle_rad:
        pts = rotate_points(pts, cx, cy, angle_rad)
    return pts


def circle_polygon(cx: float, cy: float, r: float, vertices: int = ELLIPSE_VERTICES) -> np.ndarray:
    """A polygon with the same area as the circle."""
    return ellipse_polygon(cx, cy, r, r, 0.0, vertices)


def polygons_bbox(polys: list[np.ndarray]) -> tuple[float, float, float, float]:
    """``[x, y, w, h]`` extent of all vertices (COCO's box for a polygon annotation)."""
    allp = np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polys], axis=0)
    x0, y0 = allp.min(axis=0)
    x1, y1 = allp.max(axis=0)
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    """Tight ``[x, y, w, h]`` box around the pixels of a boolean mask (pixel-edge convention)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min()))


SUPERSAMPLE = 4


def _covered(polys: list[np.ndarray], height: int, width: int) -> tuple[np.ndarray, int, int] | None:
    """Pixels more than half covered, inside the polygons' box: ``(mask, x0, y0)``, or ``None`` if off-image."""
    pts = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polys]
    pts = [p for p in pts if len(p) >= 3 and np.isfinite(p).all()]
    if not pts or height <= 0 or width <= 0:
        return None
    allp = np.concatenate(pts, axis=0)
    x0 = int(max(0, np.floor(allp[:, 0].min()) - 1))
    y0 = int(max(0, np.floor(allp[:, 1].min()) - 1))
    x1 = int(min(width, np.ceil(allp[:, 0].max()) + 1))
    y1 = int(min(height, np.ceil(allp[:, 1].max()) + 1))
    if x1 <= x0 or y1 <= y0:
        return None
    k = SUPERSAMPLE
    bw, bh = x1 - x0, y1 - y0
    canvas = np.zeros((bh * k, bw * k), dtype=np.uint8)
    # sub-pixel j covers [j/k, (j+1)/k]; OpenCV puts pixel centres on integers, hence the -0.5
    fixed = [np.round(((p - (x0, y0)) * k - 0.5) * 8).astype(np.int32) for p in pts]
    step = 240 // (k * k)  # fill with step*k*k so a block mean, step*covered, is exact in uint8
    cv2.fillPoly(canvas, fixed, step * k * k, lineType=cv2.LINE_8, shift=3)
    cover = cv2.resize(canvas, (bw, bh), interpolation=cv2.INTER_AREA)  # integer factor: block means
    return cover > step * (k * k) // 2, x0, y0


def rasterize_polygons(polys: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """Boolean ``(height, width)`` mask of the pixels more than half covered by the polygons (their union).

    Coverage is measured on a 4x4 sub-pixel grid inside the polygons' box only, so the result matches
    pycocotools' masks to within a fraction of a percent in area, without the half-pixel outward bias
    of a plain ``cv2.fillPoly`` (which draws every pixel its edges touch).
    """
    out = np.zeros((height, width), dtype=bool)
    got = _covered(polys, height, width)
    if got is not None:
        local, x0, y0 = got
        out[y0 : y0 + local.shape[0], x0 : x0 + local.shape[1]] = local
    return out


def rasterized_pixels(polys: list[np.ndarray], height: int, width: int) -> int:
    """How many pixels :func:`rasterize_polygons` would set, without a full-image canvas."""
    got = _covered(polys, height, width)
    return 0 if got is None else int(got[0].sum())


def polygon_perimeter(poly: np.ndarray) -> float:
    """Length of the closed outline, in pixels."""
    p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    if len(p) < 2:
        return 0.0
    d = np.diff(np.concatenate([p, p[:1]]), axis=0)
    return float(np.hypot(d[:, 0], d[:, 1]).sum())
