"""`maskrt convert`, `synth` and `train` never write over their own inputs; unwritable outputs are one line, exit 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from maskrt.cli import main


@pytest.fixture
def dataset(shapes_coco: Path, tmp_path: Path) -> Path:
    """A private copy of the shapes COCO dataset (annotations.json beside its images)."""
    folder = tmp_path / "ds"
    shutil.copytree(shapes_coco.parent, folder)
    return folder / "annotations.json"


def _one_error_line(capsys: pytest.CaptureFixture[str], path: Path | str) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {Path(path)}:"), err
    return err


def test_convert_onto_its_own_input_leaves_it_byte_identical(
    dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = dataset.read_bytes()
    link = tmp_path / "link.json"
    link.symlink_to(dataset)
    monkeypatch.chdir(dataset.parent)
    for out in (str(dataset), "annotations.json", "../ds/./annotations.json", str(link)):
        assert main(["convert", str(dataset), "--out", out]) == 2, out
        err = _one_error_line(capsys, out)
        assert "also an input" in err and "--out converted.coco.json" in err
        assert dataset.read_bytes() == before, f"--out {out} changed the input"


def test_convert_a_folder_onto_a_file_inside_it_is_refused(
    dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = dataset.read_bytes()
    assert main(["convert", str(dataset.parent), "--out", str(dataset)]) == 2
    assert "inside the input folder" in _one_error_line(capsys, dataset)
    assert dataset.read_bytes() == before


def test_convert_onto_an_image_it_reads_is_refused(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = dataset.parent / "img_000.png"
    before = image.read_bytes()
    assert main(["convert", str(dataset), "--out", str(image)]) == 2
    assert "also an input" in _one_error_line(capsys, image)
    assert image.read_bytes() == before


def test_data_check_json_onto_the_checked_file_is_refused(
    dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = dataset.read_bytes()
    assert main(["data", "check", str(dataset), "--json", str(dataset)]) == 2
    assert "also an input" in _one_error_line(capsys, dataset)
    assert dataset.read_bytes() == before


def test_convert_to_a_new_file_still_works(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "converted" / "coco.json"
    assert main(["convert", str(dataset), "--out", str(out)]) == 0
    assert out.is_file()


@pytest.mark.parametrize("case", ["proc", "folder", "below-a-file"])
def test_convert_unwritable_out_is_one_line(
    case: str, dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("mine")
    out = {"proc": Path("/proc/maskrt-test/out.json"), "folder": tmp_path, "below-a-file": note / "out.json"}[case]
    assert main(["convert", str(dataset), "--out", str(out)]) == 2
    assert "pass" in _one_error_line(capsys, out)
    assert note.read_text() == "mine"


@pytest.mark.parametrize("case", ["proc", "file", "below-a-file"])
def test_synth_unwritable_dataset_folder_is_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("mine")
    out = {"proc": Path("/proc/maskrt-test/ds"), "file": note, "below-a-file": note / "ds"}[case]
    assert main(["synth", str(out), "--images", "2", "--size", "64"]) == 2
    _one_error_line(capsys, out)
    assert note.read_text() == "mine"


@pytest.mark.parametrize("option", ["--video", "--frames-dir"])
def test_synth_unwritable_video_or_frames_is_one_line(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = Path("/proc/maskrt-test/x.mp4") if option == "--video" else Path("/proc/maskrt-test/frames")
    video = bad if option == "--video" else tmp_path / "v.mp4"
    frames = ["--frames-dir", str(bad)] if option == "--frames-dir" else []
    assert main(["synth", "--video", str(video), "--frames", "2", "--size", "64", *frames]) == 2
    assert option in _one_error_line(capsys, bad)
    assert not (tmp_path / "v.mp4").exists()


def test_train_from_a_runs_checkpoint_into_the_same_run_is_refused(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fine-tuning from runs/a/last.pt into --out runs/a (no --resume) would overwrite the starting weights."""
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    weights = run / "last.pt"
    weights.write_bytes(b"the user's trained weights")
    code = main(["train", "--data", str(dataset), "--weights", str(weights), "--out", str(run), "--iters", "1",
                 "--workers", "0", "--no-progress"])
    assert code == 2
    err = _one_error_line(capsys, weights)
    assert "also an input" in err and "another --out" in err
    assert weights.read_bytes() == b"the user's trained weights"
    assert not (run / "metrics.jsonl").exists()


def test_train_into_a_file_is_one_line(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "note.txt"
    note.write_text("mine")
    assert main(["train", "--data", str(dataset), "--out", str(note), "--iters", "1", "--no-progress"]) == 2
    assert "needs a folder" in _one_error_line(capsys, note)
    assert note.read_text() == "mine"


def test_eval_results_onto_the_checkpoint_are_refused(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"the user's checkpoint")
    for option in ("--json", "--metrics"):
        assert main(["eval", str(ckpt), "--data", str(dataset), option, str(ckpt)]) == 2
        assert "also an input" in _one_error_line(capsys, ckpt)
    assert ckpt.read_bytes() == b"the user's checkpoint"
