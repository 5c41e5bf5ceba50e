"""The capture stage: a thread that reads a source and hands frames to the pipeline.

Files and image folders deliver every frame in order (a small blocking queue applies back-pressure).
Live sources, and files with ``realtime=True``, keep only the newest frame: a frame the pipeline has
not taken by the time the next one arrives is dropped and counted, so latency never grows. A live
source that stops delivering is reopened with exponential back-off; after ``max_failures``
consecutive failed attempts the capture ends with a message instead of an error. The first
connection follows the same policy (:func:`open_with_retry`): a camera or stream that is not up yet
is retried ``max_failures`` times before the run is refused.

Every frame carries the ``time.perf_counter()`` of the moment it was read, and :attr:`Capture.t_start`
is when reading began, so a live source's frames can be placed on the wall clock.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from maskrt.errors import MaskrtError
from maskrt.runtime.stream.sources import FrameSource, SourceSpec, open_source

log = logging.getLogger(__name__)


def backoff_delay(failures: int, backoff_s: float, max_backoff_s: float) -> float:
    """Seconds to wait before the next attempt after ``failures`` failed ones (doubling, capped)."""
    return min(max_backoff_s, backoff_s * (2 ** min(failures, 16)))


def open_with_retry(
    spec: SourceSpec,
    *,
    max_failures: int = 10,
    backoff_s: float = 0.5,
    max_backoff_s: float = 8.0,
    opener: Callable[[SourceSpec], FrameSource] = open_source,
    stop: threading.Event | None = None,
) -> FrameSource:
    """Open ``spec``; a live source that cannot be opened is retried like a reopen mid-run.

    Files and folders are opened once (retrying cannot help). A live source gets the first attempt plus
    up to ``max_failures`` more, with the same back-off as :meth:`Capture._reopen`; then the last error
    is raised, saying how many attempts were made.
    """
    failures = 0
    while True:
        try:
            return opener(spec)
        except MaskrtError as exc:
            if not spec.live or failures >= max_failures or (stop is not None and stop.is_set()):
                if failures:
                    raise MaskrtError(
                        f"{exc} (gave up after {failures + 1} attempts; raise --max-failures to wait longer)"
                    ) from None
                raise
            delay = backoff_delay(failures, backoff_s, max_backoff_s)
            failures += 1
            log.warning(
                "%s: could not open (attempt %d of %d); retrying in %.1f s", spec.text, failures,
                max_failures + 1, delay,
            )  # fmt: skip
            if stop is not None:
                stop.wait(delay)
            else:
                time.sleep(delay)


@dataclass
class CapturedFrame:
    """One frame as read: its index in the source (gaps mean drops), pixels and capture time."""

    index: int
    frame: np.ndarray
    t_capture: float
    read_ms: float


class Capture:
    """Reads ``source`` on a daemon thread; ``get()`` returns the next frame to process, None at the end.

    Args:
        spec: the parsed source (used to reopen it).
        source: the already opened source (opening first makes a bad source fail before threads start).
        latest_only: keep only the newest frame (live sources, ``--realtime``); otherwise every frame in order.
        pace_fps: for ``--realtime`` files, read no faster than this rate.
        max_failures: consecutive failed reopen attempts of a live source before the run ends.
        backoff_s: first wait before a reopen; doubles per failure up to ``max_backoff_s``.
        opener: how to reopen ``spec`` (tests replace it).
    """

    def __init__(
        self,
        spec: SourceSpec,
        source: FrameSource,
        *,
        latest_only: bool,
        pace_fps: float | None = None,
        max_failures: int = 10,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        queue_size: int = 2,
        max_frames: int | None = None,
        opener: Callable[[SourceSpec], FrameSource] = open_source,
    ) -> None:
        self.spec = spec
        self.source: FrameSource | None = source
        self.latest_only = latest_only
        self.pace_fps = pace_fps
        self.max_failures = max_failures
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_frames = max_frames
        self.opener = opener
        self.t_start = 0.0
        self.frames_in = 0
        self.dropped = 0
        self.reopens = 0
        self.end_reason = ""
        self.source_lost = False
        self._failures = 0
        self._stop = threading.Event()
        self._done = threading.Event()
        self._queue: queue.Queue[CapturedFrame] = queue.Queue(maxsize=max(1, queue_size))
        self._slot: CapturedFrame | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="maskrt-capture", daemon=True)

    def start(self) -> None:
        """Start the reader thread; :attr:`t_start` is the start of the run's capture clock."""
        self.t_start = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        """Ask the reader to stop; frames already captured are still handed out."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the reader thread to finish (it is a daemon, so a stuck read cannot hang exit)."""
        self._thread.join(timeout)

    def get(self) -> CapturedFrame | None:
        """The next frame to process, blocking; None once the source has ended and everything was taken."""
        if self.latest_only:
            with self._cond:
                # a stop does not wait for a stalled live read to time out
                while self._slot is None and not (self._done.is_set() or self._stop.is_set()):
                    self._cond.wait(0.1)
                item, self._slot = self._slot, None
                return item
        while True:
            try:
                return self._queue.get(timeout=0.1)
            except queue.Empty:
                if (self._done.is_set() or self._stop.is_set()) and self._queue.empty():
                    return None

    def _deliver(self, item: CapturedFrame) -> None:
        if self.latest_only:
            with self._cond:
                if self._slot is not None:
                    self.dropped += 1
                self._slot = item
                self._cond.notify()
            return
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        t0 = self.t_start or time.perf_counter()
        index = 0
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and index >= self.max_frames:
                    self.end_reason = f"reached --max-frames {self.max_frames}"
                    break
                if self.pace_fps:
                    wait = t0 + index / self.pace_fps - time.perf_counter()
                    if wait > 0 and self._stop.wait(wait):
                        break
                t_read = time.perf_counter()
                frame = self.source.read() if self.source is not None else None
                if frame is None:
                    if not self.spec.live:
                        self.end_reason = "end of source"
                        break
                    if not self._reopen():
                        break
                    continue
                now = time.perf_counter()
                self.frames_in += 1
                self._failures = 0
                self._deliver(CapturedFrame(index, frame, now, (now - t_read) * 1000.0))
                index += 1
        except Exception as exc:  # noqa: BLE001 (a capture backend failing must end the run, not hang it)
            log.error("%s: capture failed: %s", self.spec.text, exc)
            self.end_reason = f"capture failed: {exc}"
        finally:
            if not self.end_reason and self._stop.is_set():
                self.end_reason = "stopped"
            if self.source is not None:
                self.source.close()
            self._done.set()
            with self._cond:
                self._cond.notify_all()

    def _reopen(self) -> bool:
        """Reopen a live source with back-off; False when it gave up (end_reason says why) or was stopped."""
        if self.source is not None:
            self.source.close()
            self.source = None
        log.warning("%s: stopped delivering frames; reopening", self.spec.text)
        while not self._stop.is_set():
            if self._failures >= self.max_failures:
                self.end_reason = (
                    f"{self.spec.text}: no frames after {self._failures} reopen attempts; "
                    "check the camera or stream and start again (or raise --max-failures)"
                )
                log.error("%s", self.end_reason)
                self.source_lost = True
                return False
            delay = backoff_delay(self._failures, self.backoff_s, self.max_backoff_s)
            self._failures += 1
            if self._stop.wait(delay):
                return False
            try:
                self.source = self.opener(self.spec)
            except MaskrtError as exc:
                log.warning("reopen %d/%d failed: %s", self._failures, self.max_failures, exc)
                continue
            self.reopens += 1
            log.info("%s: reopened", self.spec.text)
            return True
        return False
