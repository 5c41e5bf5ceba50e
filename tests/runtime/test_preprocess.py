"""Letterbox geometry and pixel-depth conversion."""

from __future__ import annotations

import numpy as np

from maskrt.runtime.preprocess import letterbox, to_bgr, to_uint8


def test_letterbox_places_the_frame_top_left_and_pads() -> None:
    frame = np.full((100, 200, 3), 7, np.uint8)
    img, s = letterbox(frame, (64, 64), pad_value=114)
    assert s == 64 / 200
    assert img.shape == (64, 64, 3)
    assert (img[:32, :] == 7).all()
    assert (img[32:, :] == 114).all()


def test_letterbox_reuses_a_buffer_and_copies_same_size_frames() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buf = np.zeros((64, 64, 3), np.uint8)
    img, s = letterbox(frame, (64, 64), out=buf)
    assert img is buf and s == 1.0
    np.testing.assert_array_equal(img, frame)


def test_depth_conversion() -> None:
    assert to_uint8(np.array([0, 4095], np.uint16)).tolist() == [0, 255]  # 12-bit
    assert to_uint8(np.array([0, 1023], np.uint16)).tolist() == [0, 255]  # 10-bit
    assert to_uint8(np.array([0, 65535], np.uint16)).tolist() == [0, 255]
    assert to_uint8(np.array([0, 200], np.uint16)).tolist() == [0, 200]  # 8-bit data in 16 bits
    assert to_uint8(np.array([0.0, 0.5, 1.0, 2.0])).tolist() == [0, 128, 255, 255]
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 2] = 9
    assert to_bgr(bgra).shape == (4, 4, 3) and (to_bgr(bgra)[..., 2] == 9).all()
