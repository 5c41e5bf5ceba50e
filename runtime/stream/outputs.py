"""Where stream results go: a window, an annotated video, CSV/JSONL tables and label-map masks.

Every writer leaves a valid file whenever the run stops: tables are flushed after each row (a
stopped run keeps every processed frame; a run that processed nothing still leaves each table's
header), the video is written to a temporary file and renamed onto its name when released (in a
``finally``), and mask files are written atomically. :func:`check_outputs` refuses, before anything
runs, an output that cannot be written or that would overwrite an input.

The video of a live source follows the capture clock: it is written at the rate frames were
processed (measured over the first frames) and each frame is held until the next one's capture
time, so an outage plays as a still frame of its length. Files give one video frame per processed
frame at the source's rate.

Example:
    >>> outs = Outputs(OutputOptions(csv="frames.csv", save="out.mp4"), fps=30)
    >>> try:
    ...     for result in stream(...):
    ...         outs.write(result)
    ... finally:
    ...     outs.close()
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from maskrt.atomic import atomic_open, atomic_path
from maskrt.errors import MaskrtError
from maskrt.runtime.stream.types import StreamResult
from maskrt.runtime.tables import csv_cell

log = logging.getLogger(__name__)

FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}
RATE_FRAMES = 12
"""A live source's video rate is measured over at most this many first frames..."""
RATE_WINDOW_S = 1.0
"""...or this many seconds of capture time, whichever comes first."""


@dataclass
class OutputOptions:
    """Which outputs to write (None/False: not written)."""

    show: bool = False
    save: str | Path | None = None
    csv: str | Path | None = None
    instances: str | Path | None = None
    jsonl: str | Path | None = None
    tracks: str | Path | None = None
    save_masks: str | Path | None = None
    masks_format: str = "png"
    draw_boxes: bool = False
    labels: str = "auto"
    """Labels in the overlay: auto (where they fit), all or none (:func:`maskrt.runtime.draw.place_labels`)."""


def check_display() -> None:
    """Raise MaskrtError when no window can be shown (headless OpenCV or no display)."""
    gui = next((ln for ln in cv2.getBuildInformation().splitlines() if ln.strip().startswith("GUI:")), "")
    if "NONE" in gui.upper():
        raise MaskrtError(
            "--show: this OpenCV has no GUI support (opencv-python-headless); install opencv-python, "
            "or use --save out.mp4 and watch the file"
        )
    if os.name == "posix" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise MaskrtError(
            "--show: no display (DISPLAY is not set); run on the desktop, or use --save out.mp4"
        )


def check_outputs(
    options: OutputOptions,
    extra: dict[str, str | Path | None] | None = None,
    inputs: Sequence[str | Path] = (),
) -> None:
    """Raise MaskrtError for an output that cannot be written or would overwrite one of ``inputs``.

    Run it before opening the source: a wrong path then costs nothing, and never a traceback mid-run.
    The checks are the project's own (:mod:`maskrt.paths`), as for ``predict`` and ``convert``.

    Args:
        options: the outputs asked for.
        extra: more output files by option name (e.g. ``{"--summary": path}``).
        inputs: the run's inputs (model, source video, image folder or files), which no output may replace.
    """
    from maskrt.paths import check_writable, refuse_overwriting_inputs

    files: dict[str, str | Path | None] = {
        "--save": options.save, "--csv": options.csv, "--instances": options.instances, "--jsonl": options.jsonl,
        "--tracks": options.tracks, **(extra or {}),
    }  # fmt: skip
    wanted = {option: Path(value) for option, value in files.items() if value is not None}
    for option, path in wanted.items():
        if option == "--save" and path.suffix.lower() not in FOURCC:
            raise MaskrtError(f"--save {path}: use one of {', '.join(FOURCC)}")
        check_writable(path, kind="file", option=option)
    folders = [Path(options.save_masks)] if options.save_masks is not None else []
    for folder in folders:
        check_writable(folder, kind="folder", option="--save-masks")
    refuse_overwriting_inputs(inputs, files=wanted.values(), folders=folders, fix="choose another output path")


