"""Write a synthetic COCO dataset: images plus ``annotations.json`` with exact compressed-RLE instance masks."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskrt.atomic import write_text
from maskrt.errors import MaskrtError
from maskrt.train.data.record import Annotation, Dataset, ImageRecord
from maskrt.train.synth.bottom import REGIMES
from maskrt.train.synth.scenes import (
    BOTTOM_STYLES,
    CLASSES,
    SCENE_NAMES,
    Rendered,
    build_scene,
    pick_scene,
    render_scene,
)

log = logging.getLogger(__name__)

ANNOTATIONS = "annotations.json"


def _write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary name and rename (no fsync per image: ``annotations.json``, written last, is)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


_Written = tuple[str, Path, list[tuple[str, dict[str, Any], tuple[float, float, float, float]]]]
_Job = tuple[int, Path, int, str, int, int, str, str, str]


def _render_and_write(job: _Job) -> _Written:
    """Render image ``i`` and write it; return its scene, file and instances (runs in worker processes too)."""
    i, out, size, scene, seed, min_area, image_format, regime, style = job
    name, res = render_image(i, size, scene, seed, min_area, regime=regime, style=style)
    file = out / f"{i:06d}.{image_format}"
    params = [cv2.IMWRITE_JPEG_QUALITY, res.jpeg_quality] if image_format == "jpg" else []
    ok, buf = cv2.imencode(f".{image_format}", res.image, params)
    if not ok:
        raise MaskrtError("cannot encode the image; check OpenCV's image codecs", path=file)
    _write_bytes(file, buf.tobytes())
    return name, file, [(it.category, it.rle, tuple(float(v) for v in it.bbox)) for it in res.instances]  # type: ignore[misc]


def check_options(scene: str, size: int, count: int, what: str = "--images", seed: int = 0) -> None:
    """Raise :class:`MaskrtError` for a scene name, size, count or seed a user got wrong."""
    if seed < 0:
        raise MaskrtError(f"synth: --seed {seed} must be zero or positive")
    if scene not in SCENE_NAMES:
        raise MaskrtError(f"synth: unknown scene {scene!r}; use one of {', '.join(SCENE_NAMES)}")
    if size < 32 or size > 8192:
        raise MaskrtError(f"synth: --size {size} is out of range; use 32 to 8192 pixels")
    if count < 1:
        raise MaskrtError(f"synth: {what} {count} must be at least 1")


def check_bottom_options(regime: str, style: str) -> None:
    """Raise :class:`MaskrtError` for a ``boiling-bottom`` regime or style a user got wrong."""
    if regime not in REGIMES:
        raise MaskrtError(f"synth: unknown --regime {regime!r}; use one of {', '.join(REGIMES)}")
    if style not in BOTTOM_STYLES:
        raise MaskrtError(f"synth: unknown --bottom-style {style!r}; use one of {', '.join(BOTTOM_STYLES)}")


def render_image(
    index: int, size: int = 512, scene: str = "mixed", seed: int = 0, min_area: int = 8, regime: str = "both",
    style: str = "realistic",
) -> tuple[str, Rendered]:
    """Render image number ``index`` of the dataset for ``seed`` (independent of the others): ``(scene, result)``.

    ``regime`` (``both``, ``isolated``, ``dense``) and ``style`` (``realistic``, ``classic``) shape the
    ``boiling-bottom`` images only; the other scenes do not depend on them.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    name = pick_scene(scene, rng)
    return name, render_scene(build_scene(name, rng, size, regime, style), rng, min_area=min_area)


def generate_dataset(
    out: str | Path,
    images: int = 100,
    size: int = 512,
    scene: str = "mixed",
    seed: int = 0,
    min_area: int = 8,
    image_format: str = "jpg",
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    regime: str = "both",
    style: str = "realistic",
) -> Path:
    """Generate a synthetic instance-segmentation dataset in COCO format, the project's built-in default data.

    Images are written beside ``annotations.json`` (``000000.jpg``, ...). Masks are the visible parts of
    each object after occlusion, as compressed COCO RLE; boxes are tight around them; instances with fewer
    than ``min_area`` visible pixels are left out. The same arguments give byte-identical annotations.

    Args:
        out: output folder (created).
        images: number of images.
        size: square image side in pixels.
        scene: ``boiling-side``, ``boiling-bottom``, ``droplets``, ``taylor`` or ``mixed`` (a random scene per
            image, weighted by ``scenes.MIXED_WEIGHTS`` towards the bubble scenes).
        seed: random seed; image ``i`` depends only on ``(seed, i)``.
        min_area: smallest visible instance kept, in pixels.
        image_format: ``jpg`` (with the camera's random JPEG quality, i.e. real compression artefacts) or ``png``.
        progress: called as ``progress(done, total)`` after each image.
        workers: processes rendering in parallel (the output does not depend on it).
        regime: ``boiling-bottom`` images: ``isolated`` bubbles, ``dense`` boiling, or ``both`` (at random).
        style: ``boiling-bottom`` images: ``realistic`` (matched to real frames; instances are connected
            components of the vapour, holes kept) or ``classic`` (the earlier look).

    Returns:
        Path of the written ``annotations.json``.

    Example:
        >>> ann = generate_dataset("data-out/synth", images=200, size=256, scene="mixed", seed=0)
        >>> load_dataset(ann).class_counts()
        {'bubble': ..., 'droplet': ...}
    """
    check_options(scene, size, images, seed=seed)
    check_bottom_options(regime, style)
    if image_format not in ("jpg", "png"):
        raise MaskrtError(f"synth: image format {image_format!r} is not supported; use jpg or png")
    if workers < 1:
        raise MaskrtError(f"synth: --workers {workers} must be at least 1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs: list[_Job] = [(i, out, size, scene, seed, min_area, image_format, regime, style) for i in range(images)]
    if workers == 1 or images < 2 * workers:
        results: Iterator[_Written] = map(_render_and_write, jobs)
        pool = None
    else:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        results = pool.map(_render_and_write, jobs, chunksize=max(1, min(16, images // (4 * workers))))
    records: list[ImageRecord] = []
    scenes_used: list[str] = []
    try:
        for i, (name, file, instances) in enumerate(results):
            anns = [Annotation(CLASSES.index(cat), rle=rle, bbox=bbox) for cat, rle, bbox in instances]
            records.append(ImageRecord(file, size, size, anns, id=i + 1))
            scenes_used.append(name)
            if progress is not None:
                progress(i + 1, images)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    ds = Dataset(list(CLASSES), records, source=out)
    coco = ds.to_coco(relative_to=out)
    for entry, name in zip(coco["images"], scenes_used):
        entry["scene"] = name
    coco["info"] = {
        "description": "maskrt synthetic scenes",
        "scene": scene,
        "seed": int(seed),
        "size": int(size),
        "min_area": int(min_area),
        "regime": regime,
        "bottom_style": style,
        "images_per_scene": dict(sorted(Counter(scenes_used).items())),
    }
    path = out / ANNOTATIONS
    write_text(path, json.dumps(coco))
    log.info("wrote %d images with %d instances to %s", images, ds.num_instances, out)
    return path
