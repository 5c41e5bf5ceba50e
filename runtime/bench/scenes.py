"""Benchmark frames with realistic content: synthetic bubble scenes of a chosen density, or a folder of images.

Mask R-CNN's cost depends on how many instances it finds, so a benchmark must not feed zeros or noise.
The synthetic scenes imitate backlit (shadowgraph) bubbly flow: an unevenly lit background, dark
bubble rims with bright centres, overlaps and sensor noise. They need only numpy and OpenCV.

Example:
    >>> frames = synthetic_frames(4, size=(512, 512), instances=30)
    >>> frames[0].shape, frames[0].dtype
    ((512, 512, 3), dtype('uint8'))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from maskrt.errors import MaskrtError
from maskrt.runtime.images import IMAGE_SUFFIXES


def render_scene(
    size: tuple[int, int] = (512, 512), instances: int = 30, seed: int = 0, radius: tuple[float, float] | None = None
) -> np.ndarray:
    """One BGR uint8 frame of ``size`` (h, w) with ``instances`` bubbles (dark rim, bright centre).

    Args:
        size: frame height and width in pixels.
        instances: number of bubbles drawn (they may overlap, as in dense flow).
        seed: random seed; the same seed gives the same frame.
        radius: bubble radius range in pixels; by default it shrinks as the density grows so that
            100 bubbles still fit a 512x512 frame.
    """
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    light = 200.0 - 60.0 * (((xx - cx) / w) ** 2 + ((yy - cy) / h) ** 2)  # uneven back-light
    img = np.clip(light + rng.normal(0, 4, (h, w)), 0, 255).astype(np.float32)
    if radius is None:
        r_hi = max(6.0, min(h, w) * 0.5 / np.sqrt(max(instances, 1)))
        radius = (max(3.0, r_hi * 0.35), r_hi)
    for _ in range(int(instances)):
        r = rng.uniform(*radius)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        ax = (int(r), int(r * rng.uniform(0.7, 1.0)))
        angle = rng.uniform(0, 180)
        centre = (int(x), int(y))
        cv2.ellipse(img, centre, ax, angle, 0, 360, float(rng.uniform(25, 70)), -1, cv2.LINE_AA)
        inner = (max(1, int(ax[0] * 0.45)), max(1, int(ax[1] * 0.45)))
        cv2.ellipse(img, centre, inner, angle, 0, 360, float(rng.uniform(170, 235)), -1, cv2.LINE_AA)
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    grey = np.clip(img, 0, 255).astype(np.uint8)
    bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    tint = np.array([rng.integers(-6, 7) for _ in range(3)], dtype=np.int16)
    return np.clip(bgr.astype(np.int16) + tint, 0, 255).astype(np.uint8)


def synthetic_frames(
    count: int = 8, size: tuple[int, int] = (512, 512), instances: int | Sequence[int] = 30, seed: int = 0
) -> list[np.ndarray]:
    """``count`` different scenes to rotate among; ``instances`` is one density or one per frame."""
    counts = [int(instances)] * count if isinstance(instances, int) else [int(n) for n in instances]
    if len(counts) != count:
        counts = (counts * count)[:count]
    return [render_scene(size, n, seed=seed + i) for i, n in enumerate(counts)]


def load_folder(folder: str | Path, limit: int = 32) -> list[np.ndarray]:
    """Up to ``limit`` images from ``folder`` (sorted by name) as BGR uint8 frames; unreadable ones are skipped.

    Raises:
        MaskrtError: when the folder is missing or holds no readable image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MaskrtError("image folder not found; pass a folder of .jpg/.png images to --images", path=folder)
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    frames = []
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is not None:
            frames.append(img)
        if len(frames) >= limit:
            break
    if not frames:
        raise MaskrtError(
            f"no readable image ({'/'.join(IMAGE_SUFFIXES)}) in this folder; pass another --images folder",
            path=folder,
        )
    return frames


def video_frames(source: str | Path, limit: int = 64) -> list[np.ndarray]:
    """Up to ``limit`` frames from any ``maskrt run`` source (video file, folder or glob of images, camera, URL).

    The source is opened through the runtime's one source grammar (:mod:`maskrt.runtime.stream.sources`),
    so ``bench --stream`` accepts what ``maskrt run`` accepts.

    Raises:
        MaskrtError: when the source cannot be parsed, opened or yields no frame.
    """
    from maskrt.runtime.stream.sources import open_source, parse_source

    try:
        src = open_source(parse_source(str(source)))
    except MaskrtError as exc:
        raise MaskrtError(f"cannot read frames from this source: {exc}") from None
    frames: list[np.ndarray] = []
    try:
        while len(frames) < limit:
            frame = src.read()
            if frame is None:
                break
            frames.append(frame)
    finally:
        src.close()
    if not frames:
        raise MaskrtError("cannot read frames from this source; check the path or URL", path=str(source))
    return frames


def bench_frames(images: Path | None, stream: str | None, imgsz: int, count: int, instances: int) -> tuple[list[np.ndarray], str]:
    """The frames ``maskrt bench`` rotates among (``--images``, ``--stream`` or synthetic), and their description."""
    if images is not None:
        frames = load_folder(images, limit=count)
        return frames, f"{len(frames)} images from {images}"
    if stream is not None:
        frames = video_frames(stream, limit=count)
        return frames, f"{len(frames)} frames read from {stream}"
    frames = synthetic_frames(count, (imgsz, imgsz), instances)
    return frames, f"{count} synthetic {imgsz}x{imgsz} scenes with {instances} bubbles each, in rotation"
