"""Render a synthetic video with per-frame ground truth, for stream tests, tracking tests and the demo.

Writes ``OUT.mp4`` (mp4v, readable by ``cv2.VideoCapture`` with the same frame count) and ``OUT.json``
beside it holding, for every frame, the instance count per class, the void (area) fraction, and each
visible instance with its persistent object id, box, area and compressed COCO RLE mask. Optionally also
writes the frames as PNGs (an image-sequence source). numpy + OpenCV only: usable without torch.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskrt.atomic import atomic_path, write_text
from maskrt.errors import MaskrtError
from maskrt.train.synth.dataset import check_options
from maskrt.train.synth.effects import apply_camera, sample_camera
from maskrt.train.synth.motion import SIMULATIONS
from maskrt.train.synth.render import Canvas
from maskrt.train.synth.scenes import CLASSES, pick_scene

log = logging.getLogger(__name__)

GROUND_TRUTH_VERSION = 1


def ground_truth_path(video: str | Path) -> Path:
    """Where :func:`render_video` writes the ground truth of ``video``: the same name with ``.json``."""
    return Path(video).with_suffix(".json")


def render_video(
    out: str | Path,
    frames: int = 120,
    size: int = 512,
    scene: str = "boiling-side",
    fps: float = 30.0,
    seed: int = 0,
    frames_dir: str | Path | None = None,
    min_area: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render a moving synthetic scene to ``out`` (.mp4) and its ground truth to ``out`` with ``.json``.

    Bubbles nucleate on a heater, grow, detach and rise (``boiling-side``); vapour patches spread and vanish
    (``boiling-bottom``); droplets grow, merge and slide off (``droplets``); Taylor bubbles travel along a
    tube (``taylor``). ``mixed`` picks one of them from the seed. Object ids persist across frames.

    Args:
        out: video path (``.mp4``; written with the ``mp4v`` codec).
        frames: number of frames.
        size: square frame side in pixels.
        scene: scene type, as for :func:`~maskrt.train.synth.generate_dataset`.
        fps: frame rate stored in the video.
        seed: random seed (same seed, same video and ground truth).
        frames_dir: if given, also write ``frame_000000.png``, ... there.
        min_area: smallest visible instance reported, in pixels.
        progress: called as ``progress(done, total)`` after each frame.

    Returns:
        Path of the ground-truth JSON: ``{"frames": [{"index", "counts", "void_fraction", "instances":
        [{"id", "category", "bbox", "area", "segmentation"}]}], "classes", "size", "fps", "scene", ...}``.

    Example:
        >>> gt = render_video("demo-out/boiling.mp4", frames=60, size=256, scene="boiling-side", seed=1)
        >>> json.loads(gt.read_text())["frames"][0]["counts"]
        {'bubble': 23, 'droplet': 0}
    """
    check_options(scene, size, frames, what="--frames", seed=seed)
    if size % 2:
        raise MaskrtError(f"synth: --size {size} is odd; mp4 video needs an even frame size, e.g. {size + 1}")
    if fps <= 0:
        raise MaskrtError(f"synth: --fps {fps} must be positive")
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise MaskrtError("video name should end in .mp4 (written with the mp4v codec); rename the output", path=out)
    rng = np.random.default_rng([int(seed), 1 << 20])
    name = pick_scene(scene, rng)
    sim = SIMULATIONS[name](rng, size)
    sim.warm_up(60)
    cam = sample_camera(rng, size, size, colour=sim.colour, strength=sim.light_strength)
    fdir = Path(frames_dir) if frames_dir is not None else None
    if fdir is not None:
        fdir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    with atomic_path(out) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (size, size))
        if not writer.isOpened():
            raise MaskrtError("cannot open a video writer (mp4v); check OpenCV's video support", path=out)
        try:
            for i in range(frames):
                canvas = Canvas(sim.background)
                for obj in sim.objects():
                    canvas.draw(obj, rng)
                img = apply_camera(canvas.image, cam, rng)
                insts = canvas.instances(min_area)
                writer.write(img)
                if fdir is not None:
                    cv2.imwrite(str(fdir / f"frame_{i:06d}.png"), img)
                counts = {c: 0 for c in CLASSES}
                for it in insts:
                    counts[it.category] += 1
                records.append({
                    "index": i,
                    "counts": counts,
                    "void_fraction": round(sum(it.area for it in insts) / float(size * size), 6),
                    "instances": [
                        {"id": it.uid, "category": it.category, "bbox": list(it.bbox), "area": it.area,
                         "segmentation": it.rle}
                        for it in insts
                    ],
                })
                sim.step()
                if progress is not None:
                    progress(i + 1, frames)
        finally:
            writer.release()
    gt = {
        "version": GROUND_TRUTH_VERSION,
        "video": out.name,
        "frames_dir": str(fdir) if fdir is not None else None,
        "scene": name,
        "seed": int(seed),
        "size": [size, size],
        "fps": float(fps),
        "classes": list(CLASSES),
        "num_frames": frames,
        "frames": records,
    }
    path = ground_truth_path(out)
    write_text(path, json.dumps(gt))
    log.info("wrote %s (%d frames, scene %s) and %s", out, frames, name, path)
    return path
