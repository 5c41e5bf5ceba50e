"""COCO scoring: perfect predictions score 1, displaced ones less, per class; the sampler resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_util

from maskrt.train.data.record import Annotation, Dataset, ImageRecord
from maskrt.train.evaluate import coco_metrics, format_metrics
from maskrt.train.sampler import ResumableBatchSampler


def _dataset() -> Dataset:
    images = []
    for i in range(3):
        anns = []
        for k in range(4):
            x, y, r = 20 + 40 * k, 30 + 25 * i, 8 + 2 * k
            poly = np.array([[x - r, y - r], [x + r, y - r], [x + r, y + r], [x - r, y + r]], dtype=float)
            anns.append(Annotation(k % 2, [poly]))
        images.append(ImageRecord(f"im{i}.png", 200, 120, anns, i + 1))
    return Dataset(["bubble", "droplet"], images)


def _results(ds: Dataset, shift: int = 0, drop_class: int | None = None) -> list[dict]:
    out = []
    for i, im in enumerate(ds.images):
        for a in im.annotations:
            if a.category == drop_class:
                continue
            m = np.roll(a.mask(im.height, im.width), shift, axis=1).astype(np.uint8)
            rle = mask_util.encode(np.asfortranarray(m))
            rle["counts"] = rle["counts"].decode()
            x, y, w, h = a.compute_bbox(im.height, im.width)
            out.append(
                {
                    "image_id": i + 1,
                    "category_id": a.category + 1,
                    "bbox": [x + shift, y, w, h],
                    "score": 0.9,
                    "segmentation": rle,
                }
            )
    return out


def test_perfect_predictions_score_one() -> None:
    ds = _dataset()
    m = coco_metrics(ds, _results(ds))
    for t in ("bbox", "segm"):
        assert m[t]["AP"] == pytest.approx(1.0) and m[t]["AP50"] == pytest.approx(1.0)
    assert m["per_class"]["bubble"]["segm"] == pytest.approx(1.0)
    assert m["per_class"]["droplet"]["instances"] == 6
    assert "mask" in format_metrics(m)


def test_displaced_and_missing_predictions_score_lower() -> None:
    ds = _dataset()
    shifted = coco_metrics(ds, _results(ds, shift=4))
    assert 0 < shifted["segm"]["AP"] < 0.9 and shifted["segm"]["AP50"] == pytest.approx(1.0)
    half = coco_metrics(ds, _results(ds, drop_class=1))
    assert half["per_class"]["bubble"]["segm"] == pytest.approx(1.0)
    assert half["per_class"]["droplet"]["segm"] == pytest.approx(0.0)
    assert half["segm"]["AP"] == pytest.approx(0.5)
    # an image with more objects than COCO's 100 detections: the model's own limit keeps recall whole
    many = Dataset(
        ["bubble"],
        [
            ImageRecord(
                "big.png",
                400,
                400,
                [
                    Annotation(0, [np.array([[x, y], [x + 6, y], [x + 6, y + 6], [x, y + 6]], dtype=float)])
                    for x in range(5, 395, 20)
                    for y in range(5, 145, 20)
                ],
                1,
            )
        ],
    )
    assert many.num_instances == 140
    capped = coco_metrics(many, _results(many), max_dets=100)
    whole = coco_metrics(many, _results(many), max_dets=200)
    assert capped["segm"]["AP50"] < 0.8 and whole["segm"]["AP50"] == pytest.approx(1.0)
    assert whole["max_dets"] == 200
    empty = coco_metrics(ds, [])
    assert empty["segm"]["AP"] == 0.0 and empty["detections"] == 0


def test_sampler_resumes_on_the_same_batch_and_ranks_split_epochs() -> None:
    full = list(ResumableBatchSampler(10, 3, seed=5, start=0, stop=12))
    tail = list(ResumableBatchSampler(10, 3, seed=5, start=7, stop=12))
    assert tail == full[7:] and len(full) == 12
    epoch0 = [i for b in full[:4] for i, _ in b]
    assert set(epoch0) == set(range(10))  # every image once per epoch (padded by wrapping)
    r0 = [i for b in ResumableBatchSampler(10, 2, 5, 0, 3, rank=0, world_size=2) for i, _ in b]
    r1 = [i for b in ResumableBatchSampler(10, 2, 5, 0, 3, rank=1, world_size=2) for i, _ in b]
    assert set(r0) | set(r1) == set(range(10)) and len(set(r0) & set(r1)) <= 2
    seeds = [s for b in full for _, s in b]
    assert len(set(seeds)) == len(seeds)
