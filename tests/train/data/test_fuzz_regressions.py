"""One plain test for each importer crash the fuzzer (test_fuzz_importers.py) found: wrong types, NaN and
infinities where numbers go, names no file system takes. Each used to raise a raw TypeError, IndexError,
OverflowError, AttributeError or OSError; now the item is skipped (or fixed) with one problem line."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from maskrt.train.data import Dataset, load_dataset

W, H = 40, 30
SQUARE = [5, 5, 20, 5, 20, 20, 5, 20]
EMBEDDED_UNDECODABLE = (
    "image file not found and its embedded image data cannot be decoded; skipped with its 1 instances"
)
PNG_MASK = base64.b64encode(cv2.imencode(".png", np.full((4, 4), 255, np.uint8))[1].tobytes()).decode()


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASKRT_CACHE", str(tmp_path / "cache"))
    cv2.imwrite(str(tmp_path / "a.png"), np.full((H, W, 3), 100, np.uint8))


def png_b64() -> str:
    return base64.b64encode(cv2.imencode(".png", np.full((H, W, 3), 100, np.uint8))[1].tobytes()).decode()


def coco(
    tmp_path: Path, *, image: dict | None = None, ann: dict | None = None, cat: dict | None = None
) -> Dataset:
    """One image, one good square (id 1) and one annotation (id 2) and category changed as given."""
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H, **(image or {})}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [SQUARE]},
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [SQUARE], **(ann or {})},
        ],
        "categories": [{"id": 1, "name": "bubble", **(cat or {})}],
    }
    (tmp_path / "annotations.json").write_text(json.dumps(doc))
    return load_dataset(tmp_path / "annotations.json", allow_empty=True)


def problems(ds: Dataset) -> list[str]:
    """The problems without the file name."""
    return [p.split(": ", 1)[1] for p in ds.problems]


def test_coco_rle_size_with_one_number(tmp_path: Path) -> None:  # was IndexError
    ds = coco(tmp_path, ann={"segmentation": {"size": [H], "counts": [W * H]}})
    assert problems(ds) == ["annotation id 2 (image 'a.png'): RLE needs 'size' [h, w] and 'counts'; skipped"]
    assert ds.num_instances == 1


def test_coco_rle_counts_with_infinity(tmp_path: Path) -> None:  # was OverflowError
    ds = coco(tmp_path, ann={"segmentation": {"size": [H, W], "counts": [10, float("inf")]}})
    assert problems(ds) == [
        (
            "annotation id 2 (image 'a.png'): RLE counts are corrupt "
            "(cannot convert float infinity to integer); skipped"
        )
    ]


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_coco_declared_width_not_finite_is_ignored(tmp_path: Path, value: float) -> None:  # was OverflowError
    ds = coco(tmp_path, image={"width": value})
    assert ds.problems == [] and (ds.images[0].width, ds.images[0].height) == (W, H)


def test_coco_ids_that_are_objects_or_lists(tmp_path: Path) -> None:  # each was TypeError: unhashable
    assert problems(coco(tmp_path, image={"id": {}})) == [
        "images[0]: needs an 'id' and a 'file_name'; skipped",
        "annotation id 1: image id 1 is not in 'images'; skipped",
        "annotation id 2: image id 1 is not in 'images'; skipped",
    ]
    ds = coco(tmp_path, ann={"image_id": [1]})
    assert (
        problems(ds) == ["annotation id 2: image id [1] is not in 'images'; skipped"]
        and ds.num_instances == 1
    )
    ds = coco(tmp_path, ann={"category_id": [1]})
    assert problems(ds) == ["annotation id 2 (image 'a.png'): category id [1] is not a known class; skipped"]
    ds = coco(tmp_path, ann={"id": [2]})
    assert ds.problems == [] and ds.num_instances == 2  # an odd annotation id alone loses nothing
    ds = coco(tmp_path, cat={"id": {"a": 1}})
    assert (
        problems(ds)[0] == "category {'id': {'a': 1}, 'name': 'bubble'}: needs an 'id' and a 'name'; skipped"
    )


def test_coco_supercategory_that_is_a_list(tmp_path: Path) -> None:  # was TypeError: unhashable
    ds = coco(tmp_path, cat={"supercategory": ["things"]})
    assert ds.classes == ["bubble"] and ds.num_instances == 2


def labelme(tmp_path: Path, shapes: Any, **doc: Any) -> Dataset:
    body = {"version": "5.4.1", "shapes": shapes, "imagePath": "a.png", "imageData": None, **doc}
    (tmp_path / "a.json").write_text(json.dumps(body))
    return load_dataset(tmp_path / "a.json", "labelme", allow_empty=True)


def tri(**over: Any) -> dict[str, Any]:
    return {"label": "bubble", "shape_type": "polygon", "points": [[5, 5], [20, 5], [20, 20]], **over}


def test_labelme_group_id_that_is_a_list(tmp_path: Path) -> None:  # was TypeError: unhashable
    ds = labelme(tmp_path, [tri(group_id=[1]), tri(group_id=[1])])
    assert problems(ds) == [
        "shapes[0] ('bubble', polygon): group_id [1] is not a number; drawn as an instance of its own",
        "shapes[1] ('bubble', polygon): group_id [1] is not a number; drawn as an instance of its own",
    ]
    assert ds.num_instances == 2


def test_labelme_shapes_that_is_a_number(tmp_path: Path) -> None:  # was TypeError: not iterable
    ds = labelme(tmp_path, 5)
    assert problems(ds) == ["not a labelme file (no 'shapes' list); skipped"]


def test_labelme_image_path_too_long_for_the_file_system(tmp_path: Path) -> None:  # was OSError ENAMETOOLONG
    name = "x" * 300 + ".png"
    ds = labelme(tmp_path, [tri()], imagePath=name)
    assert len(ds.problems) == 1 and "image file not found (looked in " in ds.problems[0]
    # with the image embedded, it is written to the cache under a name the file system takes
    ds = labelme(tmp_path, [tri()], imagePath=name, imageData=png_b64())
    assert ds.problems == [] and ds.num_instances == 1 and len(ds.images[0].file.name) <= 84


def test_labelme_image_data_that_is_not_a_string(tmp_path: Path) -> None:  # was TypeError: not subscriptable
    ds = labelme(tmp_path, [tri()], imagePath="missing.png", imageData=5)
    assert problems(ds) == ["image 'missing.png': " + EMBEDDED_UNDECODABLE]


@pytest.mark.parametrize("points", [[[float("inf"), 1], [3, 3]], [1, 2, 3, 4]], ids=["infinite", "flat"])
def test_labelme_mask_corner_infinite_or_flat(
    tmp_path: Path, points: list
) -> None:  # OverflowError, TypeError
    ds = labelme(tmp_path, [{"label": "bubble", "shape_type": "mask", "points": points, "mask": PNG_MASK}])
    if points[0] == 1:  # [1, 2, 3, 4] reads as the corners (1, 2), (3, 4): a 4x4 mask at (1, 2)
        assert ds.problems == [] and ds.images[0].annotations[0].bbox == (1.0, 2.0, 4.0, 4.0)
    else:
        assert problems(ds) == ["shapes[0] ('bubble', mask): mask shape has no decodable 'mask' PNG; skipped"]


def via(tmp_path: Path, doc: Any) -> Dataset:
    (tmp_path / "via.json").write_text(json.dumps(doc))
    return load_dataset(tmp_path / "via.json", "via", allow_empty=True)


def rect_region(**over: Any) -> dict[str, Any]:
    shape = {"name": "rect", "x": 5, "y": 5, "width": 10, "height": 10}
    return {"shape_attributes": shape, "region_attributes": {"type": "bubble"}, **over}


def entry(*regions: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"a.png1": {"filename": "a.png", "regions": list(regions), **over}}


def test_via_shape_attributes_that_is_a_list(tmp_path: Path) -> None:  # was AttributeError
    ds = via(tmp_path, entry(rect_region(), rect_region(shape_attributes=[1])))
    assert problems(ds) == [
        "regions[1] (image 'a.png'): 'shape_attributes' is not an object (it is [1]); skipped"
    ]
    assert ds.num_instances == 1


@pytest.mark.parametrize("attrs", [["type"], 1.5], ids=["list", "number"])
def test_via_region_attributes_not_an_object(tmp_path: Path, attrs: Any) -> None:  # AttributeError, TypeError
    ds = via(tmp_path, entry(rect_region(), rect_region(region_attributes=attrs)))
    assert problems(ds) == ["regions[1] (image 'a.png'): no class in attribute 'type' (value None); skipped"]
    assert ds.classes == ["bubble"] and ds.num_instances == 1


@pytest.mark.parametrize(
    "defs", [[1], {"region": [1]}, {"region": {"type": [1]}}], ids=["list", "region", "attr"]
)
def test_via_attribute_definitions_not_objects(tmp_path: Path, defs: Any) -> None:  # was AttributeError
    ds = via(tmp_path, {"_via_img_metadata": entry(rect_region()), "_via_attributes": defs})
    assert ds.classes == ["bubble"] and ds.num_instances == 1


def test_via_base64_image_data_that_is_a_number(tmp_path: Path) -> None:  # was TypeError: not subscriptable
    doc = {"x": {"filename": "missing.png", "regions": [rect_region()], "base64_img_data": 7}}
    ds = via(tmp_path, doc)
    assert problems(ds) == ["image 'missing.png': " + EMBEDDED_UNDECODABLE]


def cvat(tmp_path: Path, shape: str) -> Dataset:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version>'
        f'<image id="0" name="a.png" width="{W}" height="{H}">'
        '<polygon label="bubble" points="5,5;20,5;20,20;5,20"/>'
        f"{shape}</image></annotations>"
    )
    (tmp_path / "annotations.xml").write_text(xml)
    return load_dataset(tmp_path / "annotations.xml", allow_empty=True)


@pytest.mark.parametrize(
    "shape",
    [
        '<mask label="bubble" rle="inf" left="0" top="0" width="2" height="2"/>',
        '<mask label="bubble" rle="1, 3" left="inf" top="0" width="2" height="2"/>',
    ],
    ids=["rle", "box"],
)
def test_cvat_mask_with_infinity(tmp_path: Path, shape: str) -> None:  # was a raw OverflowError
    ds = cvat(tmp_path, shape)
    assert ds.num_instances == 1 and len(ds.problems) == 1
    assert ds.problems[0].split(": ", 1)[1].startswith("mask 1 'bubble' (image id 0 ('a.png')): ")
