"""One image-ending vocabulary: predict, run, bench --images, export --data and the importers take the same files.

The list is :data:`maskrt.runtime.images.IMAGE_SUFFIXES` (also export --calib); each command's collector is given a folder with one
decodable image of every ending (and a text file), and must pick exactly the images.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.errors import MaskrtError
from maskrt.runtime.images import IMAGE_SUFFIXES, expand_sources, read_image


def _write(path: Path) -> None:
    grey = np.zeros((64, 64), np.uint8)
    cv2.circle(grey, (32, 32), 12, 200, -1)
    image = grey if path.suffix in (".pgm", ".pbm") else cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    ok, buf = cv2.imencode(path.suffix, image)
    assert ok, path.suffix
    path.write_bytes(buf.tobytes())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    for i, suffix in enumerate(IMAGE_SUFFIXES):
        _write(d / f"img{i:02d}{suffix}")
    (d / "notes.txt").write_text("not an image")
    return d


def _names(paths: list) -> list[str]:
    return sorted(Path(p).name for p in paths)


def _expected(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix != ".txt")


def test_every_listed_ending_decodes(folder: Path) -> None:
    for p in folder.iterdir():
        if p.suffix != ".txt":
            assert read_image(p).shape[:2] == (64, 64), p.name


def test_predict_takes_every_ending(folder: Path) -> None:
    assert _names(expand_sources([folder])) == _expected(folder)


def test_run_takes_every_ending(folder: Path) -> None:
    from maskrt.runtime.stream.sources import parse_source

    assert _names(parse_source(str(folder)).files) == _expected(folder)
    assert _names(parse_source(str(folder / "img*")).files) == _expected(folder)


def test_bench_images_takes_every_ending(folder: Path) -> None:
    from maskrt.runtime.bench.scenes import load_folder

    assert len(load_folder(folder, limit=100)) == len(IMAGE_SUFFIXES)


def test_export_data_takes_every_ending(folder: Path) -> None:
    pytest.importorskip("torch")
    from maskrt.export.scenes import folder_images

    assert len(folder_images(folder, (64, 64), limit=100)) == len(IMAGE_SUFFIXES)


def test_mask_importer_takes_every_ending(tmp_path: Path) -> None:
    from maskrt.train.data.mask_pairs import find_pairs
    from maskrt.train.data.problems import ProblemLog

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i, suffix in enumerate(IMAGE_SUFFIXES):
        _write(tmp_path / "images" / f"img{i:02d}{suffix}")
        _write(tmp_path / "masks" / f"img{i:02d}.png")
    log = ProblemLog(tmp_path)
    pairs = find_pairs(tmp_path, log)
    assert sorted(p.image.suffix for p in pairs) == sorted(IMAGE_SUFFIXES)
    assert not log.messages


def test_a_text_file_alone_is_no_image(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(MaskrtError, match="no images"):
        expand_sources([tmp_path])


def test_export_int8_calib_takes_every_ending(folder: Path) -> None:
    pytest.importorskip("onnx")
    from maskrt.export.int8 import calib_files

    assert _names(calib_files(folder)) == _expected(folder)
    assert _names(calib_files(str(folder / "img*"))) == _expected(folder)
