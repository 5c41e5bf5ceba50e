"""The real Roboflow export (tests/data/taylor-bubbles-coco) imports with the counts its README states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from maskrt.train.data import detect_format, load_dataset

TAYLOR = Path(__file__).resolve().parents[2] / "data" / "taylor-bubbles-coco"


def test_all_splits_merge_to_151_instances_of_one_class() -> None:
    ds = load_dataset(TAYLOR)
    assert ds.classes == ["taylor bubble"]  # id 0 'Bubbles-IFQb' is an unused supercategory
    assert ds.num_instances == 151
    assert len(ds.images) == 52
    assert ds.problems == []
    assert sorted(im.id for im in ds.images) == list(range(52))


@pytest.mark.parametrize(
    ("split", "images", "instances"), [("train", 45, 129), ("valid", 4, 13), ("test", 3, 9)]
)
def test_each_split(split: str, images: int, instances: int) -> None:
    ds = load_dataset(TAYLOR / split)
    assert (len(ds.images), ds.num_instances, ds.classes) == (images, instances, ["taylor bubble"])
    assert detect_format(TAYLOR / split) == ("coco", TAYLOR / split / "_annotations.coco.json")


def test_masks_match_pycocotools_area() -> None:
    mask_api = pytest.importorskip("pycocotools.mask")
    import json

    data = json.loads((TAYLOR / "valid" / "_annotations.coco.json").read_text())
    ds = load_dataset(TAYLOR / "valid" / "_annotations.coco.json")
    ours = sorted(a.area(im.height, im.width) for im in ds.images for a in im.annotations)
    ref = sorted(
        int(mask_api.area(mask_api.merge(mask_api.frPyObjects(a["segmentation"], 640, 640))))
        for a in data["annotations"]
    )
    assert np.allclose(ours, ref, rtol=0.01)
    for im in ds.images:
        for a in im.annotations:
            x, y, w, h = a.bbox
            assert 0 <= x and 0 <= y and x + w <= im.width and y + h <= im.height and w > 0 and h > 0
