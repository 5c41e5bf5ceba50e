"""Every image is decoded once at import: cut-off PNG and JPEG files are found whatever OpenCV's version
does with them, and complete files with unusual layouts (progressive, EXIF thumbnail, appended data) pass."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.train.data.images import decode_problem
from maskrt.train.data.problems import summary_lines

PIXELS = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def encoded(ext: str, *params: int) -> bytes:
    ok, buf = cv2.imencode(ext, PIXELS, list(params))
    assert ok
    return buf.tobytes()


def with_exif_thumbnail(jpeg: bytes) -> bytes:
    """``jpeg`` with an APP1 segment holding a whole JPEG thumbnail (its own end marker included)."""
    thumb = cv2.imencode(".jpg", PIXELS[::4, ::4])[1].tobytes()
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff + thumb
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


@pytest.mark.parametrize(
    "data",
    [
        encoded(".png"),
        encoded(".jpg"),
        encoded(".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        with_exif_thumbnail(encoded(".jpg")),
        encoded(".jpg") + b"\xff\xda appended data (a motion photo's video) \xff",
        encoded(".png") + b"trailing bytes after IEND",
        encoded(".bmp"),
    ],
    ids=["png", "jpeg", "progressive", "exif-thumbnail", "jpeg+appended", "png+trailing", "bmp"],
)
def test_complete_images_decode_with_their_size(tmp_path: Path, data: bytes) -> None:
    f = tmp_path / "x.img"
    f.write_bytes(data)
    assert decode_problem(f) == ((64, 48), "")


@pytest.mark.parametrize(
    "data",
    [
        encoded(".png"),
        encoded(".jpg"),
        encoded(".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        with_exif_thumbnail(encoded(".jpg")),
    ],
    ids=["png", "jpeg", "progressive", "exif-thumbnail"],
)
@pytest.mark.parametrize("keep", [0.2, 0.6, 0.99])
def test_cut_off_images_are_truncated(tmp_path: Path, data: bytes, keep: float) -> None:
    f = tmp_path / "x.img"
    f.write_bytes(data[: int(len(data) * keep)])
    assert decode_problem(f) == (None, f"is truncated (its data stops after {int(len(data) * keep)} bytes)")


def test_png_without_its_end_chunk_is_truncated(tmp_path: Path) -> None:
    f = tmp_path / "x.png"
    f.write_bytes(encoded(".png")[:-12])  # IEND is the last 12 bytes
    assert decode_problem(f)[1] == f"is truncated (its data stops after {f.stat().st_size} bytes)"


def test_empty_garbage_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    assert decode_problem(tmp_path / "empty.png") == (None, "is empty (0 bytes)")
    assert decode_problem(tmp_path / "junk.png") == (None, "cannot be read (corrupt or not an image)")
    size, why = decode_problem(tmp_path / "missing.png")
    assert size is None and why.startswith("cannot be opened (")


def test_summary_lines_count_and_show_the_first_few() -> None:
    problems = [f"a.json: image '{i}.png': problem {i}" for i in range(7)]
    lines = summary_lines(problems, "data/train", limit=5)
    assert lines[0] == (
        "data/train: 7 problems on import, each fixed or skipped as it says "
        "(first 5 below; `maskrt data check data/train` lists all)"
    )
    assert lines[1:] == [f"  {p}" for p in problems[:5]]
    assert summary_lines(problems[:1], "d") == [
        "d: 1 problem on import, each fixed or skipped as it says",
        "  " + problems[0],
    ]
    assert summary_lines([], "d") == []