class _Table:
    """A CSV file whose header is fixed by the first row; every row is flushed at once.

    ``header`` is written when the table is closed without rows, so that it is never a 0-byte file.
    """

    def __init__(self, path: str | Path, header: list[str] | None = None) -> None:
        self.path = Path(path)
        self.header = header
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: IO[str] = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._w: csv.DictWriter[str] | None = None
        self.rows = 0

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._w is None:
            self._w = csv.DictWriter(self._f, fieldnames=list(rows[0]), extrasaction="ignore", restval="")
            self._w.writeheader()
        for row in rows:
            self._w.writerow({k: csv_cell(v) for k, v in row.items()})
        self._f.flush()
        self.rows += len(rows)

    def close(self) -> None:
        if self._w is None and self.header and not self._f.closed:
            csv.writer(self._f).writerow(self.header)
        self._f.close()


def frame_row(result: StreamResult) -> dict[str, Any]:
    """The per-frame CSV row: index, time, count, void fractions, diameters, count per class, latency."""
    s = result.stats
    row: dict[str, Any] = {"frame": s["frame"], "time_s": s["time_s"]}
    if "dropped" in s:
        row["dropped"] = s["dropped"]
    row["count"] = s["count"]
    row["void_fraction"] = s["void_fraction"]
    if "void_fraction_instances" in s:  # the union of the masks; void_fraction is the phase map's when there is one
        row["void_fraction_instances"] = s["void_fraction_instances"]
    for key in ("mean_diameter_px", "sauter_diameter_px", "mean_diameter_um", "sauter_diameter_um"):
        if key in s:
            row[key] = s[key]
    for name, n in s.get("count_per_class", {}).items():
        row[f"count_{name}"] = n
    if result.track_ids is not None:
        row["departures"] = len(result.events)
    row["infer_ms"] = result.timings.get("infer", 0.0)
    return row


class VideoSink:
    """Annotated frames to a video; the file appears complete on release.

    Args:
        path: ``.mp4``, ``.avi``, ... file.
        fps: the video's rate: the source's frame rate; with ``follow_clock`` only a fallback.
        follow_clock: place frames by their capture time (live sources): the rate is measured over the
            first frames, and each frame is held until the next one's time, so the video lasts as long
            as the run and an outage plays as a still frame. Otherwise one video frame per frame written.
    """

    def __init__(self, path: str | Path, fps: float, follow_clock: bool = False) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.follow_clock = follow_clock
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC:
            raise MaskrtError(f"--save {self.path}: use one of {', '.join(FOURCC)}", path=None)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._writer: cv2.VideoWriter | None = None
        self._pending: list[tuple[np.ndarray, float]] = []  # held back while the rate is measured
        self._clock_t0: float | None = None
        self._last: np.ndarray | None = None
        self.frames = 0
        self.processed = 0

    def write(self, frame: np.ndarray, t: float | None = None) -> None:
        """Add one processed frame; ``t`` is its capture time in seconds (used with ``follow_clock``)."""
        self.processed += 1
        if not self.follow_clock or t is None:
            self._emit(frame)
            return
        if self._clock_t0 is None:
            self._pending.append((frame, t))
            if len(self._pending) < RATE_FRAMES and t - self._pending[0][1] < RATE_WINDOW_S:
                return
            self._start_clock()
            return
        self._on_clock(frame, t)

    def _start_clock(self) -> None:
        """Fix the video's rate from the frames held back, then write them on the clock."""
        pending, self._pending = self._pending, []
        span = pending[-1][1] - pending[0][1]
        if len(pending) > 1 and span > 0:
            self.fps = round(min(max((len(pending) - 1) / span, 1.0), 120.0), 2)
        self._clock_t0 = pending[0][1]
        for frame, t in pending:
            self._on_clock(frame, t)

    def _on_clock(self, frame: np.ndarray, t: float) -> None:
        assert self._clock_t0 is not None
        due = round((t - self._clock_t0) * self.fps)  # the video frame at which this frame was captured
        while self._last is not None and self.frames < due:
            self._emit(self._last)  # the previous frame stays on screen until this one arrives
        if self.frames <= due:
            self._emit(frame)  # (a frame processed faster than the video's rate is shown by the next hold)
        self._last = frame

    def describe(self) -> dict[str, Any]:
        """What the video holds, for the run's summary."""
        timeline = (
            "capture time: each processed frame held until the next one was captured"
            if self.follow_clock
            else "one video frame per processed frame at the source's rate"
        )
        return {"path": str(self.path), "frames": self.frames, "processed": self.processed,
                "fps": self.fps, "duration_s": self.frames / self.fps if self.fps else 0.0, "timeline": timeline}

    def _emit(self, frame: np.ndarray) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            fourcc = cv2.VideoWriter.fourcc(*FOURCC[self.path.suffix.lower()])
            self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise MaskrtError(
                    f"--save {self.path}: OpenCV could not open a video writer; try a .avi file"
                )
            self._size = (w, h)
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size)
        self._writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        """Release the writer and move the finished file onto its name (nothing is written for 0 frames)."""
        try:
            if self._pending:  # a run shorter than the measuring window
                self._start_clock()
        finally:
            if self._writer is not None:
                self._writer.release()
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self._tmp, 0o666 & ~umask)  # a temp file is private; the video is an ordinary file
                self._ctx.__exit__(None, None, None)
            else:
                self._ctx.__exit__(RuntimeError, RuntimeError("no frames"), None)  # removes the temp file


