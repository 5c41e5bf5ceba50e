"""`maskrt run` refuses what it cannot do before it starts, and ends cleanly however it is stopped."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import maskrt.runtime.stream as stream_pkg
from maskrt.cli import main


@pytest.fixture()
def use_threshold_segmenter(monkeypatch: pytest.MonkeyPatch, threshold_segmenter: type) -> None:
    monkeypatch.setattr(stream_pkg, "load_segmenter", lambda *a, **k: threshold_segmenter())


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_outputs_that_cannot_be_written_are_refused_before_the_run(
    image_folder: tuple[Path, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, _ = image_folder
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    (tmp_path / "adir").mkdir()
    opened = []
    monkeypatch.setattr(stream_pkg, "load_segmenter", lambda *a, **k: opened.append(1))  # must not be reached
    cases = [
        (["--csv", "/proc/x.csv"], ["/proc/x.csv", "cannot write --csv here", "/proc"]),
        (["--save", str(a_file / "out.mp4")], ["--save", "is a file, not a folder"]),
        (["--instances", str(a_file / "deeper" / "i.csv")], ["--instances", "is a file, not a folder"]),
        (["--save-masks", str(a_file)], ["--save-masks needs a folder but this is a file"]),
        (["--jsonl", str(tmp_path / "adir")], ["--jsonl needs a file name but this is a folder"]),
        (["--summary", "/proc/s.json"], ["/proc/s.json", "cannot write --summary"]),
        (["--save", str(tmp_path / "out.gif")], ["--save", "use one of"]),
        (["--csv", str(folder / "f0003.png")], ["f0003.png", "would be overwritten"]),
        (["--save-masks", str(folder)], ["this output folder holds the input"]),
    ]
    for extra, needles in cases:
        assert main(["run", str(folder), *extra]) == 2, extra
        line = _one_error_line(capsys)
        assert all(n in line for n in needles), (extra, line)
    assert opened == [] and a_file.read_text() == "not a folder"
    assert len(list(folder.iterdir())) == 24  # the input folder is untouched


def test_a_video_source_is_never_an_output(
    video_file: tuple[Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = video_file
    before = path.read_bytes()
    assert main(["run", str(path), "--save", str(path)]) == 2
    assert "this output is also an input" in _one_error_line(capsys)
    assert path.read_bytes() == before


@pytest.mark.usefixtures("use_threshold_segmenter")
def test_a_run_of_no_frames_leaves_every_table_with_its_header(
    image_folder: tuple[Path, Any], tmp_path: Path
) -> None:
    folder, _ = image_folder
    names = ("f.csv", "i.csv", "t.csv")

    def run(out: Path, frames: int) -> list[list[str]]:
        argv = [
            "run", str(folder), "--max-frames", str(frames), "--track", "--um-per-px", "2", "--csv", str(out / names[0]),
            "--instances", str(out / names[1]), "--tracks", str(out / names[2]), "--save", str(out / "v.mp4"),
        ]  # fmt: skip
        assert main(argv) == 0
        tables = []
        for name in names:
            with open(out / name, newline="") as f:
                tables.append(list(csv.reader(f)))
        return tables

    empty = run(tmp_path / "empty", 0)
    full = run(tmp_path / "full", 6)
    assert [len(t) for t in empty] == [1, 1, 1]  # a header, no rows: never a 0-byte file
    assert [t[0] for t in empty] == [t[0] for t in full]  # the same columns a real run writes
    assert {"frame", "time_s", "dropped", "count", "void_fraction", "count_bubble"} <= set(empty[0][0])
    assert {"track_id", "eq_diameter_um", "vx_um_per_s"} <= set(empty[1][0])
    assert len(full[0]) == 7 and len(full[2]) > 1
    assert not (tmp_path / "empty" / "v.mp4").exists()  # no video of nothing


def test_stop_handler_ignores_a_second_signal_arriving_inside_it() -> None:
    """GNU timeout signals the process and then its group: the handler must not run twice, nor print."""
    from maskrt.cli.stream import _StopOnSignal

    class Stream:
        calls = 0

        def stop(self) -> None:
            self.calls += 1
            signal.raise_signal(signal.SIGTERM)  # the group's copy arrives while the first is handled
            time.sleep(0.01)

    stream = Stream()
    stopper = _StopOnSignal(stream)
    try:
        signal.raise_signal(signal.SIGTERM)
        time.sleep(0.01)
        signal.raise_signal(signal.SIGINT)  # within 0.5 s of the first: the same stop, not an interrupt
    finally:
        stopper.restore()
    assert stream.calls == 1 and stopper.signal_name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_double_sigterm_to_process_and_group_stops_cleanly(
    constant_model: Path, image_folder: tuple[Path, Any], tmp_path: Path
) -> None:
    folder, _ = image_folder
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "maskrt", "run", str(constant_model), str(folder), "--loop", "--realtime", "--fps",
        "40", "--csv", str(out / "f.csv"), "--save", str(out / "v.mp4"), "--summary", str(out / "s.json"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "f.csv").exists() and len((out / "f.csv").read_text().splitlines()) > 6:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGTERM)  # what `timeout` does: the child, then the whole group
        os.killpg(proc.pid, signal.SIGTERM)
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and err.count("stopping (SIGTERM)") == 1, err
    summary = json.loads((out / "s.json").read_text())
    assert summary["end_reason"] == "stopped"
    assert len((out / "f.csv").read_text().splitlines()) == summary["processed"] + 1


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs GNU timeout")
def test_gnu_timeout_stops_a_run_cleanly(
    constant_model: Path, image_folder: tuple[Path, Any], tmp_path: Path
) -> None:
    folder, _ = image_folder
    out = tmp_path / "out"
    cmd = [
        "timeout", "--preserve-status", "-s", "TERM", "6", sys.executable, "-m", "maskrt", "run", str(constant_model),
        str(folder), "--loop", "--realtime", "--fps", "40", "--csv", str(out / "f.csv"), "--summary", str(out / "s.json"),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("stopping (SIGTERM)") == 1
    summary = json.loads((out / "s.json").read_text())
    assert summary["processed"] > 0
    assert len((out / "f.csv").read_text().splitlines()) == summary["processed"] + 1


def test_an_onnx_model_named_engine_is_recognised_by_its_content(
    constant_model: Path, image_folder: tuple[Path, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from maskrt.runtime.backends.formats import looks_like_onnx

    renamed = tmp_path / "bubbles.engine"
    shutil.copy(constant_model, renamed)
    assert main(["run", str(renamed), str(image_folder[0])]) == 2
    line = _one_error_line(capsys)
    assert "bubbles.engine" in line and "is an ONNX model (by its content)" in line and "bubbles.onnx" in line
    engine = tmp_path / "real.engine"
    engine.write_bytes(b"ftrt" + bytes(range(256)) * 4)
    text = tmp_path / "notes.onnx"
    text.write_text("hello")
    assert looks_like_onnx(constant_model) and looks_like_onnx(renamed)
    assert (
        not looks_like_onnx(engine) and not looks_like_onnx(text) and not looks_like_onnx(tmp_path / "none")
    )
