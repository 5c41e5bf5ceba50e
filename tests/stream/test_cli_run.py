"""`maskrt run`: every output file, its agreement with the ground truth, and a clean stop on SIGTERM."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import maskrt.runtime.stream as stream_pkg
from maskrt.cli import main


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _video_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture()
def use_threshold_segmenter(monkeypatch: pytest.MonkeyPatch, threshold_segmenter: type) -> None:
    """`maskrt run` with the exact thresholding segmenter instead of a trained model."""
    monkeypatch.setattr(stream_pkg, "load_segmenter", lambda *a, **k: threshold_segmenter())


@pytest.mark.usefixtures("use_threshold_segmenter")
def test_every_output_matches_the_ground_truth(image_folder: tuple[Path, Any], tmp_path: Path) -> None:
    folder, seq = image_folder
    out = tmp_path / "out"
    code = main([
        "run", str(folder), "--fps", "20", "--track", "--um-per-px", "2", "--csv", str(out / "frames.csv"),
        "--instances", str(out / "inst.csv"), "--jsonl", str(out / "all.jsonl"), "--tracks", str(out / "tracks.csv"),
        "--save", str(out / "annotated.avi"), "--save-masks", str(out / "masks"), "--summary", str(out / "s.json"),
    ])  # fmt: skip
    assert code == 0
    n = len(seq.frames)
    frames = _rows(out / "frames.csv")
    assert [int(r["frame"]) for r in frames] == list(range(n))
    assert [int(r["count"]) for r in frames] == seq.counts
    assert np.allclose([float(r["void_fraction"]) for r in frames], seq.void, atol=1e-6)
    assert [float(r["time_s"]) for r in frames] == pytest.approx([i / 20 for i in range(n)])
    inst = _rows(out / "inst.csv")
    assert len(inst) == sum(seq.counts)
    assert {"track_id", "eq_diameter_um", "area_um2", "vx_um_per_s"} <= set(inst[0])
    tracks = _rows(out / "tracks.csv")
    assert {int(r["track_id"]) for r in tracks} == {int(r["track_id"]) for r in inst}
    lines = (out / "all.jsonl").read_text().splitlines()
    assert len(lines) == n and json.loads(lines[5])["stats"]["count"] == seq.counts[5]
    assert len(json.loads(lines[0])["instances"][0]["rle"]["counts"]) > 0
    video = _video_frames(out / "annotated.avi")
    assert len(video) == n and video[0].shape == (160, 160, 3)
    masks = sorted((out / "masks").glob("*.png"))
    assert len(masks) == n
    label = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert label.dtype == np.uint16 and float((label > 0).mean()) == pytest.approx(seq.void[0])
    ids_frame0 = {int(r["track_id"]) for r in inst if r["frame"] == "0"}
    assert set(np.unique(label[label > 0]).tolist()) == ids_frame0
    summary = json.loads((out / "s.json").read_text())
    assert summary["processed"] == n and summary["dropped"] == 0


@pytest.mark.usefixtures("use_threshold_segmenter")
def test_saved_mp4_plays_with_one_frame_per_processed_frame(
    video_file: tuple[Path, Any], tmp_path: Path
) -> None:
    path, seq = video_file
    out = tmp_path / "annotated.mp4"
    assert main(["run", str(path), "--save", str(out), "--max-frames", "15"]) == 0
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(seq.fps)
    cap.release()
    assert len(_video_frames(out)) == 15
    assert not list(tmp_path.glob(".annotated*"))  # no temp file left behind


def test_bad_options_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["run", "webcam://0"], "unknown source scheme"),
        (["run", str(tmp_path / "missing.mp4")], "no such file"),
        (["run", "a.onnx", "b.mp4", "c"], "expected [MODEL] SOURCE"),
        (["run", str(tmp_path), "--roi", "1,2,3"], "--roi"),
        (["run", str(tmp_path), "--wall", "y=3"], "--wall needs --track"),
        (["run", str(tmp_path), "--show"], "--show"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


def test_sigterm_leaves_valid_files(
    constant_model: Path, image_folder: tuple[Path, Any], tmp_path: Path
) -> None:
    """A looping, real-time run of the real runtime (ONNX Runtime) stopped by SIGTERM: every file is complete."""
    folder, _ = image_folder
    out = tmp_path / "out"
    cmd = [
        sys.executable, "-m", "maskrt", "run", str(constant_model), str(folder), "--loop", "--realtime", "--fps",
        "40", "--csv", str(out / "f.csv"), "--jsonl", str(out / "a.jsonl"), "--save", str(out / "v.mp4"),
        "--summary", str(out / "s.json"), "--track", "--tracks", str(out / "t.csv"),
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "f.csv").exists() and len((out / "f.csv").read_text().splitlines()) > 11:  # header + 11 rows
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads((out / "s.json").read_text())
    n = summary["processed"]
    assert n > 10 and summary["end_reason"] == "stopped"
    frames = _rows(out / "f.csv")
    assert len(frames) == n and [int(r["count"]) for r in frames] == [2] * n
    assert len((out / "a.jsonl").read_text().splitlines()) == n
    assert len(_video_frames(out / "v.mp4")) == n
    assert [int(r["track_id"]) for r in _rows(out / "t.csv")] == [1, 2]


class GroundTruthSegmenter:
    """Returns the synthetic ground-truth masks of the frame it is given (frames recognised by their bytes)."""

    def __init__(self, gt: dict[str, Any], frames_dir: Path) -> None:
        from maskrt import rle

        self.class_names = list(gt["classes"])
        self.by_bytes = {}
        for entry in gt["frames"]:
            image = cv2.imread(str(frames_dir / f"frame_{entry['index']:06d}.png"), cv2.IMREAD_COLOR)
            self.by_bytes[image.tobytes()] = entry
        self._decode = rle.decode

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        return frame, 1.0

    def infer(self, frame: np.ndarray) -> dict[str, Any]:
        return {"entry": self.by_bytes[frame.tobytes()]}

    def postprocess(self, outputs: dict[str, Any], scale: float, frame_hw: tuple[int, int]) -> Any:
        from maskrt.runtime import Instances

        insts = outputs["entry"]["instances"]
        if not insts:
            return Instances.empty(frame_hw, self.class_names)
        masks = np.stack([self._decode(i["segmentation"]) for i in insts])
        classes = np.array([self.class_names.index(i["category"]) for i in insts])
        return Instances.from_masks(masks, None, classes, self.class_names)


def test_synthetic_video_ground_truth_through_maskrt_run(
    monkeypatch: pytest.MonkeyPatch, constant_model: Path, tmp_path: Path
) -> None:
    """`maskrt synth --video` output: the PNG sequence pairs every frame with its ground truth, in order
    (per-class counts and void fraction equal the renderer's); the .mp4 plays through with one row per frame."""
    synth = pytest.importorskip("maskrt.train.synth.video")
    gt_path = synth.render_video(tmp_path / "syn.mp4", frames=12, size=128, scene="boiling-side", seed=1,
                                 frames_dir=tmp_path / "frames")  # fmt: skip
    gt = json.loads(Path(gt_path).read_text())
    assert (
        main(["run", str(constant_model), str(tmp_path / "syn.mp4"), "--csv", str(tmp_path / "v.csv")]) == 0
    )
    assert [int(r["frame"]) for r in _rows(tmp_path / "v.csv")] == list(range(gt["num_frames"]))

    seg = GroundTruthSegmenter(gt, tmp_path / "frames")
    monkeypatch.setattr(stream_pkg, "load_segmenter", lambda *a, **k: seg)
    assert main(["run", str(tmp_path / "frames"), "--csv", str(tmp_path / "f.csv")]) == 0
    rows = _rows(tmp_path / "f.csv")
    assert [int(r["frame"]) for r in rows] == [f["index"] for f in gt["frames"]]
    for row, entry in zip(rows, gt["frames"]):
        assert {c: int(row[f"count_{c}"]) for c in gt["classes"]} == entry["counts"]
        assert float(row["void_fraction"]) == pytest.approx(entry["void_fraction"], abs=1e-4)


@pytest.mark.parametrize(("scene", "size"), [("boiling-side", 192), ("droplets", 96)])
def test_track_id_switches_on_synthetic_scenes_are_rare(scene: str, size: int, tmp_path: Path) -> None:
    """Perfect masks of a rendered scene (objects nucleate, grow, merge, rise) through --track: the track id
    of each ground-truth object changes in at most 1% of its frame-to-frame steps."""
    synth = pytest.importorskip("maskrt.train.synth.video")
    from maskrt.runtime.stream import Stream, StreamOptions

    gt = json.loads(Path(synth.render_video(tmp_path / "v.mp4", frames=24, size=size, scene=scene, seed=3,
                                            frames_dir=tmp_path / "frames")).read_text())  # fmt: skip
    per_object: dict[int, list[int]] = {}
    for r in Stream(
        GroundTruthSegmenter(gt, tmp_path / "frames"), str(tmp_path / "frames"), StreamOptions(track=True)
    ):
        for k, entry in enumerate(
            gt["frames"][r.index]["instances"]
        ):  # from_masks keeps the ground-truth order
            per_object.setdefault(entry["id"], []).append(int(r.track_ids[k]))
    steps = sum(len(ids) - 1 for ids in per_object.values())
    switches = sum(sum(a != b for a, b in itertools.pairwise(ids)) for ids in per_object.values())
    assert steps > 100
    assert switches <= 0.01 * steps, (switches, steps)


@pytest.mark.usefixtures("use_threshold_segmenter")
def test_rle_masks_roi_and_millimetre_calibration(image_folder: tuple[Path, Any], tmp_path: Path) -> None:
    from maskrt import rle

    folder, seq = image_folder
    argv = [
        "run", str(folder), "--save-masks", str(tmp_path / "m"), "--masks-format", "rle", "--mm-per-px", "0.01",
        "--roi", "0,0,160,80", "--csv", str(tmp_path / "f.csv"), "--instances", str(tmp_path / "i.csv"),
    ]  # fmt: skip
    assert main(argv) == 0
    files = sorted((tmp_path / "m").glob("frame_*.json"))
    assert len(files) == len(seq.frames)
    first = json.loads(files[0].read_text())
    union = np.zeros((160, 160), bool)
    for item in first["masks"]:
        union |= rle.decode(item)
    assert float(union.mean()) == pytest.approx(seq.void[0])
    frame0 = _rows(tmp_path / "f.csv")[0]
    assert float(frame0["void_fraction"]) == pytest.approx(
        float(union[:80].mean()), abs=1e-6
    )  # top half only
    inst = _rows(tmp_path / "i.csv")
    assert float(inst[0]["eq_diameter_um"]) == pytest.approx(float(inst[0]["eq_diameter_px"]) * 10.0)
    assert int(frame0["count"]) == sum(1 for r in inst if r["frame"] == "0" and r["in_roi"] == "True")


def test_option_defaults_are_stream_and_output_options() -> None:
    """Every option that is a StreamOptions or OutputOptions field as it is has the field's default."""
    import typer.main

    from maskrt.cli import app
    from maskrt.runtime.stream import StreamOptions
    from maskrt.runtime.stream.outputs import OutputOptions

    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    params = {p.name: p.default for p in command.params}
    stream_fields = ("width", "height", "fps", "loop", "realtime", "track", "fps_physical", "track_high", "max_frames",
                     "max_failures")
    output_fields = {"show": "show", "save": "save", "csv_path": "csv", "instances": "instances", "jsonl": "jsonl",
                     "tracks": "tracks", "save_masks": "save_masks", "masks_format": "masks_format",
                     "boxes": "draw_boxes", "labels": "labels"}
    s, o = StreamOptions(), OutputOptions()
    assert {n: params[n] for n in stream_fields} == {n: getattr(s, n) for n in stream_fields}
    assert {n: params[n] for n in output_fields} == {n: getattr(o, f) for n, f in output_fields.items()}
    assert {f.name for f in dataclasses.fields(OutputOptions)} == set(output_fields.values())
