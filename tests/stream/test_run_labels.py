"""`maskrt run --labels all|auto|none` reaches the annotated video; a wrong mode is one line before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import maskrt.runtime.stream as stream_pkg
from maskrt.cli import main


def _first_frame(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok, path
    return frame


@pytest.mark.parametrize("flag", ["--labels", "--draw-labels"])
def test_labels_none_leaves_no_text_in_the_video_and_all_writes_it(
    monkeypatch: pytest.MonkeyPatch, threshold_segmenter: type, image_folder: tuple[Path, Any], tmp_path: Path,
    flag: str,
) -> None:
    monkeypatch.setattr(stream_pkg, "load_segmenter", lambda *a, **k: threshold_segmenter())
    folder, seq = image_folder
    frames = {}
    for mode in ("none", "all"):
        video = tmp_path / f"{mode}.avi"
        assert main(["run", str(folder), "--max-frames", "2", "--save", str(video), flag, mode]) == 0
        frames[mode] = _first_frame(video).astype(int)
    discs = cv2.dilate((seq.frames[0][..., 0] > 127).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    away = ~discs  # background, away from every disc and its contour
    away[:24] = False  # the status line
    bright = {mode: int(((f.max(axis=2) > 80) & away).sum()) for mode, f in frames.items()}
    assert bright["none"] == 0  # the background is 20: no label anywhere
    assert bright["all"] > 50 * seq.counts[0]  # the letters of one label per disc


def test_a_wrong_label_mode_is_one_line_before_the_source_opens(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["run", str(tmp_path / "missing.mp4"), "--labels", "few"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [  # not a word about the missing file: the mode is checked first
        "error: --labels 'few' is not a label mode; use auto (where they fit), all or none"
    ]


def test_demo_refuses_a_wrong_label_mode_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--labels", "some", "--bench-iters", "0"]) == 2
    assert "--labels 'some' is not a label mode" in capsys.readouterr().err
    assert not out.exists()
