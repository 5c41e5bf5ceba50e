"""Moving scenes for synthetic videos: objects with persistent ids that nucleate, grow, detach, rise and merge.

Each simulation holds a fixed background and a set of tracked objects; ``step()`` advances one frame and
``objects()`` returns what to draw for the current frame. Rates are per frame and scale with the image size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from maskrt.train.synth import shapes
from maskrt.train.synth.render import SceneObject, Shading
from maskrt.train.synth.taylor import _tube_profile, tube_geometry
from maskrt.train.synth.textures import brushed_metal, heater_block, rough_surface, soft_background


@dataclass
class Body:
    """One tracked object: id, class, position, size and the fixed parameters of its look."""

    uid: int
    x: float
    y: float
    r: float
    vx: float = 0.0
    vy: float = 0.0
    age: int = 0
    state: str = "attached"
    target: float = 0.0  # radius at which it detaches / stops growing
    look: dict[str, float] = field(default_factory=dict)
    harmonics: np.ndarray | None = None
    extra: dict[str, float] = field(default_factory=dict)


def merge_overlapping(bodies: list[Body], overlap: float) -> list[Body]:
    """Merge bodies closer than ``overlap * (r1 + r2)``: the larger absorbs the smaller, volume conserved.

    Returns the surviving bodies in their original order.
    """
    if len(bodies) < 2:
        return bodies
    xy = np.array([[b.x, b.y] for b in bodies])
    r = np.array([b.r for b in bodies])
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    hit = np.argwhere(np.triu(d < overlap * (r[:, None] + r[None, :]), 1))
    gone: set[int] = set()
    for i, j in hit:
        a, b = bodies[i], bodies[j]
        if a.uid in gone or b.uid in gone:
            continue
        big, small = (a, b) if a.r >= b.r else (b, a)
        v = big.r**3 + small.r**3
        big.x = (big.x * big.r**3 + small.x * small.r**3) / v
        big.y = (big.y * big.r**3 + small.y * small.r**3) / v
        big.r = float(v ** (1 / 3))
        gone.add(small.uid)
    return [b for b in bodies if b.uid not in gone]


class Simulation:
    """Base class: a background, a random source, and bodies with ids that never repeat."""

    category = "bubble"
    light_strength = 1.0
    colour = 0.25

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.rng = rng
        self.size = size
        self.s = size / 512.0
        self.bodies: list[Body] = []
        self._next = 1
        self.background = np.zeros((size, size), np.float32)

    def new_id(self) -> int:
        uid = self._next
        self._next += 1
        return uid

    def step(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def objects(self) -> list[SceneObject]:  # pragma: no cover - overridden
        raise NotImplementedError

    def warm_up(self, steps: int) -> None:
        """Run ``steps`` frames unrecorded so the first frame is already a developed scene."""
        for _ in range(steps):
            self.step()


class BoilingSide(Simulation):
    """Side view: bubbles nucleate on a heater, grow, detach, rise (wobbling) and coalesce."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        super().__init__(rng, size)
        s = self.s
        self.bg = rng.uniform(170, 235)
        self.background = soft_background(rng, size, size, self.bg)
        self.top = size * (1.0 - rng.uniform(0.06, 0.18))
        self.heater = heater_block(rng, size, self.top, float(size) + 4)
        self.heater_value = rng.uniform(20, 80)
        n_sites = int(rng.integers(3, 9))
        self.sites = [
            {"x": rng.uniform(0.05, 0.95) * size, "depart": rng.uniform(6, 30) * s, "rate": rng.uniform(0.4, 1.2) * s,
             "wait": int(rng.integers(0, 15)), "bubble": 0}
            for _ in range(n_sites)
        ]
        self.exposure = rng.uniform(0.0, 0.8)

    def _look(self, r: float) -> dict[str, float]:
        rng = self.rng
        return {"rim": rng.uniform(10, 60), "interior": self.bg * rng.uniform(0.75, 1.0), "rim_frac": rng.uniform(0.35, 0.7),
                "cx": rng.uniform(-0.2, 0.2), "cy": rng.uniform(-0.3, 0.1), "aspect": rng.uniform(0.7, 0.95),
                "wobble": rng.uniform(0.02, 0.1), "omega": rng.uniform(0.1, 0.4)}

    def step(self) -> None:
        rng, s = self.rng, self.s
        by_id = {b.uid: b for b in self.bodies}
        for site in self.sites:
            if site["bubble"] == 0:
                if site["wait"] > 0:
                    site["wait"] -= 1
                    continue
                b = Body(self.new_id(), site["x"], self.top, 1.5 * s, target=site["depart"] * rng.uniform(0.85, 1.15))
                b.look = self._look(b.target)
                b.harmonics = shapes.random_harmonics(rng)
                self.bodies.append(b)
                site["bubble"] = b.uid
                continue
            b = by_id[int(site["bubble"])]
            b.r += site["rate"] * (b.target / max(b.r, 1.0)) ** 0.5 * 0.5  # fast at first, slower later
            b.y = self.top - b.r * 0.75
            if b.r >= b.target:
                b.state, b.vy, b.vx = "rising", -(1.0 + 0.08 * b.r / s) * s, rng.uniform(-0.4, 0.4) * s
                site["bubble"], site["wait"] = 0, int(rng.integers(2, 20))
        for b in self.bodies:
            b.age += 1
            if b.state == "rising":
                b.vy = max(b.vy * 1.04, -(3.0 + 0.12 * b.r / s) * s)  # accelerate to a terminal velocity
                b.x += b.vx + 0.6 * s * np.sin(0.2 * b.age + b.uid)
                b.y += b.vy
        self._coalesce()
        self.bodies = [b for b in self.bodies if b.y + 2 * b.r > -10]

    def _coalesce(self) -> None:
        rising = [b for b in self.bodies if b.state == "rising"]
        kept = {b.uid for b in merge_overlapping(rising, 0.75)}
        self.bodies = [b for b in self.bodies if b.state != "rising" or b.uid in kept]

    def objects(self) -> list[SceneObject]:
        out = []
        for b in self.bodies:
            lk = b.look
            asp = lk["aspect"] + 0.05 * np.sin(lk["omega"] * b.age)
            a_, b_ = b.r / np.sqrt(asp), b.r * np.sqrt(asp)
            poly = shapes.blob(b.x, b.y, a_, b_, 0.0, lk["wobble"] if b.r > 5 * self.s else 0.0,
                               harmonics=b.harmonics)
            sh = Shading("backlit", rim=lk["rim"], interior=lk["interior"], rim_width=b_ * lk["rim_frac"] + 0.8 * self.s,
                         soft=max(0.6, 0.1 * b.r), core_offset=(lk["cx"] * b.r, lk["cy"] * b.r))
            motion = (b.vx * self.exposure, b.vy * self.exposure) if b.state == "rising" else (0.0, 0.0)
            out.append(SceneObject([poly], sh, "bubble", uid=b.uid, motion=motion))
        out.append(SceneObject([self.heater], Shading("flat", interior=self.heater_value, texture=0.0), None))
        return out


