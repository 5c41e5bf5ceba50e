"""Measurements against shapes drawn with known geometry."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from maskrt.runtime import Instances, frame_stats, measure_instances


def draw(shape: str, size: tuple[int, int] = (400, 400), **kw) -> np.ndarray:
    img = np.zeros(size, np.uint8)
    if shape == "circle":
        cv2.circle(img, kw["c"], kw["r"], 1, -1)
    elif shape == "ellipse":
        cv2.ellipse(img, kw["c"], kw["axes"], kw["angle"], 0, 360, 1, -1)
    elif shape == "rect":
        cv2.rectangle(img, kw["p0"], kw["p1"], 1, -1)
    return img.astype(bool)


@pytest.mark.parametrize("r", [40, 60, 120])
def test_circle_area_diameter_perimeter_circularity(r: int) -> None:
    inst = Instances.from_masks(draw("circle", c=(200, 200), r=r)[None])
    m = measure_instances(inst)[0]
    assert m["area_px"] == pytest.approx(math.pi * r * r, rel=0.02)
    assert m["eq_diameter_px"] == pytest.approx(2 * r, rel=0.02)
    assert m["perimeter_px"] == pytest.approx(2 * math.pi * r, rel=0.02)
    assert m["circularity"] == pytest.approx(1.0, abs=0.02)
    assert m["major_axis_px"] == pytest.approx(2 * r, rel=0.02)
    assert m["aspect_ratio"] == pytest.approx(1.0, abs=0.02)
    assert m["solidity"] == pytest.approx(1.0, abs=0.02)
    assert (m["centroid_x_px"], m["centroid_y_px"]) == pytest.approx((200, 200), abs=0.1)
    assert m["touches_border"] is False


@pytest.mark.parametrize("angle", [0, 30, 75, 120])
def test_ellipse_axes_and_orientation(angle: int) -> None:
    a, b = 90, 30  # semi-axes
    inst = Instances.from_masks(draw("ellipse", c=(200, 200), axes=(a, b), angle=angle)[None])
    m = measure_instances(inst)[0]
    assert m["major_axis_px"] == pytest.approx(2 * a, rel=0.02)
    assert m["minor_axis_px"] == pytest.approx(2 * b, rel=0.03)
    assert m["aspect_ratio"] == pytest.approx(a / b, rel=0.03)
    # OpenCV rotates clockwise on screen; orientation_deg is counter-clockwise, in (-90, 90]
    expected = -angle
    while expected <= -90:
        expected += 180
    assert m["orientation_deg"] == pytest.approx(expected, abs=1.0)


def test_rectangle_solidity_and_circularity() -> None:
    inst = Instances.from_masks(np.stack([
        draw("rect", p0=(50, 50), p1=(249, 149)),
        draw("rect", p0=(300, 300), p1=(349, 349)),
    ]))
    rect, square = measure_instances(inst)
    assert rect["solidity"] == pytest.approx(1.0, abs=0.01)
    assert rect["area_px"] == 200 * 100
    assert (rect["bbox_x0_px"], rect["bbox_y0_px"], rect["bbox_x1_px"], rect["bbox_y1_px"]) == (50, 50, 250, 150)
    assert rect["circularity"] == pytest.approx(4 * math.pi * 200 * 100 / 600**2, rel=0.02)
    assert square["circularity"] == pytest.approx(math.pi / 4, rel=0.02)


def test_l_shape_is_not_solid() -> None:
    img = draw("rect", p0=(50, 50), p1=(149, 249)) | draw("rect", p0=(50, 200), p1=(249, 249))
    m = measure_instances(Instances.from_masks(img[None]))[0]
    hull = 100 * 200 + 100 * 50 + 0.5 * 100 * 150  # L plus the triangle the hull adds
    assert m["solidity"] == pytest.approx((100 * 200 + 100 * 50) / hull, rel=0.02)


def test_calibration_and_border() -> None:
    masks = np.stack([draw("circle", c=(200, 200), r=50), draw("circle", c=(10, 200), r=30)])
    rows = measure_instances(Instances.from_masks(masks), um_per_px=2.5)
    assert rows[0]["eq_diameter_um"] == pytest.approx(rows[0]["eq_diameter_px"] * 2.5)
    assert rows[0]["area_um2"] == pytest.approx(rows[0]["area_px"] * 6.25)
    assert [r["touches_border"] for r in rows] == [False, True]
    # an ROI that cuts through the first circle
    rows_roi = measure_instances(Instances.from_masks(masks), roi=(180, 0, 400, 400))
    assert rows_roi[0]["touches_border"] is True and rows_roi[0]["in_roi"] is True
    assert rows_roi[1]["in_roi"] is False


def test_frame_stats_counts_void_fraction_and_sauter_diameter() -> None:
    radii = [20, 30, 40]
    masks = np.stack([draw("circle", c=(60 + 110 * k, 100), r=r) for k, r in enumerate(radii)])
    inst = Instances.from_masks(masks, class_ids=np.array([0, 1, 0]), class_names=["bubble", "droplet"])
    st = frame_stats(inst, inst.frame_hw, um_per_px=2.0, bins=[0, 50, 100, 200])
    assert st["count"] == 3
    assert st["count_per_class"] == {"bubble": 2, "droplet": 1}
    assert st["void_fraction"] == pytest.approx(masks.any(axis=0).mean())
    d = np.array(radii, float) * 2
    assert st["mean_diameter_px"] == pytest.approx(d.mean(), rel=0.02)
    assert st["sauter_diameter_px"] == pytest.approx((d**3).sum() / (d**2).sum(), rel=0.02)
    assert st["sauter_diameter_um"] == pytest.approx(st["sauter_diameter_px"] * 2)
    assert st["histogram"] == {"unit": "um", "edges": [0, 50, 100, 200], "counts": [0, 1, 2]}
    # ROI: left half only holds the first circle, fully
    roi = frame_stats(inst, inst.frame_hw, roi=(0, 0, 120, 400))
    assert roi["count"] == 1
    assert roi["void_fraction"] == pytest.approx(masks[:, :, :120].any(axis=0).sum() / (120 * 400))


def test_empty_frame_stats() -> None:
    st = frame_stats(Instances.empty((50, 60), ["bubble"]))
    assert st["count"] == 0 and st["void_fraction"] == 0.0
    assert st["mean_diameter_px"] is None and st["count_per_class"] == {"bubble": 0}
    assert sum(st["histogram"]["counts"]) == 0
