"""The parity rules themselves: they must catch shifted boxes, changed masks, missing detections."""

from __future__ import annotations

import numpy as np

from maskrt.export.parity import ParityReport, ParityRules, compare, paste_full

HW = (64, 64)


def _dets(boxes, scores, labels=None):
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    probs = np.full((len(boxes), 28, 28), 0.9, dtype=np.float32)
    return {
        "boxes": boxes,
        "scores": np.asarray(scores, dtype=np.float32),
        "labels": np.asarray(labels if labels is not None else [1] * len(boxes)),
        "masks": paste_full(probs, boxes, HW, 0.5),
    }


REF = _dets([[10, 10, 30, 30], [40, 40, 60, 52]], [0.9, 0.6])


def test_identical_detections_pass():
    r = compare(REF, _dets(REF["boxes"], REF["scores"]), ParityRules())
    assert (r.matched, r.missing, r.extra, r.min_box_iou, r.max_score_diff) == (2, 0, 0, 1.0, 0.0)


def test_shifted_box_fails_box_rule():
    test = _dets([[10, 10, 30, 30], [41, 40, 61, 52]], [0.9, 0.6])
    report = ParityReport(ParityRules(), [compare(REF, test, ParityRules())])
    assert not report.passed
    assert report.images[0].min_box_iou < 0.99
    assert "box IoU" in report.failures()[0]


def test_score_and_label_and_missing_detection_are_caught():
    rules = ParityRules()
    assert compare(REF, _dets(REF["boxes"], [0.9, 0.61]), rules).max_score_diff > rules.score_tol
    assert compare(REF, _dets(REF["boxes"], REF["scores"], [1, 2]), rules).missing == 1
    r = compare(REF, _dets(REF["boxes"][:1], [0.9]), rules)
    assert (r.missing, r.extra) == (1, 0)
    r = compare(_dets(REF["boxes"][:1], [0.9]), REF, rules)
    assert (r.missing, r.extra) == (0, 1)


def test_ties_at_the_max_det_cut_are_not_failures():
    """Both sides full (max_det = 2): the last place differs among equal scores."""
    ref = _dets([[10, 10, 30, 30], [40, 40, 60, 52]], [0.9, 0.5])
    test = _dets([[10, 10, 30, 30], [2, 40, 20, 60]], [0.9, 0.5])
    r = compare(ref, test, ParityRules(), max_det=2)
    assert (r.missing, r.extra) == (0, 0)
    assert compare(ref, test, ParityRules(), max_det=3).missing == 1