class BoilingBottom(Simulation):
    """Bottom view: vapour patches appear, spread, and vanish when their bubble departs."""

    light_strength = 0.8

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        super().__init__(rng, size)
        self.bg = rng.uniform(40, 100)
        self.background = rough_surface(rng, size, size, self.bg)
        self.rate = rng.uniform(0.5, 2.5)

    def step(self) -> None:
        rng, s = self.rng, self.s
        for _ in range(rng.poisson(self.rate)):
            target = float(shapes.power_law_radii(rng, 1, 4 * s, 60 * s, 1.6)[0])
            b = Body(self.new_id(), rng.uniform(0, self.size), rng.uniform(0, self.size), 1.5 * s, target=target)
            b.look = {"rim": rng.uniform(10, self.bg + 30), "interior": rng.uniform(150, 245), "aspect": rng.uniform(0.75, 1.0),
                      "angle": rng.uniform(0, np.pi), "wobble": rng.uniform(0.05, 0.3), "speed": rng.uniform(0.5, 1.5)}
            b.harmonics = shapes.random_harmonics(rng)
            self.bodies.append(b)
        for b in self.bodies:
            b.age += 1
            if b.state == "attached":
                b.r += b.look["speed"] * s * (b.target / max(b.r, 1.0)) ** 0.5 * 0.4
                if b.r >= b.target:
                    b.state = "departing"
            else:
                b.r *= 0.8
        self.bodies = [b for b in self.bodies if b.r > 1.2 * self.s]

    def objects(self) -> list[SceneObject]:
        out = []
        for b in self.bodies:
            lk = b.look
            poly = shapes.blob(b.x, b.y, b.r / np.sqrt(lk["aspect"]), b.r * np.sqrt(lk["aspect"]), lk["angle"],
                               lk["wobble"], harmonics=b.harmonics)
            sh = Shading("patch", rim=lk["rim"], interior=lk["interior"], rim_width=1.5 * self.s + 0.12 * b.r, texture=0.0)
            out.append(SceneObject([poly], sh, "bubble", uid=b.uid))
        return out


