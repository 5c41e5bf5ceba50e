"""One grammar for every frame source: cameras, CSI, RTSP/HTTP streams, video files, image folders, GStreamer.

A source string is parsed into a :class:`SourceSpec` (what the user asked for) and opened into a
:class:`FrameSource` (something that hands out BGR uint8 frames). Accepted forms:

==========================  ===================================================================
``0``, ``/dev/video0``      V4L2 webcam (live)
``csi://0``                 Jetson CSI camera through a GStreamer ``nvarguscamerasrc`` pipeline (live)
``rtsp://...``              RTSP stream through OpenCV's FFmpeg backend (live)
``http(s)://...``           MJPEG or other HTTP stream (FFmpeg; a built-in MJPEG reader as fallback) (live)
``clip.mp4|avi|mkv|...``    video file, every frame in order (``file://`` prefix allowed)
``folder/``, ``img_*.png``  folder or glob of images, sorted, as a sequence
``gst:<pipeline>``          any GStreamer pipeline ending in ``appsink`` (live)
==========================  ===================================================================

Example:
    >>> src = open_source(parse_source("clip.mp4"))
    >>> frame = src.read()  # None at the end
"""

from __future__ import annotations

import glob
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlparse

import cv2
import numpy as np

from maskrt.errors import MaskrtError
from maskrt.runtime.images import IMAGE_SUFFIXES
from maskrt.runtime.stream import spec as source_spec
from maskrt.runtime.stream.spec import DEFAULT_FPS, SourceSpec, normalise_frame

log = logging.getLogger(__name__)

