"""Drawing with occlusion: visible masks are exact, disjoint, and encode to the same RLE as maskrt.rle."""

from __future__ import annotations

import numpy as np
import pytest

from maskrt import rle
from maskrt.train.synth import shapes
from maskrt.train.synth.render import Canvas, SceneObject, Shading, crop_rle


@pytest.mark.parametrize("seed", range(5))
def test_crop_rle_matches_full_mask_encoding(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(5, 60)), int(rng.integers(5, 60))
    full = np.zeros((h, w), bool)
    x0, y0 = int(rng.integers(0, w - 2)), int(rng.integers(0, h - 2))
    ch, cw = int(rng.integers(1, h - y0 + 1)), int(rng.integers(1, w - x0 + 1))
    crop = rng.uniform(size=(ch, cw)) < 0.5
    full[y0 : y0 + ch, x0 : x0 + cw] = crop
    assert crop_rle(crop, x0, y0, h, w) == rle.encode(full)


def test_crop_rle_mask_touching_first_and_last_pixel() -> None:
    full = np.ones((4, 3), bool)
    assert crop_rle(full, 0, 0, 4, 3) == rle.encode(full)


def _disc(cx: float, cy: float, r: float, cat: str | None = "bubble", uid: int = 0) -> SceneObject:
    return SceneObject([shapes.blob(cx, cy, r, r)], Shading("flat", interior=50.0), cat, uid=uid)


def _alone(obj: SceneObject, shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    cv = Canvas(np.full(shape, 200, np.float32))
    cv.draw(obj, np.random.default_rng(0))
    (inst,) = cv.instances(min_area=1)
    return rle.decode(inst.rle)


def test_later_objects_occlude_earlier_ones() -> None:
    rng = np.random.default_rng(0)
    back, front = _disc(25, 32, 12, uid=1), _disc(38, 32, 12, uid=2)
    cv = Canvas(np.full((64, 64), 200, np.float32))
    cv.draw(back, rng)
    cv.draw(front, rng)
    a, b = cv.instances(min_area=1)
    ma, mb = rle.decode(a.rle), rle.decode(b.rle)
    assert (a.uid, b.uid) == (1, 2)
    # the front disc keeps its whole shape; the back one is exactly its own shape minus the front one
    assert np.array_equal(mb, _alone(front))
    assert np.array_equal(ma, _alone(back) & ~mb)
    assert 0 < a.area < b.area
    assert a.area == int(ma.sum()) and b.area == int(mb.sum())
    assert abs(b.area - np.pi * 12**2) < 0.15 * np.pi * 12**2


def test_occluder_hides_instances_without_becoming_one() -> None:
    rng = np.random.default_rng(0)
    cv = Canvas(np.full((64, 64), 200, np.float32))
    cv.draw(_disc(32, 40, 14), rng)
    heater = np.array([[-5, 44.0], [70, 44.0], [70, 70], [-5, 70]])
    cv.draw(SceneObject([heater], Shading("flat", interior=30.0), None), rng)
    (inst,) = cv.instances(min_area=1)
    m = rle.decode(inst.rle)
    assert not m[44:].any()
    _, y, _, h = inst.bbox
    assert y + h == 44  # truncated exactly at the heater edge


def test_small_visible_remnants_are_dropped() -> None:
    rng = np.random.default_rng(0)
    cv = Canvas(np.full((64, 64), 200, np.float32))
    cv.draw(_disc(30, 30, 6), rng)
    cv.draw(_disc(31, 30, 8), rng)  # covers all but a sliver of the first
    insts = cv.instances(min_area=8)
    assert len(insts) == 1 and insts[0].area > 100


def test_objects_outside_the_frame_are_clipped_not_dropped() -> None:
    rng = np.random.default_rng(0)
    cv = Canvas(np.full((32, 32), 200, np.float32))
    cv.draw(_disc(0, 16, 8), rng)
    cv.draw(_disc(100, 16, 8), rng)
    (inst,) = cv.instances(min_area=1)
    whole = _alone(_disc(20, 16, 8), (32, 64))
    assert np.array_equal(rle.decode(inst.rle), whole[:, 20:52])
    assert inst.bbox[0] == 0


def test_motion_blur_smears_the_object_and_keeps_the_mask_on_its_core() -> None:
    rng = np.random.default_rng(0)
    cv = Canvas(np.full((64, 64), 200, np.float32))
    cv.draw(SceneObject([shapes.blob(32, 32, 8, 8)], Shading("flat", interior=20.0), "bubble", motion=(0, 12)), rng)
    (inst,) = cv.instances(min_area=1)
    x, y, w, h = inst.bbox
    m = rle.decode(inst.rle)
    assert h >= w
    assert cv.image[m].mean() < 120 < cv.image[~m].mean()
    # the streak darkens pixels above and below the mask, but not beside it
    assert cv.image[y - 3, x + w // 2] < 190 and cv.image[y + h + 2, x + w // 2] < 190
    assert cv.image[y + h // 2, x - 3] > 195
