"""Realistic bottom-view pool boiling: bright vapour on a grey heater seen through it, in two regimes.

Matched, statistic by statistic, to real high-speed frames of pool boiling seen from below
(``benchmarks/synth_realism.py`` prints real against synthetic). Sizes are set at 256 px (the real frames'
size) and scale with the image, so a 512 px scene shows the same field of view at twice the resolution.

- ``isolated``: 110-200 small bubbles (3-30 px across at 256 px, median area about 18 px), void fraction
  about 3-5 %, a few touching pairs; bright, often saturated vapour on a strongly uneven grey background.
- ``dense``: packed vapour cells separated by thin dark liquid films, neighbours merged through necks, and
  large dry patches holding small liquid islands; void fraction about 40-60 %, 150-300 regions of 8 px or more.

Unlike the other scenes, the ground truth is the vapour phase itself: instances are the connected components
(8-connected) of the vapour mask, holes kept, as connected components of a real semantic mask give. A merged
patch is one instance with holes. The image is drawn from the same coverage map as the mask (mask = coverage
of half or more), so they agree to the pixel before the optics blur.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maskrt.train.synth import shapes
from maskrt.train.synth.render import Instance, crop_rle, low_freq_noise, smoothstep

REGIMES = ("both", "isolated", "dense")
_SHIFT = 4


@dataclass
class PhaseScene:
    """A vapour/liquid scene before the camera: coverage of vapour and the grey levels of both phases.

    ``alpha`` is the vapour coverage (0..1) of each pixel; ``liquid`` and ``vapour`` the grey level each phase
    would have there (light field included); ``specks`` dark dust on the optics (multiplicative, not vapour).
    """

    alpha: np.ndarray
    liquid: np.ndarray
    vapour: np.ndarray
    specks: np.ndarray
    blur_sigma: float
    mask_level: float  # coverage from which a pixel is labelled vapour (real labels include half-lit edges)
    noise_sigma: float
    noise_corr: float
    jpeg_quality: int
    regime: str


def _fill(canvas: np.ndarray, poly: np.ndarray, value: int) -> None:
    """Anti-aliased fill of one polygon into a uint8 coverage canvas (blends at the edge: a soft union)."""
    pts = [np.round(poly * (1 << _SHIFT)).astype(np.int32)]
    cv2.fillPoly(canvas, pts, value, lineType=cv2.LINE_AA, shift=_SHIFT)


def _neck(canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray, width: float) -> None:
    """A vapour bridge between two touching cells (coalescence)."""
    a = tuple(int(v) for v in np.round(p0 * (1 << _SHIFT)))
    b = tuple(int(v) for v in np.round(p1 * (1 << _SHIFT)))
    cv2.line(canvas, a, b, 255, max(1, round(width)), cv2.LINE_AA, shift=_SHIFT)


def light_field(rng: np.random.Generator, size: int, s: float) -> np.ndarray:
    """Multiplicative illumination (mean about 1): a strong gradient, vignetting, blotches, a dark edge band and
    faint optical rings, as seen through a heater window."""
    xn = np.linspace(-0.5, 0.5, size, dtype=np.float32)[None, :]
    yn = np.linspace(-0.5, 0.5, size, dtype=np.float32)[:, None]
    ang = rng.uniform(0, 2 * np.pi)
    grad = rng.uniform(0.8, 2.0) * (np.cos(ang) * xn + np.sin(ang) * yn)
    cx, cy = rng.uniform(-0.2, 0.2, size=2)
    vig = 1.0 - rng.uniform(-0.3, 0.4) * ((xn - cx) ** 2 + (yn - cy) ** 2) / 0.5
    blotch = rng.uniform(0.02, 0.08) * low_freq_noise(rng, size, size, rng.uniform(30, 110) * s)
    light = (1.0 + grad + blotch) * vig
    if rng.uniform() < 0.6:  # the window's frame darkens one edge
        side = int(rng.integers(4))
        d = [yn + 0.5, 0.5 - yn, xn + 0.5, 0.5 - xn][side] * size
        width = rng.uniform(3, 18) * s
        light = light * (1.0 - rng.uniform(0.2, 0.7) * np.exp(-d / width))
    for _ in range(int(rng.integers(0, 3))):  # optical rings: reflections between the window's faces
        rx, ry = rng.uniform(-0.3, 1.3, size=2) * size
        rad = rng.uniform(0.3, 0.9) * size
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        dist = np.hypot(xx - rx, yy - ry) - rad
        light = light + rng.uniform(-0.1, 0.1) * np.exp(-0.5 * (dist / (rng.uniform(1.5, 5.0) * s)) ** 2)
    return np.clip(light, 0.08, 2.0).astype(np.float32)


def _isolated(rng: np.random.Generator, size: int, s: float) -> np.ndarray:
    """Coverage of the isolated-bubble regime: many small nearly round bubbles, a few touching pairs."""
    canvas = np.zeros((size, size), np.uint8)
    big = np.exp(rng.normal(np.log(rng.uniform(4.2, 5.2)), rng.uniform(0.3, 0.45), int(rng.integers(45, 75))))
    tiny = rng.uniform(0.6, 1.8, int(rng.integers(80, 150)))
    d = np.concatenate([big, tiny, rng.uniform(9, 30, int(rng.integers(0, 5)))])
    r = np.clip(d, 0.6, 30.0) * s / 2
    for ri in r[rng.permutation(len(r))]:
        cx, cy = rng.uniform(-0.02, 1.02, size=2) * size
        aspect = rng.uniform(0.75, 1.0)
        wob = rng.uniform(0.0, 0.12)
        _fill(canvas, shapes.blob(cx, cy, ri / np.sqrt(aspect), ri * np.sqrt(aspect), rng.uniform(0, np.pi), wob, rng), 255)
        if ri > 1.5 * s and rng.uniform() < 0.08:  # a touching pair: one region
            ang = rng.uniform(0, 2 * np.pi)
            r2 = ri * rng.uniform(0.5, 1.0)
            dd = (ri + r2) * rng.uniform(0.75, 0.95)
            _fill(canvas, shapes.blob(cx + dd * np.cos(ang), cy + dd * np.sin(ang), r2, r2, 0.0, 0.05, rng), 255)
        elif ri > 3 * s and rng.uniform() < 0.05:  # a drop of liquid left under a bigger bubble: a hole
            rh = rng.uniform(0.6, 0.3 * ri / s) * s
            _fill(canvas, shapes.blob(cx, cy, rh, rh, 0.0, 0.1, rng), 0)
    return canvas


def _dense(rng: np.random.Generator, size: int, s: float) -> np.ndarray:
    """Coverage of the dense regime: packed cells, merged neighbours, dry patches with liquid islands."""
    canvas = np.zeros((size, size), np.uint8)
    # dry patches: large irregular regions from a thresholded smooth field
    cell = rng.uniform(40, 90) * s
    field = low_freq_noise(rng, size, size, cell) + 0.35 * low_freq_noise(rng, size, size, cell / 4)
    t = np.quantile(field, 1.0 - rng.uniform(0.03, 0.15))
    patch = smoothstep(t - 0.04, t + 0.04, field)
    canvas = np.maximum(canvas, (255 * patch).astype(np.uint8))
    # where the foam is: most of the frame, leaving some open liquid
    zone_field = low_freq_noise(rng, size, size, rng.uniform(60, 140) * s)
    zone = zone_field > np.quantile(zone_field, rng.uniform(0.1, 0.3))
    radii = shapes.power_law_radii(rng, 3000, 0.8 * s, rng.uniform(7, 13) * s, rng.uniform(1.5, 2.1))
    gap = rng.uniform(1.4, 3.0) * s
    xs, ys, rs = shapes.place_circles(rng, size, radii, gap, limit=int(rng.integers(800, 1100)), margin=0.03)
    keep = zone[np.clip(ys.astype(int), 0, size - 1), np.clip(xs.astype(int), 0, size - 1)]
    xs, ys, rs = xs[keep], ys[keep], rs[keep]
    for x, y, r in zip(xs, ys, rs):
        aspect = rng.uniform(0.8, 1.0)
        poly = shapes.blob(x, y, r / np.sqrt(aspect), r * np.sqrt(aspect), rng.uniform(0, np.pi),
                           rng.uniform(0.02, 0.1), rng)
        _fill(canvas, poly, 255)
    # coalescence: bridges between some touching neighbours
    if len(rs) > 1:
        pts = np.stack([xs, ys], axis=1)
        dist = np.hypot(pts[:, None, 0] - pts[None, :, 0], pts[:, None, 1] - pts[None, :, 1])
        near = dist < rs[:, None] + rs[None, :] + gap + 1.5 * s
        i, j = np.nonzero(np.triu(near, 1))
        merge = rng.uniform(size=len(i)) < rng.uniform(0.03, 0.1)
        for a, b in zip(i[merge], j[merge]):
            _neck(canvas, pts[a], pts[b], max(1.0, rng.uniform(1.0, 1.6) * min(rs[a], rs[b])))
    # liquid islands: small drops left inside vapour (kept as holes of their region)
    inside = np.flatnonzero(cv2.erode(canvas, np.ones((5, 5), np.uint8)).ravel() > 250)
    if len(inside):
        for k in rng.choice(inside, size=min(len(inside), int(rng.integers(15, 60))), replace=False):
            y, x = divmod(int(k), size)
            r = rng.uniform(0.6, 1.8) * s
            _fill(canvas, shapes.blob(x + rng.uniform(-0.5, 0.5), y + rng.uniform(-0.5, 0.5), r, r * rng.uniform(0.7, 1.0),
                                      rng.uniform(0, np.pi), 0.1, rng), 0)
    for _ in range(int(rng.integers(40, 140))):  # vapour specks too small to count as bubbles
        r = rng.uniform(0.5, 1.3) * s
        x, y = rng.uniform(0, size, size=2)
        _fill(canvas, shapes.blob(x, y, r, r * rng.uniform(0.6, 1.0), rng.uniform(0, np.pi)), 255)
    return canvas


def _specks(rng: np.random.Generator, size: int, s: float, n: int) -> np.ndarray:
    """Dark dust dots on the optics (a multiplicative mask near 1): hard negatives, not vapour."""
    out = np.ones((size, size), np.float32)
    for _ in range(n):
        x, y = rng.uniform(0, size, size=2)
        r = rng.uniform(0.5, 1.4) * s
        cv2.circle(out, (round(x * 16), round(y * 16)), max(1, round(r * 16)), float(rng.uniform(0.3, 0.85)), -1,
                   cv2.LINE_AA, shift=4)
    return out


def phase_scene(rng: np.random.Generator, size: int, regime: str = "both") -> PhaseScene:
    """Draw one random bottom-view scene of ``regime`` (``both`` picks isolated or dense at random)."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}; use one of {REGIMES}")
    if regime == "both":
        regime = "isolated" if rng.uniform() < 0.45 else "dense"
    s = size / 256.0
    light = light_field(rng, size, s)
    if regime == "isolated":
        alpha = _isolated(rng, size, s)
        far, near, lam = rng.uniform(110, 150), rng.uniform(1.0, 1.08), rng.uniform(1.5, 4.0) * s
        vap, vap_light = rng.uniform(220, 320), rng.uniform(0.0, 0.5)
        noise, corr, nspecks = rng.uniform(2.0, 4.5), rng.uniform(0.25, 0.45), int(rng.integers(10, 90))
    else:
        alpha = _dense(rng, size, s)
        far, near, lam = rng.uniform(65, 135), rng.uniform(0.45, 0.85), rng.uniform(4.0, 9.0) * s
        vap, vap_light = rng.uniform(165, 210), rng.uniform(0.2, 0.6)
        noise, corr, nspecks = rng.uniform(3.5, 8.0), rng.uniform(0.4, 0.9), int(rng.integers(0, 60))
    a = alpha.astype(np.float32) / 255.0
    dv = cv2.distanceTransform((a < 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    liquid = far * (near + (1.0 - near) * smoothstep(lam, 2.0 * lam, dv))  # thin films between bubbles look dark
    liquid = liquid * (1.0 + rng.uniform(0.01, 0.04) * low_freq_noise(rng, size, size, rng.uniform(3, 8) * s))
    vapour = vap * (1.0 + rng.uniform(0.01, 0.05) * low_freq_noise(rng, size, size, rng.uniform(6, 20) * s))
    liquid = np.minimum(liquid * light, 230.0)  # the sensor's ceiling: vapour must stay brighter
    vapour = np.maximum(vapour * light**vap_light, liquid + rng.uniform(30, 60))
    return PhaseScene(
        alpha=a,
        liquid=liquid.astype(np.float32),
        vapour=vapour.astype(np.float32),
        specks=_specks(rng, size, s, nspecks),
        blur_sigma=float(rng.uniform(0.25, 0.55) * s),
        mask_level=float(rng.uniform(0.2, 0.4)),
        noise_sigma=float(noise),
        noise_corr=float(corr * s),
        jpeg_quality=int(rng.integers(85, 99)),
        regime=regime,
    )


def components(mask: np.ndarray, min_area: int = 8) -> list[Instance]:
    """Instances of a vapour mask: its 8-connected components of ``min_area`` px or more, holes kept."""
    h, w = mask.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out: list[Instance] = []
    for k in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[k])
        if area < min_area:
            continue
        crop = labels[y : y + bh, x : x + bw] == k
        out.append(Instance("bubble", k, (x, y, bw, bh), area, crop_rle(crop, x, y, h, w)))
    return out


def render_phase(ph: PhaseScene, rng: np.random.Generator, min_area: int = 8) -> tuple[np.ndarray, list[Instance]]:
    """Record ``ph`` with its camera: the uint8 BGR (grey) image and the connected-component instances."""
    img = (ph.liquid + (ph.vapour - ph.liquid) * ph.alpha) * ph.specks
    if ph.blur_sigma > 0.2:
        img = cv2.GaussianBlur(img, (0, 0), ph.blur_sigma)
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), ph.noise_corr)  # sensor noise correlated over about a pixel
    noise *= 1.0 / max(float(noise.std()), 1e-6)
    grey = np.clip(img + ph.noise_sigma * noise, 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), components(ph.alpha >= ph.mask_level, min_area)


__all__ = ["REGIMES", "PhaseScene", "components", "light_field", "phase_scene", "render_phase"]
