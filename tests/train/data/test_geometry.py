"""Shape geometry and image helpers the importers rely on."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.train.data.cvat import decode_cvat_mask, encode_cvat_mask
from maskrt.train.data.geometry import (
    circle_polygon,
    clip_polygon,
    ellipse_polygon,
    polygon_area,
    rasterize_polygons,
    rectangle_polygon,
)
from maskrt.train.data.images import header_size


def test_clip_polygon_is_the_intersection_with_the_image() -> None:
    tri = np.array([[-10.0, -10.0], [30.0, -10.0], [-10.0, 30.0]])  # corner cut off by x=0 and y=0
    clipped = clip_polygon(tri, 100, 100)
    assert clipped[:, 0].min() >= 0 and clipped[:, 1].min() >= 0
    assert polygon_area(clipped) == pytest.approx(20 * 20 / 2)  # the part inside is a right triangle 20x20
    assert len(clip_polygon(np.array([[120.0, 0], [130, 0], [125, 10]]), 100, 100)) == 0


@pytest.mark.parametrize("r", [3.0, 10.0, 80.0])
def test_circle_and_ellipse_polygons_keep_the_area(r: float) -> None:
    assert polygon_area(circle_polygon(50, 50, r)) == pytest.approx(math.pi * r * r, rel=1e-9)
    e = ellipse_polygon(50, 50, r, r / 2, math.radians(40))
    assert polygon_area(e) == pytest.approx(math.pi * r * r / 2, rel=1e-9)


def test_rotated_rectangle_turns_clockwise_on_screen() -> None:
    r = rectangle_polygon(0, 0, 20, 10, 90.0)
    assert polygon_area(r) == pytest.approx(200)
    np.testing.assert_allclose(r.min(axis=0), [5, -5], atol=1e-9)  # a 20x10 box turned upright about (10, 5)
    np.testing.assert_allclose(r[0], [15, -5], atol=1e-9)  # top-left corner goes to top-right


def test_rasterized_area_matches_the_polygon_area() -> None:
    m = rasterize_polygons([circle_polygon(60.3, 40.7, 20.0)], 100, 120)
    assert m.sum() == pytest.approx(math.pi * 400, rel=0.01)
    sq = rasterize_polygons([rectangle_polygon(10, 10, 30, 20)], 40, 40)
    assert sq.sum() == 200 and sq[10:20, 10:30].all()


def test_cvat_mask_rle_round_trip() -> None:
    m = np.zeros((30, 40), bool)
    m[5:12, 7:20] = True
    m[5, 7] = False
    attrs = encode_cvat_mask(m)
    assert attrs["left"] == "7" and attrs["top"] == "5" and attrs["width"] == "13" and attrs["height"] == "7"
    assert attrs["rle"].startswith("1, ")  # row-major over the box, first run is background
    back = decode_cvat_mask(attrs["rle"], 7, 5, 13, 7, 40, 30)
    assert np.array_equal(back, m)
    with pytest.raises(ValueError, match="runs cover"):
        decode_cvat_mask("1, 2", 7, 5, 13, 7, 40, 30)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp"])
def test_header_size_reads_width_and_height(tmp_path: Path, ext: str) -> None:
    f = tmp_path / f"x{ext}"
    cv2.imwrite(str(f), np.zeros((37, 53, 3), np.uint8))
    assert header_size(f) == (53, 37)


def test_jpeg_exif_rotation_gives_the_size_opencv_decodes(tmp_path: Path) -> None:
    import struct

    _, buf = cv2.imencode(".jpg", np.zeros((20, 50, 3), np.uint8))
    tiff = (
        b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0)
    )
    tiff += struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    data = buf.tobytes()
    f = tmp_path / "rot.jpg"
    f.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    decoded = cv2.imread(str(f), cv2.IMREAD_COLOR)
    assert header_size(f) == (decoded.shape[1], decoded.shape[0]) == (20, 50)
