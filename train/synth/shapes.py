"""Outlines of bubbles, droplets and capsules as float polygons (``(K, 2)`` arrays of ``x, y`` pixels).

Everything here is pure numpy so scenes and the video simulation can build shapes without drawing them.
"""

from __future__ import annotations

import numpy as np


def _vertex_count(radius: float) -> int:
    """Enough vertices that the outline looks smooth at this size, few enough to stay fast."""
    return int(np.clip(radius * 1.5, 16, 160))


def blob(
    cx: float,
    cy: float,
    a: float,
    b: float,
    angle: float = 0.0,
    wobble: float = 0.0,
    rng: np.random.Generator | None = None,
    harmonics: np.ndarray | None = None,
) -> np.ndarray:
    """A perturbed ellipse: semi-axes ``a`` (along ``angle``) and ``b``, Fourier wobble of relative size ``wobble``.

    Args:
        cx, cy: centre in pixels.
        a, b: semi-axes in pixels.
        angle: rotation in radians.
        wobble: relative amplitude of the shape modes 2..5 (0 gives a clean ellipse).
        rng: source of the random mode phases and amplitudes (needed when ``wobble > 0`` and no ``harmonics``).
        harmonics: fixed ``(4, 2)`` array of (amplitude, phase) for modes 2..5, so a moving object keeps its shape.

    Returns:
        ``(K, 2)`` float64 polygon.
    """
    n = _vertex_count(max(a, b))
    t = _angles(n)
    if wobble > 0:
        if harmonics is None:
            assert rng is not None
            harmonics = random_harmonics(rng)
        modes = np.cos(_MODES[:, None] * t[None, :] + harmonics[:, 1:2])
        r = np.maximum(1.0 + wobble * (harmonics[:, 0] @ modes), 0.35)
    else:
        r = 1.0
    x = a * r * np.cos(t)
    y = b * r * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    out = np.empty((n, 2))
    out[:, 0] = cx + c * x - s * y
    out[:, 1] = cy + s * x + c * y
    return out


_MODES = np.arange(2.0, 6.0)
_ANGLES: dict[int, np.ndarray] = {}


def _angles(n: int) -> np.ndarray:
    if n not in _ANGLES:
        _ANGLES[n] = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return _ANGLES[n]


def random_harmonics(rng: np.random.Generator) -> np.ndarray:
    """Amplitudes (decaying with mode number) and phases for modes 2..5 of :func:`blob`."""
    amps = rng.uniform(0.2, 1.0, size=4) / np.array([1.0, 1.6, 2.4, 3.2])
    phases = rng.uniform(0, 2 * np.pi, size=4)
    return np.stack([amps, phases], axis=1)


def capsule(
    cx: float,
    cy: float,
    length: float,
    diameter: float,
    angle: float = 0.0,
    nose: float = 1.0,
    tail: float = 0.7,
) -> np.ndarray:
    """A Taylor-bubble capsule: straight body with a rounded nose and a blunter tail.

    Args:
        cx, cy: centre in pixels.
        length: tip-to-tail length in pixels (at least ``diameter``).
        diameter: body width in pixels.
        angle: direction of travel (nose side) in radians.
        nose: nose length as a fraction of the radius (1 gives a hemisphere, larger a bullet).
        tail: tail length as a fraction of the radius (smaller is flatter).

    Returns:
        ``(K, 2)`` float64 polygon.
    """
    r = diameter / 2.0
    length = max(length, diameter)
    nose_len, tail_len = r * nose, r * tail
    body = max(length - nose_len - tail_len, 0.0)
    n = _vertex_count(r) // 2 + 2
    th = np.linspace(-np.pi / 2, np.pi / 2, n)
    # nose: elliptic cap on +x side; tail: elliptic cap on -x side
    nose_pts = np.stack([body / 2 + nose_len * np.cos(th), r * np.sin(th)], axis=1)
    tail_pts = np.stack([-body / 2 - tail_len * np.cos(th), -r * np.sin(th)], axis=1)
    pts = np.concatenate([nose_pts, tail_pts], axis=0)
    shift = (nose_len - tail_len) / 2.0  # keep the bounding extent centred on (cx, cy)
    pts[:, 0] -= shift
    c, s = np.cos(angle), np.sin(angle)
    x, y = pts[:, 0], pts[:, 1]
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def polygon_bounds(polygons: list[np.ndarray]) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` extent of a list of polygons."""
    allp = np.concatenate(polygons, axis=0)
    return float(allp[:, 0].min()), float(allp[:, 1].min()), float(allp[:, 0].max()), float(allp[:, 1].max())


def power_law_radii(rng: np.random.Generator, n: int, r_min: float, r_max: float, exponent: float) -> np.ndarray:
    """``n`` radii from a truncated power law ``p(r) ~ r^-exponent`` on ``[r_min, r_max]`` (many small, few big)."""
    u = rng.uniform(size=n)
    if abs(exponent - 1.0) < 1e-6:
        return np.asarray(r_min * (r_max / r_min) ** u)
    k = 1.0 - exponent
    return np.asarray((r_min**k + u * (r_max**k - r_min**k)) ** (1.0 / k))


def place_circles(
    rng: np.random.Generator, size: int, radii: np.ndarray, gap: float, limit: int, margin: float = 0.05
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scatter non-touching circles, biggest first, each at least ``gap`` from the others (to about a pixel).

    Candidates are placed in batches of growing size: each batch samples centres from the free space
    left by the earlier ones (a distance transform), then resolves clashes inside the batch greedily.

    Args:
        rng: random source.
        size: square area side in pixels (centres may fall up to ``margin * size`` outside it).
        radii: candidate radii, tried largest first.
        gap: smallest free distance between two circles, in pixels.
        limit: stop after this many circles.

    Returns:
        ``(x, y, r)`` arrays of the placed circles.
    """
    import cv2

    cand = np.sort(np.asarray(radii, dtype=np.float64))[::-1]
    m: int = int(np.ceil(margin * size))
    side = size + 2 * m
    free = np.full((side, side), 255, np.uint8)
    out_x: list[float] = []
    out_y: list[float] = []
    out_r: list[float] = []
    start, batch = 0, 4
    while start < len(cand) and len(out_r) < limit:
        rs = cand[start : start + batch]
        start += batch
        batch = min(batch * 2, 256)
        dist = cv2.distanceTransform(free, cv2.DIST_L2, 3)
        pool = np.flatnonzero(dist.ravel() >= rs.min() + gap)
        if len(pool) == 0:
            break
        pick = pool[rng.integers(0, len(pool), size=len(rs))]
        py, px = np.divmod(pick, side)
        cx = px + rng.uniform(-0.5, 0.5, len(rs))
        cy = py + rng.uniform(-0.5, 0.5, len(rs))
        ok = dist.ravel()[pick] >= rs + gap + 0.5
        acc: list[int] = []
        for k in np.flatnonzero(ok):
            if acc:
                a = np.asarray(acc)
                if np.any(np.hypot(cx[a] - cx[k], cy[a] - cy[k]) < rs[a] + rs[k] + gap):
                    continue
            acc.append(int(k))
            if len(out_r) + len(acc) >= limit:
                break
        for j in acc:
            cv2.circle(free, (round(cx[j] * 16), round(cy[j] * 16)), int(np.ceil(rs[j] * 16)), 0, -1,
                       cv2.LINE_8, shift=4)
            out_x.append(float(cx[j] - m))
            out_y.append(float(cy[j] - m))
            out_r.append(float(rs[j]))
    return np.asarray(out_x), np.asarray(out_y), np.asarray(out_r)
