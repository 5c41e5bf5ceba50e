"""Backgrounds for the synthetic scenes: backlit liquid, heater surfaces, brushed metal, and heater outlines."""

from __future__ import annotations

import cv2
import numpy as np

from maskrt.train.synth.render import low_freq_noise


def _specks(rng: np.random.Generator, img: np.ndarray, n: int, value: float) -> None:
    """Dust on the optics: a few small dark dots that are not objects (hard negatives)."""
    h, w = img.shape
    for _ in range(n):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(1, 3))
        cv2.circle(img, (x, y), r, float(value * rng.uniform(0.3, 0.8)), -1, cv2.LINE_AA)


def soft_background(rng: np.random.Generator, h: int, w: int, level: float, structures: bool = False) -> np.ndarray:
    """Bright, nearly even backlight with faint blotches, dust, and sometimes the shadows of a channel's walls.

    With ``structures``, sometimes also a dark horizontal band (a flange or frame): something that is not a bubble.
    """
    img = level + rng.uniform(1, 6) * low_freq_noise(rng, h, w, rng.uniform(30, 120))
    img = img.astype(np.float32)
    if rng.uniform() < 0.45:  # vertical wall shadows near the sides, as in a pipe or tank
        for side in (0, 1):
            if rng.uniform() < 0.7:
                x = rng.uniform(0.0, 0.12) * w
                x = x if side == 0 else w - 1 - x
                width = rng.uniform(1.5, 10) * w / 512
                xx = np.arange(w, dtype=np.float32)
                band = np.exp(-0.5 * ((xx - x) / width) ** 2) * rng.uniform(10, 60)
                img -= band[None, :]
    if structures and rng.uniform() < 0.25:  # a flange or window frame crossing the view
        y = rng.uniform(0, h)
        height = rng.uniform(4, 40) * h / 512
        yy = np.arange(h, dtype=np.float32)
        band = np.clip(1.0 - np.abs(yy - y) / height, 0, 1) ** 0.3 * rng.uniform(20, 90)
        img -= band[:, None]
    _specks(rng, img, int(rng.integers(0, 8)), level)
    return img


def rough_surface(rng: np.random.Generator, h: int, w: int, level: float) -> np.ndarray:
    """A darker heater floor seen through glass: mottled at two scales, with a few scratches."""
    img = (
        level
        + rng.uniform(4, 18) * low_freq_noise(rng, h, w, rng.uniform(40, 120))
        + rng.uniform(2, 9) * low_freq_noise(rng, h, w, rng.uniform(3, 8))
    ).astype(np.float32)
    for _ in range(int(rng.integers(0, 6))):
        p0 = rng.uniform(0, 1, 2) * (w, h)
        p1 = p0 + rng.uniform(-0.4, 0.4, 2) * (w, h)
        cv2.line(img, tuple(int(v) for v in p0), tuple(int(v) for v in p1),
                 float(level + rng.uniform(-25, 25)), 1, cv2.LINE_AA)
    return img


def brushed_metal(rng: np.random.Generator, h: int, w: int, level: float) -> np.ndarray:
    """A condenser surface: streaks along one direction plus slow shading."""
    streak: np.ndarray = rng.standard_normal((h, max(2, w // 64))).astype(np.float32)
    streak = cv2.resize(streak, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.uniform() < 0.5:
        streak = cv2.resize(streak.T.copy(), (w, h), interpolation=cv2.INTER_LINEAR)
    img = level + rng.uniform(2, 10) * streak + rng.uniform(3, 15) * low_freq_noise(rng, h, w, rng.uniform(60, 200))
    return img.astype(np.float32)


def heater_block(rng: np.random.Generator, size: int, top: float, bottom: float, roughness: float = 1.0) -> np.ndarray:
    """Outline of a heater spanning the image width between ``top`` and ``bottom`` with a slightly rough top edge."""
    n = max(4, size // 16)
    xs = np.linspace(-8, size + 8, n)
    ys = top + roughness * rng.uniform(-1.0, 1.0, n) * size / 512
    upper = np.stack([xs, ys], axis=1)
    lower = np.array([[size + 8, bottom], [-8, bottom]], dtype=np.float64)
    return np.concatenate([upper, lower], axis=0)
