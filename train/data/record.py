"""The one internal dataset record that every importer produces and every consumer reads.

A :class:`Dataset` is a list of :class:`ImageRecord` s, each with its :class:`Annotation` s, plus the
class names. Category indices are 0-based positions in ``Dataset.classes`` (the model's label is
``category + 1``; 0 is background). Geometry is in image pixels: polygons as ``(K, 2)`` float arrays
of ``x, y``, or a COCO RLE dict; boxes as ``[x, y, w, h]`` (COCO's convention). Nothing here needs
torch, so the synthetic generator and the converters run without it.

Example:
    >>> ds = load_dataset("data/taylor-bubbles-coco/valid")   # any supported format
    >>> ds.classes, len(ds.images), ds.num_instances
    (['taylor bubble'], 4, 13)
    >>> mask = ds.images[0].annotations[0].mask(ds.images[0].height, ds.images[0].width)
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskrt import rle as rle_codec
from maskrt.atomic import write_text
from maskrt.errors import MaskrtError
from maskrt.train.data.geometry import rasterize_polygons


@dataclass
class Annotation:
    """One object instance: its class and its shape (polygons or RLE)."""

    category: int
    polygons: list[np.ndarray] = field(default_factory=list)
    rle: dict[str, Any] | None = None
    bbox: tuple[float, float, float, float] | None = None
    iscrowd: bool = False
    source: str = ""

    def mask(self, height: int, width: int) -> np.ndarray:
        """Rasterise to a boolean ``(height, width)`` mask."""
        if self.rle is not None:
            m = rle_codec.decode(self.rle)
            if m.shape != (height, width):
                m = cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
            return m
        # pixels more than half covered, on a sub-pixel grid: within ~0.3% of pycocotools' area
        return rasterize_polygons(self.polygons, height, width)

    def area(self, height: int, width: int) -> int:
        """Foreground pixel count."""
        if self.rle is not None and list(self.rle["size"]) == [height, width]:
            return rle_codec.area(self.rle)
        return int(self.mask(height, width).sum())

    def compute_bbox(self, height: int, width: int) -> tuple[float, float, float, float]:
        """Tight ``[x, y, w, h]`` box of the rasterised mask (pixel-edge convention)."""
        m = self.mask(height, width)
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            return (0.0, 0.0, 0.0, 0.0)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


@dataclass
class ImageRecord:
    """One image file and the instances annotated on it."""

    file: Path
    width: int
    height: int
    annotations: list[Annotation] = field(default_factory=list)
    id: int = 0

    def load(self) -> np.ndarray:
        """Read the image as BGR uint8; raise :class:`MaskrtError` when it cannot be read."""
        img = cv2.imread(str(self.file), cv2.IMREAD_COLOR)
        if img is None:
            raise MaskrtError("cannot read image; check that the file exists and is a valid image", path=self.file)
        return img


@dataclass
class Dataset:
    """Images, their instances and the class names, with the problems found while importing."""

    classes: list[str]
    images: list[ImageRecord]
    source: Path | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def num_instances(self) -> int:
        return sum(len(im.annotations) for im in self.images)

    def class_counts(self) -> dict[str, int]:
        """Number of instances per class name (classes with none included, as 0)."""
        c = Counter(a.category for im in self.images for a in im.annotations)
        return {name: c.get(i, 0) for i, name in enumerate(self.classes)}

    def to_coco(self, relative_to: Path | None = None) -> dict[str, Any]:
        """COCO instance JSON (category ids 1..K, polygons kept as polygons, RLE as RLE)."""
        images, anns = [], []
        ann_id = 1
        for idx, im in enumerate(self.images, start=1):
            fname = str(im.file)
            if relative_to is not None:
                try:
                    fname = str(Path(im.file).resolve().relative_to(Path(relative_to).resolve()))
                except ValueError:
                    fname = str(Path(im.file).resolve())
            images.append({"id": idx, "file_name": fname, "width": im.width, "height": im.height})
            for a in im.annotations:
                entry: dict[str, Any] = {
                    "id": ann_id,
                    "image_id": idx,
                    "category_id": a.category + 1,
                    "iscrowd": int(a.iscrowd),
                    "area": float(a.area(im.height, im.width)),
                    "bbox": [round(float(v), 2) for v in (a.bbox or a.compute_bbox(im.height, im.width))],
                }
                if a.rle is not None:
                    r = dict(a.rle)
                    if not a.iscrowd and not isinstance(r["counts"], str):
                        r = rle_codec.encode(rle_codec.decode(r))
                    entry["segmentation"] = r
                else:
                    entry["segmentation"] = [
                        [round(float(v), 2) for v in np.asarray(p, dtype=np.float64).reshape(-1)] for p in a.polygons
                    ]
                anns.append(entry)
                ann_id += 1
        cats = [{"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(self.classes)]
        return {"images": images, "annotations": anns, "categories": cats}

    def save_coco(self, path: str | Path, relative_to: Path | None = None) -> Path:
        """Write COCO JSON atomically; file names relative to ``relative_to`` (default: the JSON's folder)."""
        path = Path(path)
        data = self.to_coco(relative_to if relative_to is not None else path.parent)
        write_text(path, json.dumps(data))
        return path

    def subset(self, indices: list[int]) -> Dataset:
        """A dataset of the images at ``indices`` (same classes)."""
        return Dataset(self.classes, [self.images[i] for i in indices], self.source, [])

    def split(self, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Random split into (train, val) with ``fraction`` of the images (at least one) in val."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.images)).tolist()
        n_val = max(1, round(len(order) * fraction)) if len(order) > 1 else 0
        return self.subset(sorted(order[n_val:])), self.subset(sorted(order[:n_val]))

    def merged(self, other: Dataset) -> Dataset:
        """Concatenate two datasets, mapping ``other``'s classes by name."""
        classes = list(self.classes)
        for n in other.classes:
            if n not in classes:
                classes.append(n)
        remap = {i: classes.index(n) for i, n in enumerate(other.classes)}
        images = list(self.images)
        for im in other.images:
            anns = [
                Annotation(remap[a.category], a.polygons, a.rle, a.bbox, a.iscrowd, a.source) for a in im.annotations
            ]
            images.append(ImageRecord(im.file, im.width, im.height, anns, im.id))
        return Dataset(classes, images, self.source, self.problems + other.problems)
