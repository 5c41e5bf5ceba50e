"""What goes into a stream (:class:`StreamOptions`) and what comes out per frame (:class:`StreamResult`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maskrt.runtime.stream.tracking import Wall


@dataclass
class StreamOptions:
    """How to read the source and what to compute per frame.

    Attributes:
        width, height, fps, loop: source options (see :func:`~maskrt.runtime.stream.sources.parse_source`).
        realtime: process files at their frame rate, dropping frames the model cannot keep up with.
        roi: ``(x0, y0, x1, y1)`` region of interest for counts and void fraction (None: the whole frame).
        um_per_px: length calibration (adds micrometre columns).
        track: give instances persistent track ids.
        wall: departure line/region for tracking (``Wall.parse("y=420")``).
        fps_physical: true frame rate of a high-speed recording (for times, growth rates, velocities).
        track_high, track_low, max_lost: tracker settings (see :class:`~maskrt.runtime.stream.tracking.Tracker`).
        max_failures, backoff_s: live-source reopen policy.
        max_frames: stop after this many frames read (None: until the source ends or ``stop()``).
        queue_size: depth of the queues between stages (small: latency stays low).
        warmup: run a few blank inferences before the first frame.
    """

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    loop: bool = False
    realtime: bool = False
    roi: tuple[int, int, int, int] | None = None
    um_per_px: float | None = None
    track: bool = False
    wall: Wall | None = None
    fps_physical: float | None = None
    track_high: float = 0.5
    track_low: float = 0.1
    max_lost: int = 10
    max_failures: int = 10
    backoff_s: float = 0.5
    max_frames: int | None = None
    queue_size: int = 2
    warmup: bool = True


@dataclass
class StreamResult:
    """Everything about one processed frame. Unpacks as ``frame, instances, stats``.

    Attributes:
        index: the frame's index in the source (gaps are dropped frames).
        frame: the BGR frame as captured.
        instances: the segmentation (:class:`~maskrt.runtime.Instances`).
        stats: per-frame statistics (``frame``, ``time_s``, ``dropped``, ``count``, ``void_fraction``,
            diameters...). ``time_s`` is the capture time on the stream's clock (wall clock for live
            sources, source position for files, ``fps_physical`` when given); ``dropped`` counts the
            frames read but not processed up to this one.
        measurements: per-instance measurements, each with ``track_id`` when tracking.
        track_ids: one id per instance when tracking (-1: not tracked), else None.
        events: departure events in this frame.
        finished_tracks: summaries of tracks that ended at this frame.
        timings: milliseconds per stage for this frame.
        t_capture: ``time.perf_counter()`` when the frame was read.
    """

    index: int
    frame: np.ndarray
    instances: Any
    stats: dict[str, Any]
    measurements: list[dict[str, Any]]
    track_ids: np.ndarray | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    finished_tracks: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    t_capture: float = 0.0

    def __iter__(self) -> Iterator[Any]:
        return iter((self.frame, self.instances, self.stats))
