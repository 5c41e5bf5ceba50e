"""Benchmark frames: realistic content that depends on the density, folders and their errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.errors import MaskrtError
from maskrt.runtime.bench.scenes import load_folder, render_scene, synthetic_frames, video_frames


def _dark_fraction(frame: np.ndarray) -> float:
    return float((frame.mean(axis=2) < 90).mean())


def test_scenes_have_content_that_grows_with_density() -> None:
    sparse, dense = (render_scene((256, 256), n, seed=1, radius=(6, 9)) for n in (5, 60))
    assert sparse.shape == (256, 256, 3) and sparse.dtype == np.uint8
    assert sparse.std() > 10  # not a flat frame
    assert 0 < _dark_fraction(sparse) < _dark_fraction(dense) < 0.9
    n_blobs = cv2.connectedComponents((dense.mean(axis=2) < 90).astype(np.uint8))[0] - 1
    assert 30 <= n_blobs <= 60  # about one dark rim per bubble (overlaps merge some)
    assert 0.02 < _dark_fraction(render_scene((256, 256), 100, seed=2)) < 0.9  # default radii shrink with density
    assert _dark_fraction(render_scene((256, 256), 0)) == 0.0


def test_frames_differ_and_are_reproducible() -> None:
    frames = synthetic_frames(3, (128, 160), [5, 10, 20])
    assert [f.shape for f in frames] == [(128, 160, 3)] * 3
    assert not np.array_equal(frames[0], frames[1])
    assert np.array_equal(frames[2], synthetic_frames(3, (128, 160), [5, 10, 20])[2])


def test_folder_and_video(tmp_path: Path) -> None:
    frames = synthetic_frames(3, (64, 64), 4)
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i}.png"), f)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    loaded = load_folder(tmp_path)
    assert len(loaded) == 3 and np.array_equal(loaded[0], frames[0])
    assert len(load_folder(tmp_path, limit=2)) == 2

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for f in frames:
        writer.write(f)
    writer.release()
    assert len(video_frames(video)) == 3


def test_folder_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(MaskrtError, match="not found"):
        load_folder(tmp_path / "nope")
    with pytest.raises(MaskrtError, match="no readable image") as err:
        load_folder(tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(MaskrtError, match="cannot read frames"):
        video_frames(tmp_path / "missing.mp4")


def test_stream_frames_come_through_the_source_grammar(tmp_path: Path) -> None:
    """bench --stream takes what `maskrt run` takes: an image folder and a glob, not only videos."""
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((32, 48, 3), 40 * i, np.uint8))
    frames = video_frames(tmp_path, limit=3)
    assert [int(f[0, 0, 0]) for f in frames] == [0, 40, 80]
    assert len(video_frames(str(tmp_path / "f*.png"))) == 4
    with pytest.raises(MaskrtError, match="unknown source scheme"):
        video_frames("ftp://example/clip.mp4")
