"""The real-time pipeline: capture, inference and analysis overlap in threads; the caller gets results in order.

::

    capture thread      inference thread          analysis thread                  caller (outputs)
    read source   -->   preprocess + infer  -->   postprocess, measure, track -->  draw, write, show
               (newest frame       (queue of 2)                      (queue of 2)
                or queue of 2)

ONNX Runtime, TensorRT, OpenCV and numpy release the GIL in their heavy calls, so the stages run
concurrently and the end-to-end rate approaches the inference rate. :meth:`Stream.stop` (Ctrl-C,
SIGTERM, ``q``) stops the capture; the frames already in flight are finished and handed out, so
every frame counted as processed reaches the caller.

Each result's ``stats["time_s"]`` is when its frame was captured, on one of three clocks
(:attr:`Stream.clock`): ``capture`` (live sources: wall-clock seconds since reading began, so
outages show as gaps), ``source`` (files and folders: the frame's position, index over the frame
rate) or ``physical`` (``fps_physical`` given: index over the recording's true rate).
``stats["dropped"]`` counts the frames read but not processed up to that frame.

Example:
    >>> from maskrt.runtime.stream import stream
    >>> for frame, inst, stats in stream("bubbles.onnx", "clip.mp4"):
    ...     print(stats["frame"], stats["count"], stats["void_fraction"])
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from maskrt.runtime.stream.capture import Capture, CapturedFrame, open_with_retry
from maskrt.runtime.stream.sources import FrameSource, SourceSpec, parse_source
from maskrt.runtime.stream.timing import StageTimes
from maskrt.runtime.stream.tracking import Tracker
from maskrt.runtime.stream.types import StreamOptions, StreamResult

log = logging.getLogger(__name__)

_END = object()


def load_segmenter(
    model: Any = None,
    *,
    backend: str = "auto",
    device: str = "auto",
    threads: int | None = None,
    conf: float | None = None,
    mask_threshold: float | None = None,
    classes: list[str] | None = None,
) -> Any:
    """``model`` itself when it already is a segmenter (has ``preprocess``/``infer``/``postprocess``),
    else a :class:`~maskrt.runtime.Segmenter` loaded from a path (None: the bundled model)."""
    if model is not None and all(hasattr(model, a) for a in ("preprocess", "infer", "postprocess")):
        return model
    from maskrt.runtime.segmenter import Segmenter

    return Segmenter(
        model,
        backend=backend,
        device=device,
        threads=threads,
        conf=conf,
        mask_threshold=mask_threshold,
        classes=classes,
    )


class Stream:
    """A running segmentation stream over one source; iterate it for :class:`StreamResult` in frame order.

    The source is opened in the constructor, so a bad source fails (with a MaskrtError saying what was
    tried) before any thread starts. Iterate once; :attr:`summary` holds the counters and timings.

    Args:
        segmenter: a loaded segmenter (see :func:`load_segmenter`).
        source: source string (``0``, ``rtsp://...``, ``clip.mp4``, ``frames/``...) or a parsed SourceSpec.
        options: :class:`StreamOptions`.
    """

    def __init__(
        self,
        segmenter: Any,
        source: str | int | SourceSpec | FrameSource,
        options: StreamOptions | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.options = opt = options or StreamOptions()
        if isinstance(source, (str, int, SourceSpec)):
            spec = (
                source
                if isinstance(source, SourceSpec)
                else parse_source(source, width=opt.width, height=opt.height, fps=opt.fps, loop=opt.loop)
            )
            first: FrameSource = open_with_retry(spec, max_failures=opt.max_failures, backoff_s=opt.backoff_s)
        else:  # an already opened source (the CLI opens it before loading the model)
            first, spec = source, source.spec
        self.spec = spec
        self.source_fps = float(first.fps)
        self.frame_count = first.frame_count
        self.live = self.spec.live or opt.realtime
        self.seconds_per_frame = 1.0 / float(opt.fps_physical or self.source_fps)
        self.clock = "physical" if opt.fps_physical else "capture" if self.spec.live else "source"
        self.capture = Capture(
            self.spec,
            first,
            latest_only=self.live,
            pace_fps=self.source_fps if (opt.realtime and not self.spec.live) else None,
            max_failures=opt.max_failures,
            backoff_s=opt.backoff_s,
            queue_size=opt.queue_size,
            max_frames=opt.max_frames,
        )
        self.tracker = (
            Tracker(
                high_score=opt.track_high,
                low_score=opt.track_low,
                max_lost=opt.max_lost,
                seconds_per_frame=self.seconds_per_frame,
                um_per_px=opt.um_per_px,
                wall=opt.wall,
            )
            if opt.track
            else None
        )
        self.times = StageTimes()
        self.processed = 0
        self._analysed = 0
        self._instances = 0
        self._abort = threading.Event()
        self._stopping = False
        self._q_infer: queue.Queue[Any] = queue.Queue(maxsize=max(1, opt.queue_size))
        self._q_out: queue.Queue[Any] = queue.Queue(maxsize=max(1, opt.queue_size))
        self._threads: list[threading.Thread] = []
        self._t_start = 0.0
        self._t_end = 0.0
        self._started = False
        self.owns_segmenter = False

    # -- control ------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop, and release the source and (when this stream loaded it) the model; safe to call twice."""
        self.stop()
        if not self._started and self.capture.source is not None:
            self.capture.source.close()
            self.capture.source = None
        if self.owns_segmenter and hasattr(self.segmenter, "close"):
            self.segmenter.close()
            self.owns_segmenter = False

    def __enter__(self) -> Stream:  # noqa: PYI034 (typing_extensions is no runtime dependency)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop(self) -> None:
        """Stop reading; frames already in flight are still processed and handed out. Safe to call again,
        also from a signal handler that interrupts the stream's own stop."""
        if self._stopping:
            return
        self._stopping = True  # before taking any lock: a signal handler arriving inside it returns above
        self.capture.stop()

    def __iter__(self) -> Iterator[StreamResult]:
        if self._started:
            raise RuntimeError("a Stream can be iterated once")
        self._started = True
        if self.options.warmup and hasattr(self.segmenter, "warmup"):
            self.segmenter.warmup(2)
        self._t_start = time.perf_counter()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._infer_loop,), name="maskrt-infer", daemon=True),
            threading.Thread(
                target=self._guard, args=(self._analyse_loop,), name="maskrt-analyse", daemon=True
            ),
        ]
        self.capture.start()
        for t in self._threads:
            t.start()
        try:
            while True:
                item = self._get(self._q_out)
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                t_yield = time.perf_counter()
                yield item
                done = time.perf_counter()
                self.times.add("output", (done - t_yield) * 1e3)
                self.times.add("latency", (done - item.t_capture) * 1e3)
                self.processed += 1
                self._t_end = done
        finally:
            self._abort.set()
            self.stop()
            self.capture.join(2.0)
            for t in self._threads:
                t.join(2.0)
            if not self._t_end:
                self._t_end = time.perf_counter()
            if self.owns_segmenter and hasattr(self.segmenter, "close"):
                self.segmenter.close()
                self.owns_segmenter = False

    # -- stages -------------------------------------------------------------------------------
    def _guard(self, loop: Any) -> None:
        try:
            loop()
        except BaseException as exc:
            log.debug("stage failed", exc_info=True)
            self.capture.stop()
            self._put(self._q_out, exc, force=True)

    def _infer_loop(self) -> None:
        seg = self.segmenter
        while not self._abort.is_set():
            cap = self.capture.get()
            if cap is None:
                break
            t0 = time.perf_counter()
            images, scale = seg.preprocess(cap.frame)
            t1 = time.perf_counter()
            outputs = _own(seg.infer(images))  # a backend may reuse its output buffers for the next frame
            t2 = time.perf_counter()
            self.times.add("capture", cap.read_ms)
            self.times.add("preprocess", (t1 - t0) * 1e3)
            self.times.add("infer", (t2 - t1) * 1e3)
            self._put(
                self._q_infer,
                (cap, scale, outputs, {"preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3}),
            )
        self._put(self._q_infer, _END, force=True)

    def _analyse_loop(self) -> None:
        from maskrt.runtime.measure import frame_stats, measure_instances

        opt, seg = self.options, self.segmenter
        while not self._abort.is_set():
            item = self._get(self._q_infer)
            if item is _END:
                break
            cap: CapturedFrame = item[0]
            scale, outputs, timings = item[1:]
            hw = (int(cap.frame.shape[0]), int(cap.frame.shape[1]))
            t0 = time.perf_counter()
            inst = seg.postprocess(outputs, scale, hw)
            self._instances += len(inst)
            t1 = time.perf_counter()
            rows = measure_instances(inst, opt.um_per_px, opt.roi)
            stats = frame_stats(inst, hw, roi=opt.roi, um_per_px=opt.um_per_px, measurements=rows)
            t2 = time.perf_counter()
            time_s = self.frame_time(cap)
            ids = events = finished = None
            if self.tracker is not None:
                ids, events, finished = self._track(cap.index, inst, rows)
                for event in events:  # the event happened at this frame's capture time, on the CSV's clock
                    event["time_s"] = time_s
            t3 = time.perf_counter()
            # every frame read before this one was either processed or dropped
            dropped = cap.index - self._analysed
            self._analysed += 1
            stats = {"frame": cap.index, "time_s": time_s, "dropped": dropped, **stats}
            timings.update(postprocess=(t1 - t0) * 1e3, measure=(t2 - t1) * 1e3)
            self.times.add("postprocess", timings["postprocess"])
            self.times.add("measure", timings["measure"])
            if self.tracker is not None:
                timings["track"] = (t3 - t2) * 1e3
                self.times.add("track", timings["track"])
            result = StreamResult(
                cap.index,
                cap.frame,
                inst,
                stats,
                rows,
                ids,
                events or [],
                finished or [],
                timings,
                cap.t_capture,
            )
            self._put(self._q_out, result)
        self._put(self._q_out, _END, force=True)

    def frame_time(self, cap: CapturedFrame) -> float:
        """When ``cap`` was captured, in seconds on this stream's :attr:`clock`."""
        if self.clock == "capture":
            return max(0.0, cap.t_capture - self.capture.t_start)
        return cap.index * self.seconds_per_frame

    def template(self) -> StreamResult:
        """A result with one one-pixel instance (and one finished track when tracking), for output columns.

        Writers use it to give a table its header even when no frame was processed.
        """
        from maskrt.runtime.instances import Instances
        from maskrt.runtime.measure import frame_stats, measure_instances
        from maskrt.runtime.stream.tracking import Track

        opt = self.options
        names = list(getattr(self.segmenter, "class_names", None) or ["object"])
        inst = Instances.from_masks(np.ones((1, 1, 1), bool), np.ones(1, np.float32), np.zeros(1, np.int64), names)
        rows = measure_instances(inst, opt.um_per_px, opt.roi)
        stats = {"frame": 0, "time_s": 0.0, "dropped": 0, **frame_stats(inst, (1, 1), um_per_px=opt.um_per_px)}
        ids, finished = None, []
        if self.tracker is not None:
            ids = np.full(1, -1, np.int64)
            for r in rows:
                _track_columns(r, -1, (0.0, 0.0), self.tracker.unit)
            track = Track(0, 0, np.zeros(4), 0, 0, frames=[0], areas=[1.0], centroids=[(0.0, 0.0)])
            finished = [self.tracker.summary(track)]
        return StreamResult(0, np.zeros((1, 1, 3), np.uint8), inst, stats, rows, ids, [], finished, {"infer": 0.0})

    def _track(self, index: int, inst: Any, rows: list[dict[str, Any]]) -> tuple[np.ndarray, list, list]:
        assert self.tracker is not None
        areas = np.array([r["area_px"] for r in rows], dtype=np.float64)
        cents = np.array(
            [
                (r["centroid_x_px"], r["centroid_y_px"])
                if r["centroid_x_px"] is not None
                else ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
                for r, b in zip(rows, inst.boxes.tolist())
            ],
            dtype=np.float64,
        ).reshape(-1, 2)
        ids = self.tracker.update(index, inst.boxes, inst.scores, inst.class_ids, areas, cents)
        unit = self.tracker.unit
        for r, tid in zip(rows, ids.tolist()):
            _track_columns(r, tid, self.tracker.velocity(tid) if tid >= 0 else (0.0, 0.0), unit)
        return ids, list(self.tracker.events), self.tracker.pop_finished()

    # -- queues that never block a stopping pipeline -------------------------------------------
    def _put(self, q: queue.Queue[Any], item: Any, force: bool = False) -> None:
        while True:
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if self._abort.is_set():
                    if force:  # make room for the end marker so that a waiting reader wakes up
                        try:
                            q.get_nowait()
                        except queue.Empty:
                            pass
                        continue
                    return

    def _get(self, q: queue.Queue[Any]) -> Any:
        while True:
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                if self._abort.is_set():
                    return _END

    # -- results ------------------------------------------------------------------------------
    def finish_tracks(self) -> list[dict[str, Any]]:
        """End all tracks and return the summaries not yet handed out (empty without tracking)."""
        return self.tracker.finish() if self.tracker is not None else []

    @property
    def summary(self) -> dict[str, Any]:
        """Frames in/processed/dropped, reopens, why it ended, end-to-end FPS and per-stage mean/p99 ms."""
        wall = max(self._t_end - self._t_start, 1e-9) if self._t_start else 0.0
        return {
            "source": self.spec.text,
            "live": self.live,
            "frames_in": self.capture.frames_in,
            "processed": self.processed,
            "dropped": self.capture.dropped,
            "reopens": self.capture.reopens,
            "end_reason": self.capture.end_reason or "stopped",
            "source_lost": self.capture.source_lost,
            "wall_s": wall,
            "fps": self.processed / wall if wall else 0.0,
            "mean_instances": self._instances / max(self.processed, 1),
            "source_fps": self.source_fps,
            "clock": self.clock,
            "time_s": CLOCKS[self.clock],
            "stages_ms": self.times.summary(),
        }


def _track_columns(row: dict[str, Any], track_id: int, velocity: tuple[float, float], unit: str) -> None:
    """Add the tracking columns to one instance's measurements."""
    row["track_id"] = track_id
    row[f"vx_{unit}_per_s"] = velocity[0]
    row[f"vy_{unit}_per_s"] = velocity[1]


CLOCKS = {
    "capture": "capture time: wall-clock seconds since reading began (outages show as gaps)",
    "source": "source position: frame index over the source's frame rate",
    "physical": "physical time: frame index over --fps-physical",
}


def _own(outputs: Any) -> Any:
    """Copies of the output arrays (other values as they are), so that the next inference cannot overwrite them."""
    if isinstance(outputs, np.ndarray):
        return outputs.copy()
    if isinstance(outputs, dict):
        return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(v.copy() if isinstance(v, np.ndarray) else v for v in outputs)
    return outputs


def stream(
    model: Any = None,
    source: str | int | Path = 0,
    *,
    backend: str = "auto",
    device: str = "auto",
    threads: int | None = None,
    conf: float | None = None,
    mask_threshold: float | None = None,
    classes: list[str] | None = None,
    **options: Any,
) -> Stream:
    """Segment a camera, stream, video or image folder; iterate the result for ``(frame, instances, stats)``.

    Args:
        model: model path, a loaded segmenter, or None for the bundled model.
        source: anything :func:`~maskrt.runtime.stream.sources.parse_source` accepts.
        backend, device, threads, conf, mask_threshold, classes: passed to the Segmenter.
        **options: fields of :class:`StreamOptions` (``track=True``, ``roi=(x0, y0, x1, y1)``, ...).

    Returns:
        A :class:`Stream`; each item is a :class:`StreamResult` that unpacks as ``frame, instances, stats``.

    Example:
        >>> s = stream("bubbles.onnx", "rtsp://cam/stream", track=True, um_per_px=4.0)
        >>> for r in s:
        ...     print(r.index, r.stats["count"], r.track_ids)
        >>> s.summary["fps"]
    """
    seg = load_segmenter(
        model,
        backend=backend,
        device=device,
        threads=threads,
        conf=conf,
        mask_threshold=mask_threshold,
        classes=classes,
    )
    s = Stream(seg, str(source), StreamOptions(**options))
    s.owns_segmenter = seg is not model
    return s
