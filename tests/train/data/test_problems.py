"""Every kind of bad annotation is fixed or skipped with a message naming the file and the item; nothing else is lost."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from maskrt import rle as rle_codec
from maskrt.errors import MaskrtError
from maskrt.train.data import Dataset, load_dataset

W, H = 100, 80
SQUARE = [10, 10, 30, 10, 30, 30, 10, 30]
TRIANGLE = [50, 10, 70, 10, 60, 40]


def good_coco() -> dict[str, Any]:
    """Two images, three good instances (ids 1-3)."""
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": W, "height": H},
            {"id": 2, "file_name": "b.png", "width": W, "height": H},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [SQUARE], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [TRIANGLE], "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 1, "segmentation": [SQUARE], "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "bubble", "supercategory": "none"}],
    }


def write(folder: Path, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a.png", "b.png"):
        if not (folder / name).exists():
            cv2.imwrite(str(folder / name), np.full((H, W, 3), 128, np.uint8))
    (folder / "annotations.json").write_text(json.dumps(data))
    return folder


def with_ann(tmp_path: Path, **fields: Any) -> Dataset:
    """Load the good dataset plus annotation id 17 on image 1 with ``fields``."""
    data = good_coco()
    data["annotations"].append({"id": 17, "image_id": 1, "category_id": 1, "iscrowd": 0, **fields})
    return load_dataset(write(tmp_path, data))


def good_ids_survive(ds: Dataset) -> None:
    sources = " | ".join(a.source for im in ds.images for a in im.annotations)
    for i in (1, 2, 3):
        assert f"annotation id {i} " in sources
    assert len(ds.images) == 2


def test_polygon_with_two_points(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=[[5, 5, 20, 20]])
    assert ds.problems == [
        "annotations.json: annotation id 17 (image 'a.png'): polygon has 2 points; skipped"
    ]
    assert ds.num_instances == 3
    good_ids_survive(ds)


def test_zero_area_polygon(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=[[5, 5, 10, 10, 20, 20]])
    assert ds.problems == [
        "annotations.json: annotation id 17 (image 'a.png'): polygon has zero area; skipped"
    ]
    assert ds.num_instances == 3
    good_ids_survive(ds)


def test_points_outside_the_image_are_clipped(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=[[80, 60, 120, 60, 120, 100, 80, 100]])
    assert ds.problems == [
        (
            "annotations.json: annotation id 17 (image 'a.png'): 3 of 4 polygon points outside the 100x80 image; "
            "clipped to the image"
        )
    ]
    assert ds.num_instances == 4
    good_ids_survive(ds)
    clipped = next(a for a in ds.images[0].annotations if "id 17" in a.source)
    poly = clipped.polygons[0]
    assert poly[:, 0].max() == W and poly[:, 1].max() == H
    assert clipped.area(H, W) == 20 * 20
    assert clipped.bbox == (80.0, 60.0, 20.0, 20.0)


def test_polygon_wholly_outside_is_skipped(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=[[120, 10, 140, 10, 140, 30]])
    assert ds.problems == [
        "annotations.json: annotation id 17 (image 'a.png'): polygon lies outside the 100x80 image; skipped"
    ]
    good_ids_survive(ds)


def test_odd_coordinate_count_drops_the_last(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=[[*SQUARE, 3]])
    assert ds.problems == [
        "annotations.json: annotation id 17 (image 'a.png'): polygon has an odd number of coordinates (9); last one dropped"
    ]
    assert ds.num_instances == 4


def test_box_only_annotation_is_skipped(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=[], bbox=[1, 2, 3, 4])
    assert ds.problems == [
        "annotations.json: annotation id 17 (image 'a.png'): has no segmentation (only a box?); skipped"
    ]
    good_ids_survive(ds)


def test_unknown_class(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=[SQUARE], category_id=9)
    assert ds.problems == [
        "annotations.json: annotation id 17 (image 'a.png'): category id 9 is not a known class; skipped"
    ]
    assert ds.classes == ["bubble"]
    good_ids_survive(ds)


def test_rle_of_the_wrong_size(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=rle_codec.encode(np.ones((10, 10), bool)))
    assert ds.problems == [
        "annotations.json: annotation id 17 (image 'a.png'): RLE size 10x10 (h x w) does not match the image's 80x100; skipped"
    ]
    good_ids_survive(ds)


def test_corrupt_rle_counts(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation={"size": [H, W], "counts": [5, 5]})
    assert len(ds.problems) == 1
    assert ds.problems[0].startswith(
        "annotations.json: annotation id 17 (image 'a.png'): RLE counts are corrupt"
    )
    good_ids_survive(ds)


def test_rle_compressed_and_uncompressed_crowd_are_kept(tmp_path: Path) -> None:
    m = np.zeros((H, W), bool)
    m[50:60, 40:70] = True
    data = good_coco()
    data["annotations"] += [
        {"id": 17, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": rle_codec.encode(m)},
        {
            "id": 18,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 1,
            "segmentation": rle_codec.encode(m, compressed=False),
        },
    ]
    ds = load_dataset(write(tmp_path, data))
    assert ds.problems == []
    extra = [a for im in ds.images for a in im.annotations if a.rle is not None]
    assert [a.iscrowd for a in extra] == [False, True]
    assert all(a.area(H, W) == 300 and a.bbox == (40.0, 50.0, 30.0, 10.0) for a in extra)


def test_missing_image(tmp_path: Path) -> None:
    data = good_coco()
    data["images"].append({"id": 3, "file_name": "c.png", "width": W, "height": H})
    data["annotations"].append({"id": 17, "image_id": 3, "category_id": 1, "segmentation": [SQUARE]})
    ds = load_dataset(write(tmp_path, data))
    assert len(ds.problems) == 1
    assert ds.problems[0].startswith("annotations.json: image 'c.png': image file not found (looked in ")
    assert ds.problems[0].endswith("skipped with its 1 annotations")
    good_ids_survive(ds)


def test_unreadable_image(tmp_path: Path) -> None:
    data = good_coco()
    data["images"].append({"id": 3, "file_name": "c.png", "width": W, "height": H})
    data["annotations"].append({"id": 17, "image_id": 3, "category_id": 1, "segmentation": [SQUARE]})
    write(tmp_path, data)
    (tmp_path / "c.png").write_bytes(b"this is not a png")
    ds = load_dataset(tmp_path)
    assert ds.problems[0].startswith("annotations.json: image 'c.png': image file ")
    assert "cannot be read (corrupt or not an image); skipped" in ds.problems[0]
    good_ids_survive(ds)


def test_truncated_image_is_found_with_or_without_decode_images(tmp_path: Path) -> None:
    write(tmp_path, good_coco())
    _, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8))
    (tmp_path / "b.png").write_bytes(buf.tobytes()[:200])  # header intact, pixels cut off
    for decode in (False, True):  # every image is decoded at import: a good header is not enough
        ds = load_dataset(tmp_path, decode_images=decode)
        assert [p.split(": ")[1] for p in ds.problems] == ["image 'b.png'"] * 2
        assert "is truncated (its data stops after 200 bytes); skipped" in ds.problems[0]
        assert ds.num_instances == 2


def test_image_size_disagreeing_with_the_json_uses_the_real_size(tmp_path: Path) -> None:
    data = good_coco()
    data["images"][1]["width"] = 200
    ds = load_dataset(write(tmp_path, data))
    assert ds.problems == [
        "annotations.json: image 'b.png': image is 100x80 but the annotations say 200x80; used the real size"
    ]
    assert ds.images[1].width == W


def test_duplicate_image_id(tmp_path: Path) -> None:
    data = good_coco()
    data["images"].append({"id": 1, "file_name": "b.png", "width": W, "height": H})
    ds = load_dataset(write(tmp_path, data))
    assert ds.problems == [
        "annotations.json: image id 1 ('b.png'): duplicate image id, also 'a.png'; kept the first"
    ]
    good_ids_survive(ds)


def test_duplicate_annotation_id(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=[SQUARE], id=2)
    assert ds.problems == [
        "annotations.json: annotation id 2: duplicate annotation id; kept both (ids are renumbered on export)"
    ]
    assert ds.num_instances == 4


def test_annotation_of_an_unknown_image(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=[SQUARE], image_id=42)
    assert ds.problems == ["annotations.json: annotation id 17: image id 42 is not in 'images'; skipped"]
    good_ids_survive(ds)


def test_truncated_json_raises_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, good_coco())
    text = (tmp_path / "annotations.json").read_text()
    (tmp_path / "annotations.json").write_text(text[: len(text) // 2])
    with pytest.raises(MaskrtError, match=r"annotations\.json: the file looks truncated \(line 1 column \d+"):
        load_dataset(tmp_path / "annotations.json")


def test_nothing_usable_raises_and_allow_empty_returns_the_problems(tmp_path: Path) -> None:
    data = good_coco()
    for a in data["annotations"]:
        a["segmentation"] = [[1, 1, 2, 2]]
    write(tmp_path, data)
    with pytest.raises(
        MaskrtError, match=r"no usable instance \(2 images, 3 problems; first problem: annotations\.json"
    ):
        load_dataset(tmp_path)
    ds = load_dataset(tmp_path, allow_empty=True)
    assert ds.num_instances == 0 and len(ds.problems) == 3


def test_unused_parent_category_and_id_gaps(tmp_path: Path) -> None:
    data = good_coco()
    data["categories"] = [
        {"id": 0, "name": "things", "supercategory": "none"},
        {"id": 5, "name": "bubble", "supercategory": "things"},
        {"id": 9, "name": "drop", "supercategory": "things"},
    ]
    for a in data["annotations"]:
        a["category_id"] = 5
    data["annotations"][2]["category_id"] = 9
    ds = load_dataset(write(tmp_path, data))
    assert ds.classes == ["bubble", "drop"]
    assert ds.class_counts() == {"bubble": 2, "drop": 1}


# ---- the same checks reach the other formats, with their own item names ----


def test_labelme_unknown_label_and_broken_file(tmp_path: Path, fx: SimpleNamespace) -> None:
    imgs = fx.scene()
    fx.write_images(tmp_path, imgs)
    fx.write_labelme(tmp_path, imgs)
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\nbubble\n")
    text = (tmp_path / "b.json").read_text()
    (tmp_path / "b.json").write_text(text[:-40])
    ds = load_dataset(tmp_path)
    assert ds.classes == ["bubble"]
    name = tmp_path.name
    assert (
        f"{name}/a.json: shapes[1] ('drop', rectangle): label 'drop' is not in labels.txt (unknown class); skipped"
        in ds.problems
    )
    assert any(
        p.startswith(f"{name}/b.json: the file looks truncated") and p.endswith("; skipped")
        for p in ds.problems
    )
    assert len(ds.problems) == 3  # the rectangle, the mask, and b.json
    assert ds.num_instances == 3  # a.png: polygon, circle, the group


def test_labelme_two_point_polygon_inside_a_group(tmp_path: Path, fx: SimpleNamespace) -> None:
    imgs = fx.scene()[:1]
    fx.write_images(tmp_path, imgs)
    fx.write_labelme(tmp_path, imgs)
    doc = json.loads((tmp_path / "a.json").read_text())
    doc["shapes"][3]["points"] = doc["shapes"][3]["points"][:2]
    (tmp_path / "a.json").write_text(json.dumps(doc))
    ds = load_dataset(tmp_path / "a.json")
    assert ds.problems == [
        f"{tmp_path / 'a.json'}: shapes[3] ('bubble', polygon): polygon has 2 points; skipped"
    ]
    assert ds.num_instances == 5  # the group keeps its other polygon
    group = [a for a in ds.images[0].annotations if a.source.endswith("group 10 ('bubble')")]
    assert len(group) == 1 and len(group[0].polygons) == 1


def test_cvat_truncated_xml_and_unknown_label(tmp_path: Path, fx: SimpleNamespace) -> None:
    imgs = fx.scene()
    fx.write_images(tmp_path, imgs)
    xml = fx.write_cvat(tmp_path / "annotations.xml", imgs)
    text = xml.read_text()
    xml.write_text(
        text.replace(
            'label="drop" source="manual" occluded="0" z_order="0" xtl', 'label="foam" source="x" xtl'
        )
    )
    ds = load_dataset(xml)
    assert ds.problems == [
        f"{xml}: box 1 'foam' (image id 0 ('a.png')): label 'foam' is not among the task's labels (unknown class); skipped"
    ]
    assert ds.num_instances == 6
    xml.write_text(text[: len(text) // 2])
    with pytest.raises(
        MaskrtError, match=r"annotations\.xml: not well-formed XML, the file may be truncated"
    ):
        load_dataset(tmp_path)


def test_cvat_corrupt_mask_rle(tmp_path: Path, fx: SimpleNamespace) -> None:
    imgs = fx.scene()
    fx.write_images(tmp_path, imgs)
    xml = fx.write_cvat(tmp_path / "annotations.xml", imgs)
    xml.write_text(xml.read_text().replace('rle="', 'rle="5, '))
    ds = load_dataset(tmp_path)
    assert len(ds.problems) == 1
    assert ds.problems[0].startswith(
        "annotations.xml: mask 1 'drop' (image id 0 ('a.png')): mask rle is corrupt (runs cover"
    )
    assert ds.num_instances == 6


def test_via_region_without_class(tmp_path: Path, fx: SimpleNamespace) -> None:
    imgs = fx.scene()
    fx.write_images(tmp_path, imgs)
    via = fx.write_via(tmp_path / "via.json", imgs, 2)
    doc = json.loads(via.read_text())
    entry = next(iter(doc.values()))
    entry["regions"][0]["region_attributes"]["type"] = ""
    entry["regions"][1]["region_attributes"]["type"] = "foam"
    via.write_text(json.dumps(doc))
    ds = load_dataset(via)
    assert (
        f"{via}: regions[0] (image 'a.png'): no class in attribute 'type' (value ''); skipped" in ds.problems
    )
    assert ds.classes == ["bubble", "drop", "foam"]  # no options defined: every value is a class
    project = fx.write_via(tmp_path / "project.json", imgs, 2, project=True)
    doc = json.loads(project.read_text())
    next(iter(doc["_via_img_metadata"].values()))["regions"][1]["region_attributes"]["type"] = "foam"
    project.write_text(json.dumps(doc))
    ds = load_dataset(project)
    assert ds.problems == [
        f"{project}: regions[1] (image 'a.png'): class 'foam' is not one of the options of 'type' (unknown class); skipped"
    ]
    assert ds.num_instances == 4  # a: polygon, circle (rect skipped); b: ellipse, polygon


def test_sliver_thinner_than_a_pixel_is_skipped(tmp_path: Path) -> None:
    ds = with_ann(tmp_path, segmentation=[[40.1, 50.1, 80.1, 50.1, 80.1, 50.4, 40.1, 50.4]])
    assert ds.problems == [
        (
            "annotations.json: annotation id 17 (image 'a.png'): shape covers no pixel by half "
            "(thinner than a pixel, empty mask); skipped"
        )
    ]
    good_ids_survive(ds)
    thin_but_real = with_ann(tmp_path, segmentation=[[40, 50, 80, 50, 80, 51, 40, 51]])
    assert thin_but_real.problems == [] and thin_but_real.num_instances == 4
