"""The one ``box_iou`` (tracker and export parity): values, and the empty-box case decided once."""

from __future__ import annotations

import numpy as np
import pytest

from maskrt.export import parity
from maskrt.runtime.boxes import box_iou
from maskrt.runtime.stream import tracking


def test_box_iou_values() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    assert iou[0].tolist() == pytest.approx([1.0, 1 / 3, 0.0])


def test_empty_boxes_match_only_themselves() -> None:
    a = np.array([[5, 5, 5, 5], [0, 0, 10, 0]])
    b = np.array([[5, 5, 5, 5], [0, 0, 10, 0], [7, 7, 7, 7], [0, 0, 10, 10]])
    assert box_iou(a, b).tolist() == [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]


def test_no_boxes_give_an_empty_matrix() -> None:
    assert box_iou(np.zeros((0, 4)), np.array([[0, 0, 1, 1]])).shape == (0, 1)
    assert box_iou(np.array([[0, 0, 1, 1]]), np.zeros((0, 4))).shape == (1, 0)


def test_tracker_and_parity_use_the_same_function() -> None:
    assert tracking.box_iou is parity.box_iou is box_iou