class Droplets(Simulation):
    """Dropwise condensation: droplets nucleate and grow, merge when they touch, and big ones slide away."""

    category = "droplet"
    light_strength = 0.9

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        super().__init__(rng, size)
        self.bg = rng.uniform(80, 170)
        self.background = brushed_metal(rng, size, size, self.bg)
        ang = rng.uniform(0, 2 * np.pi)
        self.light = (float(np.cos(ang)), float(np.sin(ang)))
        self.rim_dark, self.body = rng.uniform(0.15, 0.5), rng.uniform(0.8, 1.25)
        self.growth = rng.uniform(0.05, 0.2)
        self.slide = rng.uniform(45, 90) * self.s
        self.rate = rng.uniform(3, 8)
        radii = shapes.power_law_radii(rng, 800, 1.6 * self.s, 0.8 * self.slide, rng.uniform(1.6, 2.2))
        for x, y, r in zip(*shapes.place_circles(rng, size, radii, rng.uniform(0.5, 3) * self.s, limit=350)):
            self._spawn(float(x), float(y), float(r))

    def _spawn(self, x: float, y: float, r: float) -> None:
        rng = self.rng
        b = Body(self.new_id(), x, y, r)
        b.look = {"rim": self.bg * self.rim_dark * rng.uniform(0.8, 1.2),
                  "interior": min(250.0, self.bg * self.body * rng.uniform(0.92, 1.08)),
                  "rim_frac": rng.uniform(0.15, 0.35), "highlight": rng.uniform(50, 160), "aspect": rng.uniform(0.94, 1.0)}
        self.bodies.append(b)

    def step(self) -> None:
        rng, s = self.rng, self.s
        for _ in range(rng.poisson(self.rate)):
            self._spawn(rng.uniform(-5, self.size + 5), rng.uniform(-5, self.size + 5), 1.6 * s)
        for b in self.bodies:
            b.age += 1
            b.r += self.growth * s * (6 * s / max(b.r, 6 * s)) ** 0.5
            if b.state != "sliding" and b.r > self.slide:
                b.state, b.vy = "sliding", 0.5 * s
            if b.state == "sliding":
                b.vy = min(b.vy * 1.15, 12 * s)
                b.y += b.vy
        self._merge()
        self.bodies = [b for b in self.bodies if b.y - b.r < self.size + 5]

    def _merge(self) -> None:
        for _ in range(4):  # merges can cascade
            n = len(self.bodies)
            self.bodies = merge_overlapping(self.bodies, 1.0)
            if len(self.bodies) == n:
                return

    def objects(self) -> list[SceneObject]:
        out = []
        for b in self.bodies:
            lk = b.look
            poly = shapes.blob(b.x, b.y, b.r, b.r * lk["aspect"], 0.0, 0.0)
            sh = Shading("droplet", rim=lk["rim"], interior=lk["interior"], rim_width=max(0.8, b.r * lk["rim_frac"]),
                         highlight=lk["highlight"] if b.r > 2.5 else 0.0, light=self.light)
            motion = (0.0, b.vy * 0.5) if b.state == "sliding" else (0.0, 0.0)
            out.append(SceneObject([poly], sh, "droplet", uid=b.uid, motion=motion))
        return out


