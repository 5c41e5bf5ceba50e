"""`maskrt predict` never writes over its input images, and an output it cannot write is one line, exit 2.

Also the shared guards in ``maskrt.paths`` that every writing command uses.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.paths import check_writable, refuse_overwriting_inputs, same_file


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((64, 96, 3), 80, np.uint8))
    cv2.imwrite(str(folder / "b.jpg"), np.full((64, 64, 3), 160, np.uint8))
    return folder


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _spellings(images: Path, tmp_path: Path) -> list[str]:
    link = tmp_path / "link-to-imgs"
    link.symlink_to(images, target_is_directory=True)
    return [str(images), "imgs/../imgs/", str(link)]


def test_predict_into_the_image_folder_leaves_every_input_byte_identical(
    make_model, images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    model = make_model()
    before = _snapshot(images)
    monkeypatch.chdir(tmp_path)
    for out in _spellings(images, tmp_path):
        capsys.readouterr()
        code = main(["predict", str(model), str(images), "--out", out, "--threads", "1"])
        err = capsys.readouterr().err
        assert code == 2, out
        assert _snapshot(images) == before, f"--out {out} changed the input folder"
        assert err.startswith(f"error: {Path(out)}:") and "holds the input" in err and "--out runs/predict" in err
        assert len(err.strip().splitlines()) == 1


def test_predict_one_image_into_its_own_folder_is_refused(make_model, images: Path, capsys) -> None:
    before = _snapshot(images)
    assert main(["predict", str(make_model()), str(images / "b.jpg"), "--out", str(images), "--save-images"]) == 2
    assert _snapshot(images) == before
    assert str(images / "b.jpg") in capsys.readouterr().err


def test_predict_json_only_may_write_beside_the_images(make_model, images: Path) -> None:
    """Only annotated images take the inputs' names; JSON beside the images overwrites nothing."""
    before = _snapshot(images)
    assert main(["predict", str(make_model()), str(images), "--out", str(images), "--json", "--threads", "1"]) == 0
    after = _snapshot(images)
    assert sorted(after) == ["a.png", "b.jpg", "predictions.json", "stats.json"]
    assert {k: after[k] for k in before} == before


@pytest.mark.parametrize("case", ["proc", "file", "below-a-file"])
def test_predict_unwritable_out_is_one_line_before_any_image(
    case: str, make_model, images: Path, tmp_path: Path, capsys
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    out = {"proc": Path("/proc/maskrt-test/out"), "file": a_file, "below-a-file": a_file / "out"}[case]
    code = main(["predict", str(make_model()), str(images), "--out", str(out), "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {out}:") and len(err.strip().splitlines()) == 1
    assert "pass" in err  # says what to do
    assert a_file.read_text() == "mine"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_predict_into_a_folder_without_permission(make_model, images: Path, tmp_path: Path, capsys) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["predict", str(make_model()), str(images), "--out", str(locked / "out")]) == 2
    finally:
        locked.chmod(0o700)
    assert "Permission denied" in capsys.readouterr().err


def test_hard_link_and_symlink_count_as_the_same_file(tmp_path: Path) -> None:
    src = tmp_path / "a.json"
    src.write_text("{}")
    hard = tmp_path / "hard.json"
    os.link(src, hard)
    soft = tmp_path / "soft.json"
    soft.symlink_to(src)
    assert same_file(hard, src) and same_file(soft, src) and same_file(tmp_path / "x" / ".." / "a.json", src)
    assert not same_file(tmp_path / "b.json", src)
    for out in (hard, soft):
        with pytest.raises(MaskrtError, match="also an input"):
            refuse_overwriting_inputs([src], files=[out], fix="pass another --out")


def test_existing_file_inside_an_input_folder_is_refused_a_new_one_is_not(tmp_path: Path) -> None:
    folder = tmp_path / "labelme"
    folder.mkdir()
    (folder / "a.json").write_text("{}")
    with pytest.raises(MaskrtError, match=r"a\.json: .*inside the input folder"):
        refuse_overwriting_inputs([folder], files=[folder / "a.json"], fix="pass another --out")
    refuse_overwriting_inputs([folder], files=[folder / "coco.json"], fix="pass another --out")  # new: fine
    refuse_overwriting_inputs([folder / "a.json"], files=[tmp_path / "out.json"], folders=[tmp_path / "o"],
                              fix="pass another --out")


def test_check_writable_leaves_nothing_behind(tmp_path: Path) -> None:
    check_writable(tmp_path / "new" / "deeper", kind="folder", option="--out")
    check_writable(tmp_path / "x.json", kind="file", option="--out")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MaskrtError, match="needs a file name but this is a folder"):
        check_writable(tmp_path, kind="file", option="--out")
