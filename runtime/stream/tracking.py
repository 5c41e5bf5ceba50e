"""Persistent instance IDs across frames, per-track growth and motion, and departure events.

The tracker follows ByteTrack's two-stage association: detections scoring at least ``high_score``
are matched first to every live track by IoU with the track's motion-predicted box; the remaining
tracks then take low-score detections (which continue a track but never start one). A last stage
matches small, fast objects whose boxes no longer overlap by centre distance relative to their size.
Assignment is optimal (Hungarian method in numpy).

Physical units: ``um_per_px`` turns pixel lengths into micrometres, ``seconds_per_frame`` (from
``--fps-physical`` for high-speed recordings, else the source's frame rate) turns frames into seconds.

Example:
    >>> tracker = Tracker(seconds_per_frame=1 / 1000, um_per_px=2.5, wall=Wall.parse("y=420"))
    >>> ids = tracker.update(frame_index, boxes, scores, class_ids, areas_px, centroids)
    >>> tracker.events        # departures seen in this frame
    >>> tracker.finish()      # per-track summaries of every track, finished or live
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maskrt.errors import MaskrtError
from maskrt.runtime.boxes import box_iou
from maskrt.runtime.stream.matching import match


@dataclass(frozen=True)
class Wall:
    """A wall or heater line (``y=420``, ``x=100``) or region (``x,y,w,h``) that bubbles depart from.

    A bubble "touches" a line while its box reaches it (within ``tol`` pixels) and a region while its
    centroid is inside; a departure is the step from touching to not touching.
    """

    kind: str  # "x" | "y" | "region"
    value: tuple[float, ...]
    tol: float = 2.0

    @classmethod
    def parse(cls, text: str) -> Wall:
        """Parse ``y=420``, ``x=100`` or ``x,y,w,h``; raise MaskrtError with the accepted forms."""
        t = text.replace(" ", "").lower()
        try:
            if t[:2] in ("y=", "x="):
                return cls(t[0], (float(t[2:]),))
            parts = [float(p) for p in t.split(",")]
            if len(parts) == 4 and parts[2] > 0 and parts[3] > 0:
                return cls("region", tuple(parts))
        except ValueError:
            pass
        raise MaskrtError(f"--wall {text!r}: give a line 'y=420' or 'x=100', or a region 'x,y,w,h' in pixels")

    def touches(self, box: np.ndarray, centroid: np.ndarray) -> bool:
        """Whether an object with this box (xyxy) and centroid is on the wall or in the region."""
        if self.kind == "y":
            return bool(box[1] - self.tol <= self.value[0] <= box[3] + self.tol)
        if self.kind == "x":
            return bool(box[0] - self.tol <= self.value[0] <= box[2] + self.tol)
        x, y, w, h = self.value
        return bool(x <= centroid[0] < x + w and y <= centroid[1] < y + h)


@dataclass
class Track:
    """One object followed over time, with its history in pixels and frames."""

    id: int
    class_id: int
    box: np.ndarray
    first_frame: int
    last_frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    frames: list[int] = field(default_factory=list)
    areas: list[float] = field(default_factory=list)
    centroids: list[tuple[float, float]] = field(default_factory=list)
    touching: bool = False
    touch_since: int | None = None
    departures: list[dict[str, Any]] = field(default_factory=list)

    def predicted_box(self, frame: int) -> np.ndarray:
        """The box moved by the track's velocity to ``frame``."""
        gap = frame - self.last_frame
        return self.box + np.tile(self.velocity * gap, 2)

    @property
    def diameter_px(self) -> float:
        """Equivalent diameter of the latest observation, in pixels."""
        return 2.0 * math.sqrt(max(self.areas[-1], 0.0) / math.pi) if self.areas else 0.0