class Taylor(Simulation):
    """Taylor bubbles travelling along a tube at a steady speed; new ones enter upstream."""

    light_strength = 0.7

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        super().__init__(rng, size)
        s = self.s
        self.bg = rng.uniform(165, 230)
        bgimg = soft_background(rng, size, size, self.bg)
        self.cx, self.cy, self.angle, self.r_in = tube_geometry(rng, size)
        r_out = self.r_in + rng.uniform(1.5, 6) * s
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        nn = -(xx - self.cx) * np.sin(self.angle) + (yy - self.cy) * np.cos(self.angle)
        self.inside = self.bg * rng.uniform(0.9, 1.05)
        prof = _tube_profile(nn, self.r_in, r_out, self.bg, self.inside, rng.uniform(50, 140), rng.uniform(0, 50), s)
        self.background = (bgimg + (prof - self.bg)).astype(np.float32)
        self.diameter = 2 * self.r_in * rng.uniform(0.8, 0.93)
        self.speed = rng.uniform(2, 7) * s
        self.half = size * 0.75
        self.rim = rng.uniform(15, 60)
        self.nose, self.tail = rng.uniform(0.9, 1.6), rng.uniform(0.5, 0.9)
        self.next_u = -self.half

    def step(self) -> None:
        rng = self.rng
        for b in self.bodies:
            b.x += self.speed  # x holds the position along the tube axis
            b.age += 1
        self.bodies = [b for b in self.bodies if b.x - b.r < self.half]
        tail_end = min((b.x - b.r for b in self.bodies), default=self.half)
        if tail_end > -self.half + self.diameter * rng.uniform(0.3, 1.5):
            length = self.diameter * rng.uniform(1.3, 4.5)
            b = Body(self.new_id(), -self.half - length / 2, 0.0, length / 2)
            b.extra = {"drift": rng.uniform(-0.4, 0.4) * (self.r_in - self.diameter / 2),
                       "rim_w": self.diameter * rng.uniform(0.07, 0.15) + self.s, "interior": self.inside * rng.uniform(0.98, 1.1)}
            self.bodies.append(b)

    def warm_up(self, steps: int) -> None:
        super().warm_up(max(steps, int(2 * self.half / self.speed) + 2))

    def objects(self) -> list[SceneObject]:
        out = []
        c, sn = np.cos(self.angle), np.sin(self.angle)
        for b in self.bodies:
            u, off = b.x, b.extra["drift"]
            px, py = self.cx + c * u - sn * off, self.cy + sn * u + c * off
            poly = shapes.capsule(px, py, 2 * b.r, self.diameter, self.angle, self.nose, self.tail)
            sh = Shading("backlit", rim=self.rim, interior=b.extra["interior"], rim_width=b.extra["rim_w"], soft=0.7)
            out.append(SceneObject([poly], sh, "bubble", uid=b.uid, motion=(c * self.speed * 0.3, sn * self.speed * 0.3)))
        return out


SIMULATIONS: dict[str, type[Simulation]] = {
    "boiling-side": BoilingSide,
    "boiling-bottom": BoilingBottom,
    "droplets": Droplets,
    "taylor": Taylor,
}
