"""benchmarks/real_footage.py: the scores a user reads (union IoU, void fraction, instance F1) on masks made here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np

from maskrt.runtime.instances import Instances

_spec = importlib.util.spec_from_file_location(
    "real_footage", Path(__file__).resolve().parents[2] / "benchmarks" / "real_footage.py"
)
rf = importlib.util.module_from_spec(_spec)
sys.modules["real_footage"] = rf  # dataclasses look their module up while the class is created
_spec.loader.exec_module(rf)


def _scene() -> np.ndarray:
    m = np.zeros((64, 64), np.uint8)
    for k in range(6):
        cv2.circle(m, (8 + 10 * k, 12), 3, 1, -1)  # 6 bubbles of 29 px
    cv2.rectangle(m, (5, 30), (40, 55), 1, -1)  # one vapour patch with a liquid island
    cv2.rectangle(m, (15, 38), (22, 45), 0, -1)
    m[60, 60] = 1  # a 1 px speck: under min_area, ignored
    return m.astype(bool)


def _as_instances(gt: np.ndarray, keep: slice = slice(None)) -> Instances:
    labels, areas = rf.components(gt)
    masks = np.stack([labels == k for k in range(1, len(areas))])[keep]
    return Instances.from_masks(masks, class_names=("bubble",))


def _score(gt: np.ndarray, inst: Instances) -> rf.BlockScore:
    return rf.score_block("test", [(Path("f.png"), gt, gt)], lambda img: inst, min_area=8, ceiling=False)


def test_perfect_prediction_scores_one() -> None:
    gt = _scene()
    s = _score(gt, _as_instances(gt))
    assert s.union_iou == 1.0 and s.void_abs_err == 0.0
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
    assert s.gt_instances_per_frame == 7  # the speck is not counted


def test_missing_instances_lower_recall_and_union() -> None:
    gt = _scene()
    s = _score(gt, _as_instances(gt, slice(0, 3)))  # 3 of the 6 bubbles, no patch
    assert s.precision == 1.0
    assert abs(s.recall - 3 / 7) < 1e-9
    assert s.union_iou < 0.2
    assert abs(s.void_abs_err - (gt.sum() - 3 * 29) / gt.size) < 1e-3


def test_merged_prediction_is_a_false_positive_and_three_misses() -> None:
    gt = np.zeros((32, 40), bool)
    for x in (4, 15, 26):
        gt[4:14, x : x + 10] = True  # three separate squares one pixel apart
    merged = np.zeros_like(gt)
    merged[4:14, 4:36] = True  # one prediction over all three
    s = _score(gt, Instances.from_masks(merged[None], class_names=("bubble",)))
    assert s.union_iou == 300 / 320
    assert (s.precision, s.recall) == (0.0, 0.0)  # IoU 100 / 320 with each square


def test_held_out_frames_are_never_trained_on(tmp_path: Path) -> None:
    data = tmp_path / "frames"
    for sub in ("images", "masks"):
        (data / sub).mkdir(parents=True)
    for n in range(180, 270, 2):
        for sub in ("images", "masks"):
            cv2.imwrite(str(data / sub / f"train_{n:04d}.png"), np.zeros((8, 8), np.uint8))
    n_train, n_val = rf.split_boiling(data, tmp_path / "out", {"isolated": (200, 248)}, guard=10)
    train = {rf.frame_number(p) for p in (tmp_path / "out/real-boiling-train/images").glob("*.png")}
    val = {rf.frame_number(p) for p in (tmp_path / "out/real-boiling-val/images").glob("*.png")}
    assert not train & set(range(190, 259)) and not val & set(range(200, 249))
    assert val == {190, 192, 194, 196, 198, 250, 252, 254, 256, 258}
    assert (n_train, n_val) == (len(train), len(val)) == (10, 10)
    isolated = {rf.frame_number(p) for p in (tmp_path / "out/real-boiling-train-isolated/images").glob("*.png")}
    assert isolated == {n for n in train if n <= rf.ISOLATED_LAST} == set(range(180, 189, 2))  # trained frames only
    assert {rf.frame_number(p) for p in (tmp_path / "out/real-boiling-train-isolated/masks").glob("*.png")} == isolated