class MaskSink:
    """One 16-bit label-map PNG per frame (0 background; track id or instance number), or COCO RLE JSON."""

    def __init__(self, folder: str | Path, fmt: str = "png") -> None:
        if fmt not in ("png", "rle"):
            raise MaskrtError(f"--masks-format {fmt!r}: use png or rle")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fmt = fmt

    def write(self, result: StreamResult) -> None:
        inst = result.instances
        ids = result.track_ids
        if self.fmt == "rle":
            items = [
                {"instance": i, "track_id": int(ids[i]) if ids is not None else None, **inst.rle(i)}
                for i in range(len(inst))
            ]
            with atomic_open(self.folder / f"frame_{result.index:06d}.json") as f:
                json.dump({"frame": result.index, "size": list(inst.frame_hw), "masks": items}, f)
            return
        labels = np.zeros(inst.frame_hw, dtype=np.uint16)
        for i in np.argsort(inst.scores, kind="stable").tolist():  # best score painted last
            x0, y0, x1, y1 = (int(v) for v in inst.regions[i])
            value = int(ids[i]) if ids is not None and ids[i] >= 0 else i + 1
            if x1 > x0 and y1 > y0:
                labels[y0:y1, x0:x1][inst.crops[i]] = min(value, 65535)
        with atomic_path(self.folder / f"frame_{result.index:06d}.png") as tmp:
            if not cv2.imwrite(str(tmp), labels):
                raise MaskrtError(f"{self.folder}: could not write mask PNGs; check the folder is writable")


