"""Camera and optics effects applied to a rendered grey scene: light, lens, sensor and compression.

:func:`sample_camera` draws one random camera (kept fixed over a video); :func:`apply_camera` turns a
float grey scene into the uint8 BGR frame that camera would record. None of these effects move pixels
by more than a blur radius, so the instance masks drawn before them stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from maskrt.train.synth.render import low_freq_noise


@dataclass
class Camera:
    """One random camera: multiplicative light field, blur, tone curve, noise, colour tint and JPEG quality."""

    light: np.ndarray  # (H, W) float32 multiplicative gain: illumination gradient x blotches x vignetting
    blur_sigma: float
    gamma: float
    contrast: float
    brightness: float
    noise_sigma: float
    shot_noise: float
    tint: tuple[float, float, float]
    jpeg_quality: int


def sample_camera(
    rng: np.random.Generator, height: int, width: int, colour: float = 0.25, strength: float = 1.0
) -> Camera:
    """Draw a random camera for a ``height x width`` frame.

    Args:
        rng: random source.
        height, width: frame size in pixels.
        colour: probability of a colour tint (most lab cameras are monochrome).
        strength: scales how strong the light gradient and vignetting are (0 gives an even field).
    """
    xn = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    yn = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    ang = rng.uniform(0, 2 * np.pi)
    grad = rng.uniform(0.0, 0.35) * strength * (np.cos(ang) * xn + np.sin(ang) * yn)
    blotch = rng.uniform(0.0, 0.06) * strength * low_freq_noise(rng, height, width, rng.uniform(40, 160))
    cx, cy = rng.uniform(-0.15, 0.15, size=2)
    r2 = ((xn - cx) ** 2 + (yn - cy) ** 2) / 0.5
    vig = 1.0 - rng.uniform(0.0, 0.35) * strength * r2**rng.uniform(0.8, 1.6)
    light = np.clip((1.0 + grad + blotch) * vig, 0.2, 1.6).astype(np.float32)
    if rng.uniform() < colour:
        base = rng.uniform(0.8, 1.0, size=3)
        base[rng.integers(3)] = 1.0
        tint = (float(base[0]), float(base[1]), float(base[2]))
    else:
        tint = (1.0, 1.0, 1.0)
    return Camera(
        light=light,
        blur_sigma=float(rng.choice([0.0, rng.uniform(0.4, 1.4)], p=[0.3, 0.7])),
        gamma=float(rng.uniform(0.75, 1.35)),
        contrast=float(rng.uniform(0.75, 1.25)),
        brightness=float(rng.uniform(-20, 20)),
        noise_sigma=float(rng.uniform(0.5, 6.0)),
        shot_noise=float(rng.uniform(0.0, 0.35)),
        tint=tint,
        jpeg_quality=int(rng.integers(55, 96)),
    )


def apply_camera(scene: np.ndarray, cam: Camera, rng: np.random.Generator) -> np.ndarray:
    """Record the float grey ``scene`` (0..255) with ``cam``: returns a uint8 BGR image (no JPEG yet)."""
    img = scene * cam.light
    if cam.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), cam.blur_sigma)
    x = np.clip(img * (1.0 / 255.0), 0.0, 1.0)
    x = x**cam.gamma
    img = (x - 0.5) * cam.contrast * 255.0 + 127.5 + cam.brightness
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    sigma = cam.noise_sigma + cam.shot_noise * np.sqrt(np.clip(img, 0, 255))
    img = img + noise * sigma
    grey = np.clip(img, 0, 255)
    b, g, r = cam.tint
    if (b, g, r) == (1.0, 1.0, 1.0):
        out = grey.astype(np.uint8)
        return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    bgr = np.stack([grey * b, grey * g, grey * r], axis=2)
    return np.clip(bgr, 0, 255).astype(np.uint8)
