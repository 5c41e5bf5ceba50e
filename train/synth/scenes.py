"""The synthetic scene types: each turns a random generator and a size into a background and objects.

A scene function returns a :class:`Scene` (grey float background, ordered objects, camera strength); it
draws nothing itself. :func:`render_scene` draws it with :class:`~maskrt.train.synth.render.Canvas`
and records it with a random camera. Sizes are tuned at 512 px and scale with the image. The realistic
``boiling-bottom`` scene is the exception: a vapour phase map (:mod:`~maskrt.train.synth.bottom`), whose
instances are the connected components of the vapour, tuned at 256 px against real frames.

Classes: ``bubble`` (boiling side and bottom views, Taylor bubbles) and ``droplet`` (condensation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from maskrt.train.synth import bottom, shapes
from maskrt.train.synth.effects import apply_camera, sample_camera
from maskrt.train.synth.render import Canvas, Instance, SceneObject, Shading
from maskrt.train.synth.taylor import taylor
from maskrt.train.synth.textures import brushed_metal, heater_block, rough_surface, soft_background

CLASSES = ["bubble", "droplet"]
_MIN_R = 1.3  # px: smaller objects cannot reach the smallest kept area


@dataclass
class Scene:
    """What to draw: a grey background, objects in drawing order, and how strong the light falloff is."""

    background: np.ndarray
    objects: list[SceneObject]
    light_strength: float = 1.0
    colour: float = 0.25
    phase: bottom.PhaseScene | None = None  # a vapour phase map with its own camera, drawn instead of objects


def _backlit_bubble(
    rng: np.random.Generator, cx: float, cy: float, r: float, bg: float, s: float, coalesce: float
) -> list[np.ndarray]:
    """Outline of one side-view bubble: an oblate wobbly ellipse, sometimes merged with neighbours."""
    aspect = rng.uniform(0.42, 1.0) if r > 4 * s else rng.uniform(0.8, 1.0)
    a, b = r / np.sqrt(aspect), r * np.sqrt(aspect)
    wob = rng.uniform(0.0, 0.06) + (0.14 * rng.uniform() if r > 12 * s else 0.0)
    polys = [shapes.blob(cx, cy, a, b, rng.uniform(-0.45, 0.45), wob, rng)]
    if r > 8 * s and rng.uniform() < coalesce:
        for _ in range(int(rng.integers(1, 3))):
            ang = rng.uniform(0, 2 * np.pi)
            d = r * rng.uniform(0.6, 1.1)
            r2 = r * rng.uniform(0.45, 0.9)
            polys.append(
                shapes.blob(cx + d * np.cos(ang), cy + d * np.sin(ang), r2, r2 * rng.uniform(0.6, 1.0),
                            rng.uniform(0, np.pi), 0.08, rng)
            )
    return polys


def backlit_shading(rng: np.random.Generator, r: float, bg: float, s: float) -> Shading:
    """Random look of a shadowgraph bubble of radius ``r`` on a backlight of level ``bg``."""
    b = r * rng.uniform(0.75, 1.0)
    return Shading(
        kind="backlit",
        rim=rng.uniform(5, 55),
        interior=bg * rng.uniform(0.7, 1.02),
        rim_width=b * rng.uniform(0.35, 0.8) + rng.uniform(0.5, 2.0) * s,
        soft=max(0.6, 0.1 * r),
        core_offset=(rng.uniform(-0.25, 0.25) * r, rng.uniform(-0.35, 0.15) * r),
        texture=rng.uniform(0, 4),
    )


def _heater_shading(rng: np.random.Generator) -> Shading:
    """A dark heater block whose polished top edge catches a thin line of light."""
    value = rng.uniform(20, 90)
    return Shading("backlit", rim=value + rng.uniform(0, 70), interior=value, rim_width=rng.uniform(0.8, 2.5), soft=0.6,
                   texture=rng.uniform(2, 8))


def boiling_side(rng: np.random.Generator, size: int) -> Scene:
    """Side view of pool boiling, backlit: dark-rimmed bubbles on a heater edge and rising above it."""
    s = size / 512.0
    bg = rng.uniform(180, 245)
    background = soft_background(rng, size, size, bg, structures=True)
    objs: list[SceneObject] = []
    heater = rng.choice(["plate", "wire", "none"], p=[0.6, 0.2, 0.2])
    if heater == "plate":
        top = size * (1.0 - rng.uniform(0.05, 0.22))
        wire = None
    elif heater == "wire":
        top = size * rng.uniform(0.55, 0.85)
        wire = rng.uniform(4, 22) * s
    else:
        top, wire = float(size), None
    exposure = rng.uniform(0.3, 1.2) if rng.uniform() < 0.5 else 0.0
    coalesce = rng.uniform(0.0, 0.4)
    depth = rng.uniform(0.0, 0.2)
    # bubbles sitting on the heater: truncated at its surface by the heater drawn afterwards
    if heater != "none":
        for _ in range(int(rng.integers(3, 20))):
            r = max(_MIN_R, float(shapes.power_law_radii(rng, 1, 3 * s, 80 * s, 1.4)[0]))
            cx = rng.uniform(-0.05, 1.05) * size
            b = r * rng.uniform(0.8, 1.1)
            cy = top - b * rng.uniform(0.35, 0.85)
            polys = [shapes.blob(cx, cy, r * rng.uniform(0.9, 1.2), b, rng.uniform(-0.2, 0.2), rng.uniform(0, 0.1), rng)]
            if r > 10 * s and rng.uniform() < coalesce:
                polys.append(shapes.blob(cx + rng.uniform(-0.3, 0.3) * r, cy - b * rng.uniform(0.6, 1.1),
                                         r * rng.uniform(0.5, 0.9), r * rng.uniform(0.5, 0.8), 0.0, 0.08, rng))
            elif r > 20 * s and rng.uniform() < 0.3:  # vapour mushroom: a big cap fed by narrow stems
                cap_y = top - b - r * rng.uniform(0.6, 1.6)
                polys = [shapes.blob(cx, cap_y, r * rng.uniform(1.1, 1.6), r * rng.uniform(0.6, 0.9),
                                     rng.uniform(-0.15, 0.15), rng.uniform(0.05, 0.15), rng)]
                for _ in range(int(rng.integers(1, 3))):
                    sx = cx + rng.uniform(-0.6, 0.6) * r
                    half = (top - cap_y) / 2 + 2
                    polys.append(shapes.blob(sx, top - half + 2, r * rng.uniform(0.25, 0.5), half, 0.0, 0.05, rng))
            objs.append(SceneObject(polys, backlit_shading(rng, r, bg, s), "bubble"))
            if wire is not None and rng.uniform() < 0.4:  # wires also grow bubbles underneath
                cy2 = top + wire + b * rng.uniform(0.35, 0.8)
                poly = shapes.blob(cx, cy2, r * rng.uniform(0.8, 1.1), b * 0.9, 0.0, 0.05, rng)
                objs.append(SceneObject([poly], backlit_shading(rng, r, bg, s), "bubble"))
    # detached bubbles rising through the liquid
    n = int(rng.integers(4, 70))
    radii = shapes.power_law_radii(rng, n, 2.5 * s, rng.uniform(25, 70) * s, rng.uniform(1.4, 2.4))
    radii = radii[radii >= _MIN_R]  # the same scene at a lower resolution: tiny ones vanish
    for r in radii:
        cx = rng.uniform(-0.05, 1.05) * size
        cy = rng.uniform(-0.05, 1.0) * (top if heater == "plate" else size)
        polys = _backlit_bubble(rng, cx, cy, float(r), bg, s, coalesce)
        vy = -(2.0 + 0.35 * r / s) * s * exposure
        motion = (rng.uniform(-0.3, 0.3) * vy, vy)
        sh = backlit_shading(rng, float(r), bg, s)
        defocus = 0.0
        if rng.uniform() < depth:  # outside the depth of field: blurred and paler
            defocus = rng.uniform(0.8, 3.0) * s + 0.05 * r
            sh.rim = sh.rim + (bg - sh.rim) * rng.uniform(0.2, 0.55)
        objs.append(SceneObject(polys, sh, "bubble", motion=motion, defocus=defocus))
    order = rng.permutation(len(objs))
    objs = [objs[i] for i in order]
    if heater == "plate":
        objs.append(SceneObject([heater_block(rng, size, top, float(size) + 4)],
                                _heater_shading(rng), None))
    elif heater == "wire":
        assert wire is not None
        objs.append(SceneObject([heater_block(rng, size, top, top + wire, roughness=0.3)],
                                Shading("flat", interior=rng.uniform(15, 70), texture=2.0), None))
    return Scene(background, objs)


BOTTOM_STYLES = ("realistic", "classic")


def boiling_bottom(rng: np.random.Generator, size: int, regime: str = "both", style: str = "realistic") -> Scene:
    """Bottom view through a transparent heater: bright vapour on a grey floor.

    Args:
        rng: random source.
        size: square image side in pixels.
        regime: ``isolated`` (small separate bubbles), ``dense`` (merging patches with liquid islands) or
            ``both`` (one of them at random); realistic style only.
        style: ``realistic`` (matched to real frames, instances = connected components of the vapour) or
            ``classic`` (the earlier look: one instance per drawn patch, patches occluding each other).
    """
    if style not in BOTTOM_STYLES:
        raise ValueError(f"unknown boiling-bottom style {style!r}; use one of {BOTTOM_STYLES}")
    if style == "realistic":
        ph = bottom.phase_scene(rng, size, regime)
        return Scene(ph.liquid, [], colour=0.0, phase=ph)
    return _boiling_bottom_classic(rng, size)


def _boiling_bottom_classic(rng: np.random.Generator, size: int) -> Scene:
    """The earlier bottom view: bright vapour patches of many sizes on a dark textured floor."""
    s = size / 512.0
    bg = rng.uniform(35, 110)
    background = rough_surface(rng, size, size, bg)
    n = int(rng.integers(20, 180))
    radii = shapes.power_law_radii(rng, n, 2.5 * s, rng.uniform(30, 90) * s, rng.uniform(1.2, 2.0))
    radii = radii[radii >= _MIN_R]
    irregular = rng.uniform(0.05, 0.35)
    objs: list[SceneObject] = []
    placed = np.zeros((0, 3))
    for r in np.sort(radii)[::-1]:  # big first; a small patch never sits inside a bigger one
        r = float(r)
        cx, cy = rng.uniform(-0.05, 1.05, size=2) * size
        if len(placed) and np.any(np.hypot(placed[:, 0] - cx, placed[:, 1] - cy) < placed[:, 2]):
            continue
        placed = np.vstack([placed, [cx, cy, r]])
        aspect = rng.uniform(0.7, 1.0)
        polys = [shapes.blob(cx, cy, r / np.sqrt(aspect), r * np.sqrt(aspect), rng.uniform(0, np.pi),
                             irregular * rng.uniform(0.3, 1.0), rng)]
        if r > 8 * s and rng.uniform() < 0.3:
            ang = rng.uniform(0, 2 * np.pi)
            r2 = r * rng.uniform(0.4, 0.9)
            polys.append(shapes.blob(cx + 0.9 * r * np.cos(ang), cy + 0.9 * r * np.sin(ang), r2, r2, 0.0, 0.15, rng))
        sh = Shading(
            kind="patch",
            rim=rng.uniform(10, bg + 30),
            interior=rng.uniform(140, 250),
            rim_width=rng.uniform(0.8, 3.0) * s + 0.12 * r,
            texture=rng.uniform(2, 12),
        )
        objs.append(SceneObject(polys, sh, "bubble"))
    return Scene(background, objs, light_strength=0.8)


def droplet_shading(
    rng: np.random.Generator, r: float, bg: float, light: tuple[float, float], rim_dark: float, body: float
) -> Shading:
    """Random look of a condensation droplet of radius ``r`` on a surface of level ``bg`` lit from ``light``."""
    return Shading(
        kind="droplet",
        rim=bg * rim_dark * rng.uniform(0.8, 1.2),
        interior=min(250.0, bg * body * rng.uniform(0.92, 1.08)),
        rim_width=max(0.8, r * rng.uniform(0.15, 0.4)),
        highlight=rng.uniform(40, 170) if r > 2.5 else 0.0,
        light=light,
        texture=rng.uniform(0, 3),
    )


def droplets(rng: np.random.Generator, size: int) -> Scene:
    """Dropwise condensation: non-overlapping near-circular droplets from ~1.5 px to ~100+ px radius.

    Mostly on a metal surface in reflected light (dark rims, specular highlights); sometimes on glass lit
    from behind (dark rims, bright centres).
    """
    s = size / 512.0
    transmitted = rng.uniform() < 0.3  # condensing on glass, lit from behind, instead of on metal
    bg = rng.uniform(170, 240) if transmitted else rng.uniform(70, 175)
    background = soft_background(rng, size, size, bg) if transmitted else brushed_metal(rng, size, size, bg)
    r_max = rng.uniform(40, 120) * s
    r_min = max(1.6, 1.8 * s)
    cand = shapes.power_law_radii(rng, 1600, r_min, r_max, rng.uniform(1.6, 2.4))
    gap = rng.uniform(0.5, 3.0) * s
    placed_x, placed_y, placed_r = shapes.place_circles(rng, size, cand, gap, limit=int(np.clip(450 * s, 80, 900)))
    if rng.uniform() < 0.3:  # the track swept clean by a departed droplet: only small new ones inside
        x0, width = rng.uniform(0, size), rng.uniform(0.1, 0.3) * size
        swept = (np.abs(placed_x - x0) < width / 2 + placed_r) & (placed_r > rng.uniform(3, 8) * s)
        placed_x, placed_y, placed_r = placed_x[~swept], placed_y[~swept], placed_r[~swept]
    lang = rng.uniform(0, 2 * np.pi)
    light = (float(np.cos(lang)), float(np.sin(lang)))
    rim_dark = rng.uniform(0.1, 0.55)
    body = rng.uniform(0.75, 1.3)
    objs: list[SceneObject] = []
    for x, y, r in zip(placed_x, placed_y, placed_r):
        wob = rng.uniform(0.0, 0.03) + (rng.uniform(0, 0.05) if r > 20 * s else 0.0)
        poly = shapes.blob(x, y, r, r * rng.uniform(0.93, 1.0), rng.uniform(0, np.pi), wob, rng)
        if transmitted:  # a lens: dark refracting rim, bright centre, like a shadowgraph bubble
            sh = Shading("backlit", rim=rng.uniform(10, 70), interior=bg * rng.uniform(0.9, 1.05),
                         rim_width=r * rng.uniform(0.12, 0.35) + 0.5, soft=max(0.6, 0.15 * r),
                         core_offset=(light[0] * 0.1 * r, light[1] * 0.1 * r))
        else:
            sh = droplet_shading(rng, r, bg, light, rim_dark, body)
        objs.append(SceneObject([poly], sh, "droplet"))
    return Scene(background, objs, light_strength=0.9, colour=0.5)


SCENES: dict[str, Callable[[np.random.Generator, int], Scene]] = {
    "boiling-side": boiling_side,
    "boiling-bottom": boiling_bottom,
    "droplets": droplets,
    "taylor": taylor,
}
SCENE_NAMES = [*SCENES, "mixed"]


# how often ``mixed`` picks each scene: bubbles (side views like the real shadowgraphs, Taylor flow) more often
# than droplet images, which hold several times more instances each
MIXED_WEIGHTS = {"boiling-side": 0.35, "boiling-bottom": 0.2, "droplets": 0.2, "taylor": 0.25}


def pick_scene(name: str, rng: np.random.Generator) -> str:
    """Resolve ``mixed`` to one concrete scene (drawn from ``rng`` with :data:`MIXED_WEIGHTS`); others pass through."""
    if name == "mixed":
        names = list(MIXED_WEIGHTS)
        return names[int(rng.choice(len(names), p=list(MIXED_WEIGHTS.values())))]
    return name


@dataclass
class Rendered:
    """One finished synthetic image: BGR pixels, visible instances, and the JPEG quality to save it at."""

    image: np.ndarray
    instances: list[Instance]
    jpeg_quality: int


def build_scene(name: str, rng: np.random.Generator, size: int, regime: str = "both", style: str = "realistic") -> Scene:
    """Scene ``name`` (a concrete one, not ``mixed``); ``regime`` and ``style`` apply to ``boiling-bottom`` only."""
    if name == "boiling-bottom":
        return boiling_bottom(rng, size, regime=regime, style=style)
    return SCENES[name](rng, size)


def render_scene(scene: Scene, rng: np.random.Generator, min_area: int = 8) -> Rendered:
    """Draw ``scene`` and record it with a random camera (a phase scene with its own)."""
    if scene.phase is not None:
        image, instances = bottom.render_phase(scene.phase, rng, min_area)
        return Rendered(image, instances, scene.phase.jpeg_quality)
    h, w = scene.background.shape
    canvas = Canvas(scene.background)
    for obj in scene.objects:
        canvas.draw(obj, rng)
    cam = sample_camera(rng, h, w, colour=scene.colour, strength=scene.light_strength)
    return Rendered(apply_camera(canvas.image, cam, rng), canvas.instances(min_area), cam.jpeg_quality)


__all__ = [
    "BOTTOM_STYLES", "CLASSES", "SCENES", "SCENE_NAMES", "Rendered", "Scene", "build_scene", "pick_scene", "render_scene",
]
