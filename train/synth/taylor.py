"""Taylor-bubble scene: elongated capsules travelling along a capillary or channel between two walls."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from maskrt.train.synth import shapes
from maskrt.train.synth.render import SceneObject, Shading
from maskrt.train.synth.textures import soft_background

if TYPE_CHECKING:
    from maskrt.train.synth.scenes import Scene


def _tube_profile(
    nn: np.ndarray, r_in: float, r_out: float, bg: float, inside: float, wall: float, inner: float, s: float
) -> np.ndarray:
    """Grey level across a tube as a function of the signed distance ``nn`` from its axis."""
    a = np.abs(nn)
    w = 0.6 + 0.6 * s
    fill = np.clip((r_out - a) / w, 0.0, 1.0)  # glass + liquid region
    prof = bg + (inside - bg) * fill
    prof -= wall * np.exp(-0.5 * ((a - r_out) / w) ** 2)
    prof -= inner * np.exp(-0.5 * ((a - r_in) / w) ** 2)
    return prof


def tube_geometry(rng: np.random.Generator, size: int) -> tuple[float, float, float, float]:
    """A random tube: ``(cx, cy, angle, inner radius)`` (horizontal most often, vertical otherwise)."""
    s = size / 512.0
    horizontal = rng.uniform() < 0.6
    angle = (0.0 if horizontal else np.pi / 2) + rng.uniform(-0.05, 0.05)
    cx, cy = size / 2 + rng.uniform(-0.25, 0.25, 2) * size
    r_in = rng.uniform(14, 80) * s
    return float(cx), float(cy), float(angle), float(r_in)


def taylor(rng: np.random.Generator, size: int) -> Scene:
    """Elongated capsules (Taylor bubbles) filling most of a tube's bore, with small bubbles in the slugs."""
    from maskrt.train.synth.scenes import Scene

    s = size / 512.0
    bg = rng.uniform(160, 235)
    background = soft_background(rng, size, size, bg)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    objs: list[SceneObject] = []
    cx, cy, angle, r_in = tube_geometry(rng, size)
    tubes = [(cx, cy)]
    if rng.uniform() < 0.2:  # a second, parallel tube
        off = (2.4 + rng.uniform(0, 2)) * r_in * rng.choice([-1, 1])
        tubes.append((cx - np.sin(angle) * off, cy + np.cos(angle) * off))
    direction = 1.0 if rng.uniform() < 0.5 else -1.0
    rim = rng.uniform(10, 60)
    rim_line = rng.uniform(0.15, 0.5) if rng.uniform() < 0.6 else 0.0  # of the rim's depth
    for tx, ty in tubes:
        r_out = r_in + rng.uniform(1.5, 7) * s
        nn = -(xx - tx) * np.sin(angle) + (yy - ty) * np.cos(angle)
        inside = bg * rng.uniform(0.88, 1.06)
        prof = _tube_profile(nn, r_in, r_out, bg, inside, rng.uniform(50, 140), rng.uniform(0, 50), s)
        background = (background + (prof - bg)).astype(np.float32)
        half = size * 0.75
        u = -half - rng.uniform(0, 3) * r_in
        diameter = 2 * r_in * rng.uniform(0.82, 0.97)
        nose = rng.uniform(0.9, 1.8)
        tail = rng.uniform(0.6, 1.0) if rng.uniform() < 0.5 else nose
        intervals = []
        while u < half:
            length = diameter * rng.uniform(1.3, 5.0)
            cu = u + length / 2
            drift = rng.uniform(-0.5, 0.5) * (r_in - diameter / 2)  # gravity / off-centre flow
            px = tx + np.cos(angle) * cu - np.sin(angle) * drift
            py = ty + np.sin(angle) * cu + np.cos(angle) * drift
            ang = angle if direction > 0 else angle + np.pi
            poly = shapes.capsule(px, py, length, diameter, ang, nose, tail)
            sh = Shading(
                kind="backlit",
                rim=rim * rng.uniform(0.85, 1.15),
                interior=inside * rng.uniform(0.98, 1.12),
                rim_width=diameter * rng.uniform(0.06, 0.16) + 1.0 * s,
                soft=0.7,
                core_offset=(0.0, rng.uniform(-1.5, 1.5) * s),
                rim_line=rim_line * (inside - rim),
            )
            objs.append(SceneObject([poly], sh, "bubble"))
            intervals.append((u, u + length))
            u += length + diameter * rng.uniform(0.2, 2.0)
        if rng.uniform() < 0.35:  # small dispersed bubbles in the liquid slugs
            for _ in range(int(rng.integers(1, 6))):
                r = r_in * rng.uniform(0.1, 0.45)
                cu = rng.uniform(-half, half)
                if any(a - r - 2 < cu < b + r + 2 for a, b in intervals):
                    continue
                off = rng.uniform(-1, 1) * (r_in - r - 1)
                px = tx + np.cos(angle) * cu - np.sin(angle) * off
                py = ty + np.sin(angle) * cu + np.cos(angle) * off
                sh = Shading(kind="backlit", rim=rim, interior=inside, rim_width=r * rng.uniform(0.35, 0.7), soft=0.7)
                objs.append(SceneObject([shapes.blob(px, py, r, r * rng.uniform(0.85, 1.0), 0.0, 0.03, rng)], sh))
                intervals.append((cu - r, cu + r))
    return Scene(background, objs, light_strength=0.7)