VIDEO_EXTS = frozenset(
    {".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".ts", ".mjpeg"}
)
GRAMMAR = (
    "0 | /dev/video0 | csi://0 | rtsp://... | http(s)://... | file.mp4 | file://path | folder/ | 'img_*.png' "
    "| gst:<pipeline>"
)
OPEN_TIMEOUT_MS = 10000


@runtime_checkable
class FrameSource(Protocol):
    """What the pipeline reads from: BGR uint8 frames until ``read`` returns None."""

    spec: SourceSpec

    def read(self) -> np.ndarray | None: ...

    @property
    def fps(self) -> float: ...

    @property
    def frame_count(self) -> int | None: ...

    def close(self) -> None: ...


def parse_source(
    text: str | int,
    *,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    loop: bool = False,
) -> SourceSpec:
    """Turn a user's source string into a :class:`SourceSpec`; raise MaskrtError for what is not a source."""
    text = str(text).strip()
    opts: dict[str, Any] = {"width": width, "height": height, "fps": fps, "loop": loop}
    if not text:
        raise MaskrtError(f"empty source; give one of: {GRAMMAR}")
    if text.isdigit():
        return SourceSpec(text, "camera", int(text), True, **opts)
    if re.fullmatch(r"/dev/video\d+", text):  # by index: some OpenCV builds' V4L2 cannot open by name
        return SourceSpec(text, "camera", int(text[len("/dev/video") :]), True, **opts)
    if text.startswith("gst:"):
        return SourceSpec(text, "gst", _with_appsink(text[4:].strip()), True, **opts)
    scheme = urlparse(text).scheme.lower() if "://" in text else ""
    if scheme == "csi":
        sensor = text.split("://", 1)[1] or "0"
        if not sensor.isdigit():
            raise MaskrtError(f"{text}: CSI sensor id must be a number, e.g. csi://0")
        return SourceSpec(text, "csi", _csi_pipeline(int(sensor), width, height, fps), True, **opts)
    if scheme in ("rtsp", "rtsps", "rtmp", "udp", "tcp", "srt"):
        return SourceSpec(text, "rtsp", text, True, **opts)
    if scheme in ("http", "https"):
        live = Path(urlparse(text).path).suffix.lower() not in VIDEO_EXTS
        return SourceSpec(text, "http", text, live, **opts)
    if scheme == "file":
        text = text[len("file://") :]
    elif scheme:
        raise MaskrtError(f"{text}: unknown source scheme '{scheme}://'; accepted: {GRAMMAR}")
    return _parse_path(text, opts)


def _parse_path(text: str, opts: dict[str, Any]) -> SourceSpec:
    path = Path(os.path.expanduser(text))
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MaskrtError(
                f"{path}: folder has no images ({', '.join(IMAGE_SUFFIXES)}); check the path"
            )
        return SourceSpec(text, "images", str(path), False, tuple(files), **opts)
    if any(ch in text for ch in "*?["):
        files = sorted(f for f in glob.glob(str(path)) if Path(f).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MaskrtError(
                f"{text}: the pattern matches no images; check the pattern (quote it in the shell)"
            )
        return SourceSpec(text, "images", text, False, tuple(files), **opts)
    if not path.exists():
        raise MaskrtError(f"{text}: no such file, folder or camera; accepted sources: {GRAMMAR}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return SourceSpec(text, "images", str(path), False, (str(path),), **opts)
    return SourceSpec(text, "file", str(path), False, **opts)


def _with_appsink(pipeline: str) -> str:
    if not pipeline:
        raise MaskrtError("gst: needs a pipeline, e.g. 'gst:videotestsrc ! videoconvert ! appsink'")
    if "appsink" in pipeline:
        return pipeline
    return f"{pipeline} ! videoconvert ! video/x-raw, format=BGR ! appsink drop=true max-buffers=1"


def _csi_pipeline(sensor: int, width: int | None, height: int | None, fps: float | None) -> str:
    w, h, f = width or 1280, height or 720, round(fps or 30)
    return (
        f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM), width={w}, height={h}, "
        f"framerate={f}/1, format=NV12 ! nvvidconv ! video/x-raw, format=BGRx ! videoconvert ! "
        "video/x-raw, format=BGR ! appsink drop=true max-buffers=1"
    )


def gstreamer_available() -> bool:
    """Whether this OpenCV build can run GStreamer pipelines."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def ffmpeg_available() -> bool:
    """Whether this OpenCV build reads files and network streams through FFmpeg."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("FFMPEG:"):
            return "YES" in line.split(":", 1)[1]
    return False


def open_source(spec: SourceSpec) -> FrameSource:
    """Open a parsed source; raise MaskrtError saying what was tried when it cannot be opened."""
    if spec.kind == "images":
        return ImageSequenceSource(spec)
    if spec.kind == "http":
        try:
            return CaptureSource(spec)
        except MaskrtError as exc:
            from maskrt.runtime.stream.mjpeg import MjpegHttpSource

            log.debug("%s; trying the built-in MJPEG reader", exc)
            try:
                return MjpegHttpSource(spec)
            except MaskrtError as exc2:
                raise MaskrtError(f"{exc}; the built-in MJPEG-over-HTTP reader also failed: {exc2}") from None
    return CaptureSource(spec)


class CaptureSource:
    """Frames from ``cv2.VideoCapture``: cameras, files, RTSP/HTTP (FFmpeg) and GStreamer pipelines."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._cap = self._open()
        self._read_any = False

    def _open(self) -> cv2.VideoCapture:
        spec = self.spec
        if spec.kind in ("csi", "gst"):
            if not gstreamer_available():
                raise MaskrtError(
                    f"{spec.text}: this OpenCV build has no GStreamer support (cv2.getBuildInformation() says "
                    "GStreamer: NO); on a Jetson use the system OpenCV (python3-opencv from JetPack) instead of "
                    "opencv-python from pip"
                )
            api, tried = cv2.CAP_GSTREAMER, "OpenCV GStreamer pipeline"
        elif spec.kind == "camera":
            api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
            tried = "OpenCV V4L2 camera" if api == cv2.CAP_V4L2 else "OpenCV camera"
        elif spec.kind == "file" and not ffmpeg_available():
            api, tried = cv2.CAP_ANY, "OpenCV (any backend; this build has no FFmpeg)"
        else:
            api, tried = cv2.CAP_FFMPEG, "OpenCV FFmpeg backend"
        params: list[int] = []
        if spec.live and spec.kind in ("rtsp", "http"):
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                OPEN_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                source_spec.READ_TIMEOUT_MS,
            ]
        cap = _capture(spec.target, api, params)
        if not cap.isOpened() and spec.kind == "camera" and api != cv2.CAP_ANY:
            cap = _capture(spec.target, cv2.CAP_ANY, params)  # e.g. a camera served by another backend
            tried += ", then any OpenCV backend"
        if not cap.isOpened():
            hint = {
                "camera": "check the device exists (ls /dev/video*), is not used by another program, "
                "and that you may read it (group 'video')",
                "file": "check that the file is a video OpenCV can decode",
                "rtsp": "check the URL, the network and the camera's credentials",
                "http": "check the URL answers (e.g. with curl) and serves a video or MJPEG stream",
            }.get(spec.kind, "check the pipeline with gst-launch-1.0")
            raise MaskrtError(f"{spec.text}: could not open with {tried}; {hint}")
        if spec.kind == "camera":
            if spec.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, spec.width)
            if spec.height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, spec.height)
            if spec.fps:
                cap.set(cv2.CAP_PROP_FPS, spec.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        log.debug("opened %s with %s", spec.text, tried)
        return cap

    @property
    def fps(self) -> float:
        """Frame rate the source reports (or the requested one, or 30)."""
        if self.spec.fps:
            return float(self.spec.fps)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        return fps if 0.5 <= fps <= 1000.0 else DEFAULT_FPS

    @property
    def frame_count(self) -> int | None:
        """Number of frames of a file (None for live sources or when unknown)."""
        if self.spec.live:
            return None
        n = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return n if n > 0 else None

    def read(self) -> np.ndarray | None:
        """Next frame, or None at the end of a file or when a live source stops delivering."""
        ok, frame = self._cap.read()
        if not ok and self.spec.loop and not self.spec.live and self._read_any:
            self._cap.release()
            self._cap = self._open()
            ok, frame = self._cap.read()
        if not ok or frame is None:
            return None
        self._read_any = True
        return normalise_frame(frame, self.spec)

    def close(self) -> None:
        """Release the capture."""
        self._cap.release()


def _capture(target: int | str, api: int, params: list[int]) -> cv2.VideoCapture:
    """A VideoCapture, closed (not raising) when the backend cannot open ``target``."""
    try:
        cap = cv2.VideoCapture(target, api, params) if params else cv2.VideoCapture(target, api)
    except cv2.error:  # some backends raise instead of returning a closed capture
        cap = cv2.VideoCapture()
    if not cap.isOpened():
        cap.release()
    return cap


class ImageSequenceSource:
    """A sorted list of image files played as a sequence; unreadable files are skipped with a warning."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._files = list(spec.files)
        self._next = 0
        self.skipped: list[str] = []

    @property
    def fps(self) -> float:
        """The requested frame rate, or 30 (images carry no timing)."""
        return float(self.spec.fps or DEFAULT_FPS)

    @property
    def frame_count(self) -> int | None:
        """Number of images in the sequence."""
        return len(self._files)

    def read(self) -> np.ndarray | None:
        """Next readable image as BGR uint8, or None after the last one."""
        while True:
            if self._next >= len(self._files):
                if not self.spec.loop or len(self.skipped) >= len(self._files):
                    return None
                self._next = 0
            path = self._files[self._next]
            self._next += 1
            frame = cv2.imread(path, cv2.IMREAD_COLOR)
            if frame is not None:
                return normalise_frame(frame, self.spec)
            if path not in self.skipped:
                self.skipped.append(path)
                log.warning("%s: not a readable image; skipped", path)

    def close(self) -> None:
        """Nothing to release."""
