"""Synthetic datasets: the acceptance check (200 images per scene, imported back), determinism, classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskrt import rle
from maskrt.errors import MaskrtError
from maskrt.train.data import load_dataset
from maskrt.train.synth import CLASSES, generate_dataset

SCENES = ["boiling-side", "boiling-bottom", "droplets", "taylor"]


def _check_image_annotations(ds_image, seen_masks: list[np.ndarray] | None = None) -> int:
    """Every mask non-empty and inside the image, every box tight, no two masks overlapping; returns the count."""
    h, w = ds_image.height, ds_image.width
    union = np.zeros((h, w), np.int32)
    for a in ds_image.annotations:
        m = a.mask(h, w)
        assert m.any(), f"{ds_image.file}: empty mask"
        ys, xs = np.nonzero(m)
        tight = (float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min()))
        assert tuple(a.bbox) == tight, f"{ds_image.file}: box {a.bbox} is not tight ({tight})"
        union += m
    assert union.max() <= 1, f"{ds_image.file}: visible masks overlap"
    return len(ds_image.annotations)


@pytest.mark.parametrize(
    "scene, size",
    [*((s, 96) for s in SCENES), *(pytest.param(s, 512, marks=pytest.mark.slow) for s in SCENES)],
)
def test_two_hundred_images_per_scene_import_back_clean(tmp_path: Path, scene: str, size: int) -> None:
    ann = generate_dataset(tmp_path / scene, images=200, size=size, scene=scene, seed=7)
    ds = load_dataset(ann)
    assert ds.problems == []
    assert len(ds.images) == 200
    assert ds.classes == CLASSES
    counts = ds.class_counts()
    expected = "droplet" if scene == "droplets" else "bubble"
    other = "bubble" if scene == "droplets" else "droplet"
    assert counts[other] == 0 and counts[expected] >= 200
    total = sum(_check_image_annotations(im) for im in ds.images)
    assert total == ds.num_instances
    assert all(im.file.exists() and im.file.parent == tmp_path / scene for im in ds.images)
    raw = json.loads(ann.read_text())
    for entry in raw["annotations"]:
        assert isinstance(entry["segmentation"]["counts"], str)  # compressed RLE
        assert entry["area"] == rle.area(entry["segmentation"]) >= 8


def test_same_seed_gives_byte_identical_annotations_and_images(tmp_path: Path) -> None:
    a = generate_dataset(tmp_path / "a", images=6, size=128, scene="mixed", seed=3)
    b = generate_dataset(tmp_path / "b", images=6, size=128, scene="mixed", seed=3)
    c = generate_dataset(tmp_path / "c", images=6, size=128, scene="mixed", seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    for i in range(6):
        assert (a.parent / f"{i:06d}.jpg").read_bytes() == (b.parent / f"{i:06d}.jpg").read_bytes()


def test_mixed_holds_both_classes_and_records_the_scene_per_image(tmp_path: Path) -> None:
    ann = generate_dataset(tmp_path, images=24, size=96, scene="mixed", seed=0, image_format="png")
    raw = json.loads(ann.read_text())
    scenes = {im["scene"] for im in raw["images"]}
    assert scenes == set(SCENES)
    assert [c["name"] for c in raw["categories"]] == CLASSES
    used = {a["category_id"] for a in raw["annotations"]}
    assert used == {1, 2}
    assert raw["info"]["images_per_scene"] == {s: sum(im["scene"] == s for im in raw["images"]) for s in SCENES}
    assert all(im["file_name"].endswith(".png") for im in raw["images"])


def test_boiling_side_at_512_has_small_and_large_bubbles(tmp_path: Path) -> None:
    ann = generate_dataset(tmp_path, images=3, size=512, scene="boiling-side", seed=1)
    raw = json.loads(ann.read_text())
    sides = [max(a["bbox"][2], a["bbox"][3]) for a in raw["annotations"]]
    assert any(5 <= s <= 20 for s in sides), "no small (5-20 px) bubbles"
    assert any(s >= 50 for s in sides), "no large bubbles"


def test_droplet_sizes_span_two_orders_of_magnitude(tmp_path: Path) -> None:
    ann = generate_dataset(tmp_path, images=2, size=512, scene="droplets", seed=2)
    raw = json.loads(ann.read_text())
    areas = np.array([a["area"] for a in raw["annotations"]])
    assert np.sqrt(areas.max() / areas.min()) >= 20  # diameter ratio
    assert len(areas) >= 100


@pytest.mark.parametrize(
    "kwargs, word",
    [({"scene": "lava"}, "unknown scene"), ({"size": 8}, "--size"), ({"images": 0}, "--images"),
     ({"image_format": "gif"}, "jpg or png"), ({"seed": -1}, "--seed"), ({"workers": 0}, "--workers")],
)
def test_bad_options_raise_one_line_errors(tmp_path: Path, kwargs: dict, word: str) -> None:
    args = {"images": 1, "size": 64, **kwargs}
    with pytest.raises(MaskrtError, match=word):
        generate_dataset(tmp_path, **args)


def test_mixed_favours_bubble_scenes_as_documented() -> None:
    from maskrt.train.synth.scenes import MIXED_WEIGHTS, pick_scene

    rng = np.random.default_rng(0)
    picks = [pick_scene("mixed", rng) for _ in range(4000)]
    for name, weight in MIXED_WEIGHTS.items():
        assert abs(picks.count(name) / len(picks) - weight) < 0.03
    assert pick_scene("taylor", rng) == "taylor"


def test_parallel_workers_write_the_same_dataset(tmp_path: Path) -> None:
    one = generate_dataset(tmp_path / "one", images=8, size=64, scene="mixed", seed=5)
    two = generate_dataset(tmp_path / "two", images=8, size=64, scene="mixed", seed=5, workers=2)
    assert one.read_bytes() == two.read_bytes()
    assert (one.parent / "000007.jpg").read_bytes() == (two.parent / "000007.jpg").read_bytes()
