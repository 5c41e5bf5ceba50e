"""Images for the export's parity check: synthetic bubble scenes, or the user's own images letterboxed.

Simple OpenCV-drawn bubbles (many small round objects with rims on a graded noisy background)
exercise NMS and the mask head better than noise, and need nothing but numpy and OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from maskrt.errors import MaskrtError
from maskrt.runtime.images import IMAGE_SUFFIXES


@dataclass
class Scene:
    """A BGR uint8 image and the instance masks drawn into it (empty for user images)."""

    image: np.ndarray
    masks: list[np.ndarray] = field(default_factory=list)


def bubble_scene(size: tuple[int, int], rng: np.random.Generator, n_objects: int | None = None) -> Scene:
    """Draw one scene of dark-rimmed bright bubbles on a smooth noisy background."""
    h, w = size
    base = rng.uniform(60, 190)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grad = (xx / max(w, 1) - 0.5) * rng.uniform(-40, 40) + (yy / max(h, 1) - 0.5) * rng.uniform(-40, 40)
    img = np.clip(base + grad + rng.normal(0, 6, (h, w)), 0, 255).astype(np.float32)
    img = np.repeat(img[:, :, None], 3, axis=2) * rng.uniform(0.85, 1.15, 3).astype(np.float32)
    n = int(rng.integers(3, 12)) if n_objects is None else n_objects
    masks: list[np.ndarray] = []
    occupied = np.zeros((h, w), dtype=bool)
    for _ in range(n):
        r = float(rng.uniform(4, max(6.0, min(h, w) / 8)))
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        mask = np.zeros((h, w), dtype=np.uint8)
        axes = (max(2, int(r * rng.uniform(0.8, 1.2))), max(2, int(r * rng.uniform(0.8, 1.2))))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        m = mask.astype(bool) & ~occupied
        if m.sum() < 12:
            continue
        occupied |= m
        rim = m & ~cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)
        dark = rng.uniform(0, 1) < 0.5
        fill = rng.uniform(20, 70) if dark else rng.uniform(200, 250)
        img[m] = fill
        img[rim] = 255 - fill
        masks.append(m)
    img = cv2.GaussianBlur(img, (3, 3), 0.8)
    return Scene(np.clip(img, 0, 255).astype(np.uint8), masks)


def synthetic_scenes(n: int, size: tuple[int, int], seed: int = 0) -> list[Scene]:
    """``n`` synthetic scenes of ``size`` (H, W); the last one has no objects (the zero-detection path)."""
    rng = np.random.default_rng(seed)
    scenes = [bubble_scene(size, rng) for _ in range(max(n - 1, 0))]
    if n > 0:
        # no objects; sensor-like noise (a perfectly flat frame makes every anchor tie)
        level = float(rng.integers(80, 180))
        blank = np.clip(level + rng.normal(0, 4, (size[0], size[1], 1)), 0, 255).repeat(3, axis=2)
        scenes.append(Scene(blank.astype(np.uint8)))
    return scenes


def letterbox(image: np.ndarray, size: tuple[int, int], pad_value: int = 114) -> np.ndarray:
    """The runtime's own letterbox (the artifact's rule), so parity is checked on exactly what the runtime feeds."""
    from maskrt.runtime.preprocess import letterbox as runtime_letterbox

    return runtime_letterbox(image, size, pad_value)[0]


def folder_images(folder: str | Path, size: tuple[int, int], limit: int = 8, pad_value: int = 114) -> list[Scene]:
    """Up to ``limit`` images from ``folder`` (searched recursively), letterboxed to ``size``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MaskrtError("--data must be a folder of images; pass a directory with .jpg/.png files", path=folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise MaskrtError("no images (.jpg, .png, ...) found; pass a folder that holds some", path=folder)
    scenes = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise MaskrtError("cannot decode this image; remove it or convert it to PNG/JPEG", path=f)
        scenes.append(Scene(letterbox(img, size, pad_value)))
    return scenes