class Outputs:
    """All requested outputs of a run; ``write`` each result, ``close`` once (also after an error).

    Args:
        options: which outputs.
        fps: the source's frame rate (the video's rate, unless ``follow_clock``).
        status: draw the status line on the overlay.
        follow_clock: the video follows the frames' capture times (live sources; see :class:`VideoSink`).
        template: a result whose columns give each table its header when no frame is processed
            (:meth:`~maskrt.runtime.stream.Stream.template`).
    """

    def __init__(
        self,
        options: OutputOptions,
        fps: float,
        status: bool = True,
        *,
        follow_clock: bool = False,
        template: StreamResult | None = None,
    ) -> None:
        self.options = options
        self.quit_requested = False
        self._opened: list[Any] = []
        self._recent: deque[float] = deque(maxlen=30)
        self._status = status
        heads: dict[str, list[str] | None] = {"csv": None, "instances": None, "tracks": None}
        if template is not None:
            heads["csv"] = list(frame_row(template))
            heads["instances"] = list(_instance_rows(template)[0]) if template.measurements else None
            heads["tracks"] = list(template.finished_tracks[0]) if template.finished_tracks else None
        try:
            if options.show:
                check_display()
            self.video = (
                _opening("--save", options.save, lambda: VideoSink(options.save, fps, follow_clock))
                if options.save
                else None
            )
            self.frames = self.instances = self.tracks = None
            for name in ("csv", "instances", "tracks"):
                path = getattr(options, name)
                if path:
                    table = _opening(f"--{name}", path, lambda p=path, h=heads[name]: _Table(p, h))
                    setattr(self, "frames" if name == "csv" else name, table)
            self.jsonl: IO[str] | None = (
                _opening("--jsonl", options.jsonl, lambda: open(options.jsonl, "w", encoding="utf-8"))  # noqa: SIM115
                if options.jsonl
                else None
            )
            self.masks = (
                _opening("--save-masks", options.save_masks, lambda: MaskSink(options.save_masks, options.masks_format))
                if options.save_masks
                else None
            )
        except BaseException:
            for name in ("video", "frames", "instances", "tracks", "jsonl"):
                obj = getattr(self, name, None)
                if obj is not None:
                    obj.close()
            raise

    @property
    def needs_drawing(self) -> bool:
        return bool(self.options.show or self.video is not None)

    def write(self, result: StreamResult) -> None:
        """Write one processed frame to every output."""
        now = time.perf_counter()
        self._recent.append(now)
        if self.frames is not None:
            self.frames.write([frame_row(result)])
        if self.instances is not None:
            self.instances.write(_instance_rows(result))
        if self.tracks is not None and result.finished_tracks:
            self.tracks.write(result.finished_tracks)
        if self.jsonl is not None:
            self._write_jsonl(result)
        if self.masks is not None:
            self.masks.write(result)
        if self.needs_drawing:
            view = self.draw(result)
            if self.video is not None:
                self.video.write(view, result.t_capture or None)  # the wall clock, also under --fps-physical
            if self.options.show:
                cv2.imshow("maskrt", view)
                if (cv2.waitKey(1) & 0xFF) in (ord("q"), 27):
                    self.quit_requested = True

    def draw(self, result: StreamResult) -> np.ndarray:
        """The annotated frame: masks, ids when tracking, and a status line (FPS, count, void fraction)."""
        from maskrt.runtime.draw import draw_overlay

        status = None
        if self._status:
            span = self._recent[-1] - self._recent[0] if len(self._recent) > 1 else 0.0
            fps = (len(self._recent) - 1) / span if span > 0 else 0.0
            s = result.stats
            status = f"#{result.index}  {fps:.1f} FPS  n={s['count']}  void={100 * s['void_fraction']:.1f}%"
        ids = result.track_ids if result.track_ids is not None else None
        view = draw_overlay(
            result.frame, result.instances, boxes=self.options.draw_boxes, labels=self.options.labels, ids=ids,
            status=status,
        )
        roi = result.stats.get("roi")
        if roi and list(roi) != [0, 0, result.frame.shape[1], result.frame.shape[0]]:
            cv2.rectangle(view, (roi[0], roi[1]), (roi[2] - 1, roi[3] - 1), (0, 255, 255), 1)
        return view

    def _write_jsonl(self, result: StreamResult) -> None:
        assert self.jsonl is not None
        inst = result.instances
        instances = []
        for i, r in enumerate(result.measurements):
            instances.append({**r, "box": [round(float(v), 2) for v in inst.boxes[i]], "rle": inst.rle(i)})
        record = {
            "frame": result.index,
            "stats": result.stats,
            "instances": instances,
            "events": result.events,
            "timings_ms": {k: round(v, 3) for k, v in result.timings.items()},
        }
        self.jsonl.write(json.dumps(record, default=_json_default) + "\n")
        self.jsonl.flush()

    def write_final_tracks(self, rows: list[dict[str, Any]]) -> None:
        """Write the summaries of tracks still alive at the end."""
        if self.tracks is not None:
            self.tracks.write(rows)

    def close(self) -> None:
        """Flush and close everything; the video is released and renamed onto its name."""
        errors = []
        for name in ("video", "frames", "instances", "tracks", "jsonl"):
            obj = getattr(self, name, None)
            if obj is None:
                continue
            try:
                obj.close()
            except Exception as exc:  # noqa: BLE001 (close the others, then report)
                errors.append(f"{name}: {exc}")
        if self.options.show:
            try:
                cv2.destroyAllWindows()
            except cv2.error:
                pass
        if errors:
            log.error("closing outputs: %s", "; ".join(errors))


def _instance_rows(result: StreamResult) -> list[dict[str, Any]]:
    """The per-instance CSV rows of one result: frame, time, track id, then the measurements."""
    rows = []
    for r in result.measurements:
        row: dict[str, Any] = {"frame": result.index, "time_s": result.stats["time_s"]}
        if "track_id" in r:
            row["track_id"] = r["track_id"]
        row.update(r)
        rows.append(row)
    return rows


def _opening(option: str, path: str | Path, make: Any) -> Any:
    """``make()``, with an OS error turned into one line naming the option and the path."""
    try:
        return make()
    except OSError as exc:
        raise MaskrtError(
            f"{option} {path}: cannot write it ({exc.strerror or exc}); choose a writable path"
        ) from None


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
