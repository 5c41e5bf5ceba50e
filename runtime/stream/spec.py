"""What a frame source is once parsed: its :class:`SourceSpec`, and the frame every source hands out.

Shared by the source grammar (:mod:`maskrt.runtime.stream.sources`) and the readers it opens (the built-in
MJPEG-over-HTTP reader, :mod:`maskrt.runtime.stream.mjpeg`), so that neither imports the other's module.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DEFAULT_FPS = 30.0
READ_TIMEOUT_MS = 5000
"""How long a live source may go without a frame before a read gives up (OpenCV and the MJPEG reader)."""


@dataclass(frozen=True)
class SourceSpec:
    """A parsed source string.

    Attributes:
        text: the string the user gave.
        kind: ``camera``, ``csi``, ``rtsp``, ``http``, ``file``, ``images`` or ``gst``.
        target: device index, device path, URL, file path or GStreamer pipeline.
        live: True for cameras and network streams (keep only the newest frame, reopen on failure).
        files: the sorted image files of an ``images`` source.
        width, height, fps: capture request (cameras) or resize/pacing (files); None keeps the source's.
        loop: restart files and image sequences at their end.
    """

    text: str
    kind: str
    target: int | str
    live: bool
    files: tuple[str, ...] = ()
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    loop: bool = False


def normalise_frame(frame: np.ndarray, spec: SourceSpec) -> np.ndarray:
    """BGR uint8 frame of the requested size (cameras are asked for it; files are resized)."""
    if frame.ndim == 2:
        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    elif frame.shape[2] == 4:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    if frame.dtype != np.uint8:
        frame = cv2.convertScaleAbs(frame, alpha=255.0 / max(1.0, float(frame.max())))
    if spec.kind not in ("camera", "csi") and spec.width and spec.height:
        size = (int(spec.width), int(spec.height))
        if frame.shape[:2] != size[::-1]:
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return frame
