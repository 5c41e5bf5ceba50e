"""Summary statistics of a :class:`Dataset`, for ``maskrt data check`` and ``maskrt convert``.

Areas are in square pixels: the shoelace area for polygon instances (fast, no rasterising) and the
pixel count for RLE instances. Size buckets follow COCO: small < 32^2, medium < 96^2, large otherwise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from maskrt import rle as rle_codec
from maskrt.train.data.geometry import polygon_area
from maskrt.train.data.record import Annotation, Dataset

PERCENTILES = (0, 5, 25, 50, 75, 95, 100)


def instance_area(ann: Annotation, height: int, width: int) -> float:
    """Area of one instance in square pixels (polygon area, or RLE pixel count)."""
    if ann.rle is not None:
        if list(ann.rle.get("size", [])) == [height, width]:
            return float(rle_codec.area(ann.rle))
        return float(ann.area(height, width))
    return float(sum(polygon_area(p) for p in ann.polygons))


@dataclass
class DatasetStats:
    """What ``maskrt data check`` reports about a dataset."""

    images: int
    instances: int
    class_counts: dict[str, int]
    image_sizes: dict[str, int]
    area_percentiles: dict[int, float]
    size_buckets: dict[str, int]
    per_image: dict[str, float]
    crowd: int
    images_without_instances: int
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready form."""
        return {
            "images": self.images,
            "instances": self.instances,
            "class_counts": self.class_counts,
            "image_sizes": self.image_sizes,
            "area_percentiles": {f"p{k}": v for k, v in self.area_percentiles.items()},
            "size_buckets": self.size_buckets,
            "instances_per_image": self.per_image,
            "crowd": self.crowd,
            "images_without_instances": self.images_without_instances,
            "problems": self.problems,
        }


def dataset_stats(ds: Dataset) -> DatasetStats:
    """Counts per class, image sizes, instance-area percentiles and instances per image."""
    areas: list[float] = []
    per_image: list[int] = []
    sizes: Counter[str] = Counter()
    crowd = 0
    for im in ds.images:
        sizes[f"{im.width}x{im.height}"] += 1
        per_image.append(len(im.annotations))
        for a in im.annotations:
            areas.append(instance_area(a, im.height, im.width))
            crowd += int(a.iscrowd)
    arr = np.asarray(areas, dtype=np.float64)
    pct = {p: float(np.percentile(arr, p)) for p in PERCENTILES} if len(arr) else {}
    buckets = {
        "small (<32^2)": int((arr < 32**2).sum()),
        "medium": int(((arr >= 32**2) & (arr < 96**2)).sum()),
        "large (>=96^2)": int((arr >= 96**2).sum()),
    }
    n = np.asarray(per_image, dtype=np.float64)
    per = (
        {"min": float(n.min()), "mean": float(n.mean()), "median": float(np.median(n)), "max": float(n.max())}
        if len(n)
        else {}
    )
    return DatasetStats(
        images=len(ds.images),
        instances=ds.num_instances,
        class_counts=ds.class_counts(),
        image_sizes=dict(sizes.most_common()),
        area_percentiles=pct,
        size_buckets=buckets,
        per_image=per,
        crowd=crowd,
        images_without_instances=int((n == 0).sum()) if len(n) else 0,
        problems=list(ds.problems),
    )
