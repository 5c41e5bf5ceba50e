"""Overlay drawing: colours only where masks are, stable per track id, grey frames accepted."""

from __future__ import annotations

import numpy as np

from maskrt.runtime import Instances, draw_overlay
from maskrt.runtime.draw import colour


def two_squares() -> Instances:
    masks = np.zeros((2, 100, 100), bool)
    masks[0, 10:40, 10:40] = True
    masks[1, 50:90, 50:90] = True
    return Instances.from_masks(masks, class_names=["bubble"])


def test_overlay_blends_only_inside_masks() -> None:
    frame = np.full((100, 100, 3), 50, np.uint8)
    inst = two_squares()
    out = draw_overlay(frame, inst, alpha=0.5, contours=False, labels=False, scores=False)
    assert out is not frame and (frame == 50).all()
    changed = (out != frame).any(axis=2)
    np.testing.assert_array_equal(changed, inst.masks.any(axis=0))
    expected = 50 * 0.5 + np.array(colour(0)) * 0.5
    assert np.abs(out[20, 20] - expected).max() <= 1


def test_ids_pick_stable_colours_and_grey_frames_work() -> None:
    inst = two_squares()
    grey = np.full((100, 100), 50, np.uint8)
    a = draw_overlay(grey, inst, contours=False, labels=False, scores=False, ids=[7, 3])
    b = draw_overlay(grey, inst[[1, 0]], contours=False, labels=False, scores=False, ids=[3, 7])
    assert a.shape == (100, 100, 3)
    np.testing.assert_array_equal(a[20, 20], b[20, 20])
    assert colour(7) != colour(3)


def test_status_line_and_labels_draw_something() -> None:
    frame = np.zeros((200, 300, 3), np.uint8)
    inst = Instances.empty((200, 300), ["bubble"])
    assert (draw_overlay(frame, inst) == 0).all()
    assert (draw_overlay(frame, inst, status="12.0 FPS  3 bubbles")[:30] != 0).any()
