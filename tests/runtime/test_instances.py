"""Instances: filtering keeps fields aligned, masks/RLE/polygons agree with each other."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from maskrt import rle as rle_codec
from maskrt.runtime import Instances


def scene() -> Instances:
    masks = np.zeros((3, 60, 80), bool)
    cv2.circle(masks[0].view(np.uint8), (20, 20), 10, 1, -1)
    cv2.rectangle(masks[1].view(np.uint8), (40, 10), (70, 30), 1, -1)
    cv2.ellipse(masks[2].view(np.uint8), (30, 45), (20, 8), 0, 0, 360, 1, -1)
    return Instances.from_masks(masks, scores=np.array([0.9, 0.4, 0.7]), class_ids=np.array([0, 1, 0]),
                                class_names=["bubble", "droplet"])


def test_boolean_slice_and_int_indexing_keep_fields_aligned() -> None:
    inst = scene()
    full = inst.masks
    kept = inst[inst.scores > 0.5]
    assert len(kept) == 2
    assert kept.scores.tolist() == pytest.approx([0.9, 0.7])
    assert kept.class_ids.tolist() == [0, 0]
    np.testing.assert_array_equal(kept.masks, full[[0, 2]])
    np.testing.assert_array_equal(inst[1:].boxes, inst.boxes[1:])
    np.testing.assert_array_equal(inst[-1].mask(0), full[2])
    np.testing.assert_array_equal(inst[[2, 0]].areas, full[[2, 0]].sum(axis=(1, 2)))
    assert len(inst[inst.scores > 5]) == 0 and inst[inst.scores > 5].masks.shape == (0, 60, 80)
    with pytest.raises(IndexError):
        inst[3]
    with pytest.raises(IndexError):
        inst[np.array([True, False])]


def test_areas_label_map_and_boxes() -> None:
    inst = scene()
    np.testing.assert_array_equal(inst.areas, inst.masks.sum(axis=(1, 2)))
    lm = inst.label_map()
    for i in range(len(inst)):
        assert ((lm == i + 1) <= inst.mask(i)).all()
    np.testing.assert_allclose(inst.boxes[1], [40, 10, 71, 31])
    assert inst.labels == ["bubble", "droplet", "bubble"]


def test_label_map_gives_overlaps_to_the_higher_score() -> None:
    masks = np.zeros((2, 10, 10), bool)
    masks[0, 2:8, 2:8] = True
    masks[1, 4:10, 4:10] = True
    inst = Instances.from_masks(masks, scores=np.array([0.3, 0.9]))
    assert inst.label_map()[5, 5] == 2


def test_rle_round_trip_and_coco_results() -> None:
    inst = scene()
    for i in range(len(inst)):
        rle = inst.rle(i)
        assert rle["size"] == [60, 80]
        np.testing.assert_array_equal(rle_codec.decode(rle), inst.mask(i))
    mask_utils = pytest.importorskip("pycocotools.mask")
    res = inst.to_coco_results(image_id=7)
    assert [r["category_id"] for r in res] == [1, 2, 1]
    for i, r in enumerate(res):
        r_bytes = dict(r["segmentation"], counts=r["segmentation"]["counts"].encode())
        np.testing.assert_array_equal(mask_utils.decode(r_bytes).astype(bool), inst.mask(i))
        assert r["bbox"][2] == pytest.approx(inst.boxes[i, 2] - inst.boxes[i, 0])
        assert r["image_id"] == 7


def test_polygons_fill_back_to_the_mask() -> None:
    inst = scene()
    for i in range(len(inst)):
        polys = inst.polygons(i)
        canvas = np.zeros((60, 80), np.uint8)
        cv2.fillPoly(canvas, [p.round().astype(np.int32) for p in polys], 1)
        np.testing.assert_array_equal(canvas.astype(bool), inst.mask(i))
        simple = inst.polygons(i, epsilon=1.0)
        assert len(simple[0]) <= len(polys[0])
    assert len(inst.polygons()) == 3


def test_to_dicts() -> None:
    d = scene().to_dicts()
    assert [x["class_name"] for x in d] == ["bubble", "droplet", "bubble"]
    assert d[1]["box"] == [40.0, 10.0, 71.0, 31.0]
    assert d[1]["area_px"] == 31 * 21


def test_edge_polygons_trace_the_exact_pixel_boundary() -> None:
    from maskrt.runtime.labels import edge_polygons

    mask = np.zeros((20, 30), bool)
    mask[2:6, 3:10] = True
    mask[12, 20] = True
    polys = edge_polygons(mask, x0=100, y0=50, epsilon=0)
    assert [abs(cv2.contourArea(p)) for p in polys] == [28.0, 1.0]
    assert polys[1].min(axis=0).tolist() == [120.0, 62.0] and polys[1].max(axis=0).tolist() == [121.0, 63.0]
    disc = np.zeros((80, 80), np.uint8)
    cv2.circle(disc, (40, 40), 15, 1, -1)
    simple = edge_polygons(disc.astype(bool))
    assert abs(cv2.contourArea(simple[0])) == pytest.approx(disc.sum(), rel=0.01)


def test_rle_from_crops_equals_encoding_the_full_mask() -> None:
    rng = np.random.default_rng(0)
    for _ in range(150):
        h, w = (int(v) for v in rng.integers(1, 25, 2))
        masks = np.zeros((3, h, w), bool)
        for k in range(2):
            x0, x1 = sorted(int(v) for v in rng.integers(0, w + 1, 2))
            y0, y1 = sorted(int(v) for v in rng.integers(0, h + 1, 2))
            masks[k, y0:y1, x0:x1] = rng.random((y1 - y0, x1 - x0)) > 0.3
        masks[2] = rng.random((h, w)) > 0.5  # touches every border
        inst = Instances.from_masks(masks)
        for i in range(3):
            assert inst.rle(i, compressed=False) == rle_codec.encode(masks[i], compressed=False)
            assert inst.rle(i) == rle_codec.encode(masks[i])