class Tracker:
    """ByteTrack-style multi-object tracker over boxes, with growth, velocity and departure bookkeeping.

    Args:
        high_score: detections at or above this start and continue tracks; below it they only continue.
        low_score: detections below this are ignored.
        min_iou: least IoU (with the predicted box) for a match in the first stage.
        min_iou_low: least IoU for the low-score stage.
        max_dist: centre distance, in object diameters, for the last (distance) stage.
        max_lost: frames a track may go unseen before it is finished.
        seconds_per_frame: physical time between consecutive frame indices.
        um_per_px: length calibration (None: lengths stay in pixels).
        wall: line or region whose departures are recorded.
    """

    def __init__(
        self,
        *,
        high_score: float = 0.5,
        low_score: float = 0.1,
        min_iou: float = 0.2,
        min_iou_low: float = 0.4,
        max_dist: float = 1.0,
        max_lost: int = 10,
        seconds_per_frame: float = 1 / 30,
        um_per_px: float | None = None,
        wall: Wall | None = None,
    ) -> None:
        self.high_score, self.low_score = high_score, low_score
        self.min_iou, self.min_iou_low, self.max_dist = min_iou, min_iou_low, max_dist
        self.max_lost = max_lost
        self.seconds_per_frame = seconds_per_frame
        self.scale = um_per_px or 1.0
        self.unit = "um" if um_per_px else "px"
        self.wall = wall
        self.tracks: list[Track] = []
        self.finished: list[Track] = []
        self.events: list[dict[str, Any]] = []
        self.all_events: list[dict[str, Any]] = []
        self._next_id = 1

    def update(
        self,
        frame: int,
        boxes: np.ndarray,
        scores: np.ndarray,
        class_ids: np.ndarray | None = None,
        areas: np.ndarray | None = None,
        centroids: np.ndarray | None = None,
    ) -> np.ndarray:
        """Associate this frame's detections with tracks.

        Args:
            frame: the frame index (gaps from dropped frames are allowed).
            boxes: (N, 4) xyxy pixel boxes.
            scores: (N,) confidences.
            class_ids: (N,) class ids (0 when None).
            areas: (N,) mask areas in pixels (box area x pi/4 when None).
            centroids: (N, 2) mask centroids (box centres when None).

        Returns:
            (N,) int track id per detection; -1 for a low-score detection that continued no track.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        n = len(boxes)
        scores = np.asarray(scores, dtype=np.float64).reshape(n)
        class_ids = np.zeros(n, np.int64) if class_ids is None else np.asarray(class_ids).reshape(n)
        wh = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
        areas = (
            wh[:, 0] * wh[:, 1] * math.pi / 4 if areas is None else np.asarray(areas, np.float64).reshape(n)
        )
        centroids = (
            (boxes[:, :2] + boxes[:, 2:]) / 2
            if centroids is None
            else np.asarray(centroids, np.float64).reshape(n, 2)
        )
        self.events = []
        ids = np.full(n, -1, dtype=np.int64)
        high = [i for i in range(n) if scores[i] >= self.high_score]
        low = [i for i in range(n) if self.low_score <= scores[i] < self.high_score]
        tracks = list(range(len(self.tracks)))
        predicted = np.array([t.predicted_box(frame) for t in self.tracks]).reshape(-1, 4)

        def stage(
            dets: list[int], trk: list[int], cost: np.ndarray, max_cost: float
        ) -> tuple[list[int], list[int]]:
            pairs, un_t, un_d = match(cost, max_cost)
            for ti, di in pairs:
                self._observe(self.tracks[trk[ti]], frame, dets[di], boxes, areas, centroids, class_ids)
                ids[dets[di]] = self.tracks[trk[ti]].id
            return [trk[i] for i in un_t], [dets[i] for i in un_d]

        tracks, high_left = stage(
            high, tracks, 1.0 - box_iou(predicted[tracks], boxes[high]), 1.0 - self.min_iou
        )
        tracks, _ = stage(low, tracks, 1.0 - box_iou(predicted[tracks], boxes[low]), 1.0 - self.min_iou_low)
        if tracks and high_left:
            pc = (predicted[tracks, :2] + predicted[tracks, 2:]) / 2
            size = np.array([max(self.tracks[t].diameter_px, 1.0) for t in tracks])
            dist = np.linalg.norm(pc[:, None, :] - centroids[high_left][None, :, :], axis=2) / size[:, None]
            tracks, high_left = stage(high_left, tracks, dist, self.max_dist)
        for di in high_left:
            track = Track(self._next_id, int(class_ids[di]), boxes[di].copy(), frame, frame)
            self._next_id += 1
            self._observe(track, frame, di, boxes, areas, centroids, class_ids, new=True)
            self.tracks.append(track)
            ids[di] = track.id
        keep: list[Track] = []
        for track in self.tracks:
            (keep if frame - track.last_frame <= self.max_lost else self.finished).append(track)
        self.tracks = keep
        return ids

    def _observe(
        self,
        track: Track,
        frame: int,
        i: int,
        boxes: np.ndarray,
        areas: np.ndarray,
        centroids: np.ndarray,
        class_ids: np.ndarray,
        new: bool = False,
    ) -> None:
        if not new:
            gap = max(1, frame - track.last_frame)
            old_c = np.array(track.centroids[-1])
            v = (centroids[i] - old_c) / gap
            track.velocity = v if len(track.frames) == 1 else 0.5 * track.velocity + 0.5 * v
        track.box = boxes[i].copy()
        track.last_frame = frame
        track.class_id = int(class_ids[i])
        track.frames.append(frame)
        track.areas.append(float(areas[i]))
        track.centroids.append((float(centroids[i][0]), float(centroids[i][1])))
        if self.wall is None:
            return
        touching = self.wall.touches(boxes[i], centroids[i])
        if touching and not track.touching:
            track.touch_since = frame
        if track.touching and not touching:
            event = {
                "event": "departure",
                "track_id": track.id,
                "frame": frame,
                "time_s": frame * self.seconds_per_frame,
                "x": float(centroids[i][0]) * self.scale,
                "y": float(centroids[i][1]) * self.scale,
                f"diameter_{self.unit}": track.diameter_px * self.scale,
                "attached_frames": frame - (track.touch_since if track.touch_since is not None else frame),
            }
            track.departures.append(event)
            self.events.append(event)
            self.all_events.append(event)
        track.touching = touching

    def velocity(self, track_id: int) -> tuple[float, float]:
        """Current centroid velocity of a live track, in length units per second (0, 0 if unknown)."""
        for track in self.tracks:
            if track.id == track_id:
                v = track.velocity * self.scale / self.seconds_per_frame
                return float(v[0]), float(v[1])
        return 0.0, 0.0

    def summary(self, track: Track) -> dict[str, Any]:
        """One row of per-track results: lifetime, sizes, growth rate, velocity, departures."""
        u, s, dt = self.unit, self.scale, self.seconds_per_frame
        t = np.asarray(track.frames, dtype=np.float64) * dt
        d = 2.0 * np.sqrt(np.clip(np.asarray(track.areas), 0, None) / math.pi) * s
        c = np.asarray(track.centroids, dtype=np.float64) * s
        growth = vx = vy = 0.0
        if len(t) >= 2 and np.ptp(t) > 0:
            growth = float(np.polyfit(t, d, 1)[0])
            vx = float(np.polyfit(t, c[:, 0], 1)[0])
            vy = float(np.polyfit(t, c[:, 1], 1)[0])
        first_dep = track.departures[0] if track.departures else None
        return {
            "track_id": track.id,
            "class_id": track.class_id,
            "first_frame": track.first_frame,
            "last_frame": track.last_frame,
            "frames_seen": len(track.frames),
            "lifetime_s": (track.last_frame - track.first_frame) * dt,
            f"first_diameter_{u}": float(d[0]),
            f"last_diameter_{u}": float(d[-1]),
            f"max_diameter_{u}": float(d.max()),
            f"mean_diameter_{u}": float(d.mean()),
            f"growth_rate_{u}_per_s": growth,
            f"vx_{u}_per_s": vx,
            f"vy_{u}_per_s": vy,
            f"speed_{u}_per_s": math.hypot(vx, vy),
            "departures": len(track.departures),
            "departure_frame": first_dep["frame"] if first_dep else "",
            f"departure_diameter_{u}": first_dep[f"diameter_{u}"] if first_dep else "",
        }

    def pop_finished(self) -> list[dict[str, Any]]:
        """Summaries of tracks finished since the last call (for writing them as they end)."""
        done, self.finished = self.finished, []
        return [self.summary(t) for t in done]

    def finish(self) -> list[dict[str, Any]]:
        """End every track and return the summaries not yet popped, sorted by track id."""
        self.finished.extend(self.tracks)
        self.tracks = []
        return sorted(self.pop_finished(), key=lambda r: r["track_id"])
