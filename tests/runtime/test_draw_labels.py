"""Overlay labels in dense scenes: ``auto`` writes only labels that fit, ``all`` one per instance, ``none`` none."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.runtime import Instances, draw_overlay
from maskrt.runtime.draw import place_labels
from maskrt.runtime.images import read_image

SIDE = 256


def discs(centres_radii: list[tuple[int, int, int]], side: int = SIDE) -> Instances:
    """Instances of filled discs ``(x, y, r)``, their masks kept as crops (no full-frame masks)."""
    boxes, regions, crops = [], [], []
    for cx, cy, r in centres_radii:
        yy, xx = np.ogrid[-r:r + 1, -r:r + 1]
        crops.append(xx * xx + yy * yy <= r * r)
        regions.append((cx - r, cy - r, cx + r + 1, cy + r + 1))
        boxes.append(regions[-1])
    n = len(crops)
    scores = np.linspace(0.99, 0.5, n)
    return Instances(np.array(boxes), scores, np.zeros(n), ["bubble"], (side, side), np.array(regions), crops)


def dense(n: int = 200, seed: int = 0) -> Instances:
    """``n`` small bubbles (radius 2-11 px) scattered over a 256 x 256 frame, as in dense boiling."""
    rng = np.random.default_rng(seed)
    r = rng.integers(2, 12, n)
    xy = rng.integers(12, SIDE - 12, (n, 2))
    return discs([(int(x), int(y), int(k)) for (x, y), k in zip(xy, r, strict=True)])


def union_mask(inst: Instances) -> np.ndarray:
    out = np.zeros(inst.frame_hw, bool)
    for (x0, y0, x1, y1), crop in zip(inst.regions, inst.crops, strict=True):
        out[y0:y1, x0:x1] |= crop
    return out


def overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_auto_writes_far_fewer_labels_than_all_and_none_overlap() -> None:
    inst = dense()
    every = place_labels(inst, (SIDE, SIDE), "all")
    auto = place_labels(inst, (SIDE, SIDE), "auto")
    assert sorted(b.index for b in every) == list(range(200))  # all: one label per instance
    assert 1 <= len(auto) <= 50  # auto: a readable few
    assert len({b.index for b in auto}) == len(auto)
    for k, a in enumerate(auto):
        assert 0 <= a.rect[0] and 0 <= a.rect[1] and a.rect[2] <= SIDE and a.rect[3] <= SIDE
        assert not any(overlaps(a.rect, b.rect) for b in auto[k + 1:]), (a, [b for b in auto if overlaps(a.rect, b.rect)])
    # the labelled ones are the instances large enough to carry a label: never a 2-3 px bubble
    radii = [(inst.regions[b.index, 2] - inst.regions[b.index, 0]) // 2 for b in auto]
    assert min(radii) >= 5


def test_drawn_text_stays_inside_the_placed_rectangles() -> None:
    inst = dense()
    frame = np.full((SIDE, SIDE, 3), 90, np.uint8)
    placed = place_labels(inst, (SIDE, SIDE), "auto")
    out = draw_overlay(frame, inst, alpha=0, contours=False)  # auto by default: only the labels change pixels
    changed = (out != frame).any(axis=2)
    inside = np.zeros_like(changed)
    for b in placed:
        x0, y0, x1, y1 = b.rect
        inside[y0:y1, x0:x1] = True
        assert changed[y0:y1, x0:x1].sum() > 20, b  # the text is there
    assert changed.any() and not (changed & ~inside).any()
    # all writes many more pixels of text than auto
    assert (draw_overlay(frame, inst, alpha=0, contours=False, labels="all") != frame).any(axis=2).sum() > \
        2 * changed.sum()


def test_none_writes_no_text_but_keeps_contours_and_status() -> None:
    inst = dense()
    frame = np.full((SIDE, SIDE, 3), 90, np.uint8)
    out = draw_overlay(frame, inst, alpha=0, labels="none")
    changed = (out != frame).any(axis=2)
    masks = union_mask(inst)
    assert not (changed & ~masks).any()  # contours lie on the masks' edges; no text anywhere else
    for (x0, y0, x1, y1), crop in zip(inst.regions, inst.crops, strict=True):
        assert changed[y0:y1, x0:x1][crop].any()  # every instance is outlined
    assert (draw_overlay(frame, inst, alpha=0, labels=False) == out).all()  # False means none
    with_status = draw_overlay(frame, inst, alpha=0, labels="none", status="30.0 FPS  n=200")
    assert (with_status[:14, :60] != out[:14, :60]).any()


def test_a_large_isolated_instance_keeps_its_label_in_auto() -> None:
    rng = np.random.default_rng(1)
    crowd = [(int(x), int(y), int(r)) for x, y, r in zip(rng.integers(10, 118, 150), rng.integers(10, 246, 150),
                                                         rng.integers(2, 5, 150), strict=True)]
    big = (190, 128, 40)
    inst = discs([*crowd, big])
    placed = place_labels(inst, (SIDE, SIDE), "auto")
    assert [b.index for b in placed] == [150]  # the crowd of 2-4 px bubbles is too small to carry labels
    assert placed[0].text == f"bubble {inst.scores[150]:.2f}"
    # at the top edge there is no room above the box: the label goes below it or inside
    top = discs([(128, 30, 30)])
    (box,) = place_labels(top, (SIDE, SIDE), "auto")
    assert box.rect[1] >= top.boxes[0, 3]  # below the box


def test_auto_labels_avoid_the_status_line_and_carry_track_ids() -> None:
    inst = discs([(40, 46, 20)])  # box top at y = 26: room for a label above it, where the status line is
    frame = np.full((SIDE, SIDE, 3), 90, np.uint8)
    status = "#12  30.0 FPS  n=1  void=1.0%"
    (plain,) = place_labels(inst, (SIDE, SIDE), "auto", ids=[42])
    assert plain.text == "#42 bubble 0.99" and plain.rect[1] < 20 and plain.rect[3] <= 26  # above the box
    out = draw_overlay(frame, inst, alpha=0, contours=False, ids=[42], status=status)
    bare = draw_overlay(frame, inst, alpha=0, contours=False, ids=[42], labels="none", status=status)
    label_px = (out != bare).any(axis=2)
    status_px = (bare != frame).any(axis=2)
    assert status_px[:22, :100].mean() > 0.5 and not status_px[22:].any()
    assert label_px.any() and np.nonzero(label_px)[0].min() >= inst.regions[0, 3]  # moved below the box


def test_a_wrong_mode_is_one_line_naming_the_choices() -> None:
    with pytest.raises(MaskrtError, match=r"--labels 'some' is not a label mode; use auto .*, all or none"):
        draw_overlay(np.zeros((32, 32, 3), np.uint8), discs([(16, 16, 5)], side=32), labels="some")


def test_predict_draw_labels_none_writes_images_without_text(make_model, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((128, 128, 3), 80, np.uint8))
    model = make_model(dets=[((20, 40, 100, 120), 0.9, 1)])
    views = {}
    for mode in ("none", "auto"):
        out = tmp_path / mode
        assert main(["predict", str(model), str(folder), "-o", str(out), "--save-images", "--threads", "1",
                     "--draw-labels", mode]) == 0
        views[mode] = read_image(out / "a.png")
    text = (views["auto"] != views["none"]).any(axis=2)
    assert text[25:40, 15:110].sum() > 20  # the one large instance is labelled in auto, just above its box
    assert not text[45:].any()
    capsys.readouterr()
    assert main(["predict", str(model), str(folder), "-o", str(tmp_path / "x"), "--draw-labels", "few"]) == 2
    assert "--draw-labels 'few' is not a label mode" in capsys.readouterr().err
    assert main(["predict", str(model), str(folder), "-o", str(tmp_path / "x"), "--labels", "none"]) == 2
    assert "(for the text on the images: --draw-labels none)" in capsys.readouterr().err
