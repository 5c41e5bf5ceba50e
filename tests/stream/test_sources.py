"""The source grammar, opening failures, and the two HTTP MJPEG readers on a stream served by the test."""

from __future__ import annotations

import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.errors import MaskrtError
from maskrt.runtime.stream.mjpeg import MjpegHttpSource
from maskrt.runtime.stream.sources import CaptureSource, gstreamer_available, open_source, parse_source


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("text", "kind", "target", "live"),
    [
        ("0", "camera", 0, True),
        ("2", "camera", 2, True),
        ("/dev/video1", "camera", 1, True),
        ("rtsp://10.0.0.5:554/stream1", "rtsp", "rtsp://10.0.0.5:554/stream1", True),
        ("http://cam.local/video.mjpg", "http", "http://cam.local/video.mjpg", True),
        ("https://example.org/clip.mp4", "http", "https://example.org/clip.mp4", False),
    ],
)
def test_grammar_of_cameras_and_streams(text: str, kind: str, target: object, live: bool) -> None:
    spec = parse_source(text)
    assert (spec.kind, spec.target, spec.live) == (kind, target, live)


def test_csi_builds_an_argus_pipeline_with_the_requested_mode() -> None:
    spec = parse_source("csi://1", width=1920, height=1080, fps=60)
    assert spec.kind == "csi" and spec.live
    assert "nvarguscamerasrc sensor-id=1" in spec.target
    assert "width=1920, height=1080" in spec.target and "framerate=60/1" in spec.target
    assert str(spec.target).rstrip().endswith("max-buffers=1")


def test_gst_pipeline_gets_an_appsink_when_missing() -> None:
    assert (
        parse_source("gst:videotestsrc ! videoconvert ! appsink").target
        == "videotestsrc ! videoconvert ! appsink"
    )
    assert str(parse_source("gst:videotestsrc").target).endswith("appsink drop=true max-buffers=1")


def test_files_folders_and_globs(tmp_path: Path) -> None:
    video = tmp_path / "clip.avi"
    video.write_bytes(b"not really a video")
    for name in ("b.png", "a.png", "c.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert parse_source(str(video)).kind == "file"
    assert parse_source(f"file://{video}").target == str(video)
    folder = parse_source(str(tmp_path))
    assert folder.kind == "images" and not folder.live
    assert [Path(f).name for f in folder.files] == ["a.png", "b.png", "c.jpg"]
    assert [Path(f).name for f in parse_source(str(tmp_path / "*.png")).files] == ["a.png", "b.png"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://host/x", "unknown source scheme 'ftp://'"),
        ("/no/such/clip.mp4", "no such file, folder or camera"),
        ("/tmp/*.no-such-suffix-xyz", "matches no images"),
        ("csi://front", "sensor id must be a number"),
        ("", "empty source"),
    ],
)
def test_bad_sources_fail_with_a_message(text: str, message: str) -> None:
    with pytest.raises(MaskrtError, match=message.replace("(", r"\(").replace("*", r"\*")):
        parse_source(text)


def test_unopenable_sources_say_what_was_tried(tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    with pytest.raises(MaskrtError, match="could not open with OpenCV FFmpeg backend"):
        open_source(parse_source(str(broken)))
    with pytest.raises(MaskrtError, match=r"could not open with .*camera"):
        open_source(parse_source("/dev/video63"))
    url = f"http://127.0.0.1:{_free_port()}/stream.mjpg"
    with pytest.raises(
        MaskrtError, match="OpenCV FFmpeg backend.*built-in MJPEG-over-HTTP reader also failed"
    ):
        open_source(parse_source(url))


@pytest.mark.skipif(gstreamer_available(), reason="this OpenCV has GStreamer; the refusal is not reachable")
def test_gstreamer_sources_refuse_without_gstreamer() -> None:
    with pytest.raises(MaskrtError, match="no GStreamer support"):
        open_source(parse_source("csi://0"))


def test_image_sequence_skips_unreadable_files_and_loops(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((8, 10), 40 * i, np.uint8))  # grey -> BGR
    (tmp_path / "f1b.png").write_bytes(b"garbage")
    src = open_source(parse_source(str(tmp_path), loop=True))
    frames = [src.read() for _ in range(6)]
    assert all(f is not None and f.shape == (8, 10, 3) and f.dtype == np.uint8 for f in frames)
    assert [int(f[0, 0, 0]) for f in frames] == [0, 40, 80, 0, 40, 80]
    assert [Path(p).name for p in src.skipped] == ["f1b.png"]


def test_video_file_frames_in_order_and_resized(video_file: tuple[Path, object]) -> None:
    path, seq = video_file
    src = open_source(parse_source(str(path), width=80, height=60))
    n = 0
    while (frame := src.read()) is not None:
        assert frame.shape == (60, 80, 3)
        n += 1
    assert n == len(seq.frames) == src.frame_count  # type: ignore[attr-defined]


@pytest.mark.parametrize("reader", [CaptureSource, MjpegHttpSource], ids=["opencv-ffmpeg", "builtin-mjpeg"])
def test_http_mjpeg_stream_is_read_by_both_readers(
    reader: type, mjpeg_server: type, sequence: object
) -> None:
    frames = sequence.frames[:12]  # type: ignore[attr-defined]
    with mjpeg_server(frames, fps=200, per_connection=len(frames)) as server:
        spec = parse_source(server.url)
        src = reader(spec)
        got = []
        while (frame := src.read()) is not None:
            got.append(frame)
        src.close()
    assert len(got) == len(frames)
    for a, b in zip(got, frames):
        assert float(np.abs(a.astype(np.int16) - b).mean()) < 3.0  # JPEG quality 95
