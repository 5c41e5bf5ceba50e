"""`maskrt demo` in a reduced form, and the ground-truth scoring it reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from maskrt import rle
from maskrt.demo import TruthScore, boxed, match_boxed, match_frame


def _disk(h: int, w: int, cy: int, cx: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_match_frame_counts_one_to_one_overlaps() -> None:
    a, b, c = _disk(64, 64, 20, 20, 8), _disk(64, 64, 44, 44, 8), _disk(64, 64, 20, 44, 6)
    shifted = np.roll(a, 2, axis=1)  # IoU ~0.8 with a
    assert match_frame([shifted, b], [a, b, c]) == 2
    assert match_frame([a, a], [a]) == 1  # a duplicate prediction cannot match twice
    assert match_frame([np.roll(a, 12, axis=1)], [a]) == 0  # IoU < 0.5
    assert match_frame([], [a]) == 0


def _match_full_frame(pred: list[np.ndarray], gt: list[np.ndarray], iou: float = 0.5) -> int:
    """The whole-frame IoU matrix, greedy best pair first: what the boxed matching must equal."""
    if not pred or not gt:
        return 0
    p = np.stack([m.ravel() for m in pred]).astype(np.float64)
    g = np.stack([m.ravel() for m in gt]).astype(np.float64)
    inter = p @ g.T
    ious = inter / np.maximum(p.sum(1)[:, None] + g.sum(1)[None, :] - inter, 1.0)
    n = 0
    while ious.size and ious.max() >= iou:
        i, j = np.unravel_index(int(np.argmax(ious)), ious.shape)
        ious[i, :] = ious[:, j] = -1.0
        n += 1
    return n


def test_boxed_matching_equals_the_whole_frame_iou_matrix() -> None:
    rng = np.random.default_rng(3)
    h, w = 48, 64
    for _ in range(40):
        gt = [_disk(h, w, *rng.integers(4, 44, 2), int(rng.integers(2, 9))) for _ in range(rng.integers(0, 6))]
        pred = [np.roll(m, tuple(rng.integers(-3, 4, 2)), axis=(0, 1)) for m in gt[: rng.integers(0, 6)]]
        pred += [_disk(h, w, *rng.integers(4, 44, 2), int(rng.integers(2, 9))) for _ in range(rng.integers(0, 3))]
        want = _match_full_frame(pred, gt)
        assert match_frame(pred, gt) == want
        assert match_boxed([b for b in map(boxed, pred) if b], [b for b in map(boxed, gt) if b]) == want
    (x0, y0, x1, y1), crop = boxed(_disk(h, w, 20, 30, 3))
    assert (x0, y0, x1, y1) == (27, 17, 34, 24) and crop.shape == (7, 7) and crop.sum() == _disk(h, w, 20, 30, 3).sum()
    assert boxed(np.zeros((4, 4), bool)) is None


def test_truth_score_precision_recall_and_void_error() -> None:
    h = w = 64
    gt_masks = [_disk(h, w, 20, 20, 8), _disk(h, w, 44, 44, 8)]
    gt = {"frames": [{"index": 0, "void_fraction": float(np.logical_or(*gt_masks).mean()),
                      "instances": [{"segmentation": rle.encode(m)} for m in gt_masks]}]}
    score = TruthScore(gt)
    pred = [gt_masks[0], _disk(h, w, 5, 60, 3)]  # one right, one false positive; one bubble missed
    score.add(0, pred, count=2, void_fraction=float(np.logical_or(*pred).mean()))
    score.add(5, pred, count=2, void_fraction=0.0)  # no ground truth for frame 5: ignored
    r = score.result()
    assert r["frames"] == 1
    assert r["precision"] == pytest.approx(0.5) and r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(0.5)
    assert r["count_mae"] == 0
    expected_void = abs(np.logical_or(*pred).mean() - np.logical_or(*gt_masks).mean())
    assert r["void_fraction_mae"] == pytest.approx(expected_void)


def test_demo_reduced_with_bundled_model(tmp_path: Path) -> None:
    from maskrt.runtime import BUNDLED_MODEL

    if not Path(BUNDLED_MODEL).is_file():
        pytest.skip(f"bundled model {BUNDLED_MODEL} is not in this checkout")
    from maskrt.cli import main

    out = tmp_path / "demo-out"
    code = main(["demo", "--out", str(out), "--frames", "6", "--size", "256", "--bench-iters", "2"])
    assert code == 0
    for name in ("annotated.mp4", "frames.csv", "instances.csv", "count_void.png", "sizes.png", "latency.png",
                 "bench.json", "bench.md", "summary.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    with open(out / "frames.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 6
    summary = json.loads((out / "summary.json").read_text())
    acc = summary["accuracy"]
    assert acc["frames"] == 6
    assert 0.0 <= acc["precision"] <= 1.0 and 0.0 <= acc["recall"] <= 1.0
    # the bundled model was trained on these scenes: it must find most bubbles
    assert acc["f1"] > 0.5, acc
    bench = json.loads((out / "bench.json").read_text())
    assert bench["rows"][0]["status"] == "ok"
