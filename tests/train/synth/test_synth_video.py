"""Synthetic videos: frame count on read-back, per-frame ground truth consistent with its masks, stable ids."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt import rle
from maskrt.errors import MaskrtError
from maskrt.train.synth import ground_truth_path, render_video


def _read_frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.mark.parametrize("scene", ["boiling-side", "boiling-bottom", "droplets", "taylor"])
def test_video_plays_back_with_consistent_ground_truth(tmp_path: Path, scene: str) -> None:
    out = tmp_path / "clip.mp4"
    gt_path = render_video(out, frames=12, size=96, scene=scene, fps=15, seed=1, frames_dir=tmp_path / "frames")
    assert gt_path == ground_truth_path(out) == tmp_path / "clip.json"
    frames = _read_frames(out)
    assert len(frames) == 12 and frames[0].shape == (96, 96, 3)
    pngs = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert len(pngs) == 12
    gt = json.loads(gt_path.read_text())
    assert gt["num_frames"] == len(gt["frames"]) == 12 and gt["scene"] == scene and gt["fps"] == 15
    expected = "droplet" if scene == "droplets" else "bubble"
    for rec in gt["frames"]:
        union = np.zeros((96, 96), np.int32)
        ids = [inst["id"] for inst in rec["instances"]]
        assert len(ids) == len(set(ids)), "object ids repeat within a frame"
        for inst in rec["instances"]:
            m = rle.decode(inst["segmentation"])
            assert inst["area"] == int(m.sum()) > 0
            ys, xs = np.nonzero(m)
            assert inst["bbox"] == [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1]
            assert inst["category"] == expected
            union += m
        assert union.max() <= 1
        assert rec["void_fraction"] == pytest.approx(union.sum() / union.size, abs=1e-6)
        assert rec["counts"][expected] == len(rec["instances"])
    # the PNG frames are the video's frames before compression
    first = cv2.imread(str(pngs[0]))
    assert np.abs(first.astype(int) - frames[0].astype(int)).mean() < 12


def test_object_ids_persist_and_bubbles_rise(tmp_path: Path) -> None:
    gt = json.loads(render_video(tmp_path / "b.mp4", frames=30, size=128, scene="boiling-side", seed=5).read_text())
    tracks: dict[int, list[tuple[int, float]]] = {}
    for rec in gt["frames"]:
        for inst in rec["instances"]:
            _, y, _, h = inst["bbox"]
            tracks.setdefault(inst["id"], []).append((rec["index"], y + h / 2))
    long = [t for t in tracks.values() if len(t) >= 10]
    assert long, "no object tracked over 10 frames"
    # detached bubbles move up (y decreases) over their life
    rising = [t for t in long if t[-1][1] < t[0][1] - 5]
    assert rising
    ids = [{i["id"] for i in r["instances"]} for r in gt["frames"]]
    shared = [len(a & b) / max(1, len(a)) for a, b in itertools.pairwise(ids)]
    assert np.mean(shared) > 0.7


def test_droplets_merge_and_grow(tmp_path: Path) -> None:
    gt = json.loads(render_video(tmp_path / "d.mp4", frames=25, size=96, scene="droplets", seed=2).read_text())
    first, last = gt["frames"][0], gt["frames"][-1]
    ids_first = {i["id"] for i in first["instances"]}
    ids_last = {i["id"] for i in last["instances"]}
    assert ids_first - ids_last, "no droplet disappeared (merged or slid off)"
    assert ids_last - ids_first, "no droplet nucleated"
    area = {i["id"]: i["area"] for i in first["instances"]}
    grown = [i["area"] > area[i["id"]] for i in last["instances"] if i["id"] in area]
    assert np.mean(grown) > 0.5


def test_same_seed_same_ground_truth(tmp_path: Path) -> None:
    a = render_video(tmp_path / "a.mp4", frames=5, size=64, scene="mixed", seed=9)
    b = render_video(tmp_path / "b.mp4", frames=5, size=64, scene="mixed", seed=9)
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    ja.pop("video"), jb.pop("video")
    assert ja == jb


def test_bad_video_options(tmp_path: Path) -> None:
    with pytest.raises(MaskrtError, match=r"\.mp4"):
        render_video(tmp_path / "x.avi", frames=2, size=64)
    with pytest.raises(MaskrtError, match="even"):
        render_video(tmp_path / "x.mp4", frames=2, size=97)
    with pytest.raises(MaskrtError, match="--frames"):
        render_video(tmp_path / "x.mp4", frames=0, size=64)
