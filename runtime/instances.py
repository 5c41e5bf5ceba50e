"""``Instances``: the runtime's result for one frame, a small numpy container (detectron2's idea).

All per-instance fields share one length and are filtered together with one index::

    inst = seg(frame)
    big = inst[inst.areas > 500]          # boolean index
    top = inst[:5]                        # slice (instances are sorted by score)
    for i in range(len(big)):
        print(big.class_names[big.class_ids[i]], big.scores[i], big.boxes[i])

Boxes are xyxy in frame pixels (float32, x1/y1 are the right/bottom edges). Masks are kept cropped:
``regions[i] = (x0, y0, x1, y1)`` (ints, x1/y1 exclusive) and ``crops[i]`` the boolean mask of that
region, so memory scales with the objects, not the frame. ``masks`` builds the full-frame ``(N, H, W)``
boolean stack on demand.

A model with the optional ``phase`` output (:mod:`maskrt.artifact`) also gives ``phase``: one float32
``(H, W)`` map of the frame, the probability that a pixel belongs to the dispersed phase (the vapour of
bubbles, the liquid of droplets; inside any instance, merged patches and liquid islands included). It belongs
to the frame, not to an instance: indexing keeps it as it is. ``void_fraction()`` reads it (the union of the
masks without one). Models without the output give ``phase = None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from maskrt import rle as rle_codec


class Instances:
    """Detected instances of one frame: boxes, scores, class ids, and masks cropped per box.

    Args:
        boxes: ``(N, 4)`` xyxy boxes in frame pixels.
        scores: ``(N,)`` confidences.
        class_ids: ``(N,)`` 0-based indices into ``class_names``.
        class_names: the model's class names (all of them, not per instance).
        frame_hw: ``(height, width)`` of the frame the instances live in.
        regions: ``(N, 4)`` int ``x0, y0, x1, y1`` (exclusive) of each mask crop, inside the frame.
        crops: ``N`` boolean arrays of shape ``(y1 - y0, x1 - x0)``.
        phase: float32 ``(H, W)`` dispersed-phase probabilities of the whole frame, or ``None`` (no phase output).
    """

    def __init__(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        class_ids: np.ndarray,
        class_names: Sequence[str],
        frame_hw: tuple[int, int],
        regions: np.ndarray | None = None,
        crops: Sequence[np.ndarray] | None = None,
        phase: np.ndarray | None = None,
    ) -> None:
        self.boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        n = len(self.boxes)
        self.scores = np.asarray(scores, dtype=np.float32).reshape(n)
        self.class_ids = np.asarray(class_ids, dtype=np.int64).reshape(n)
        self.class_names = list(class_names)
        self.frame_hw = (int(frame_hw[0]), int(frame_hw[1]))
        if regions is None or crops is None:
            regions = np.zeros((n, 4), dtype=np.int64)
            crops = [np.zeros((0, 0), dtype=bool) for _ in range(n)]
        self.regions = np.asarray(regions, dtype=np.int64).reshape(n, 4)
        self.crops = list(crops)
        if len(self.crops) != n:
            raise ValueError(f"{len(self.crops)} mask crops for {n} instances")
        if phase is not None:
            phase = np.asarray(phase, dtype=np.float32)
            if phase.shape != self.frame_hw:
                raise ValueError(f"phase map of shape {phase.shape} for a frame of {self.frame_hw}")
        self.phase: np.ndarray | None = phase
        self._masks: np.ndarray | None = None

    @classmethod
    def empty(
        cls, frame_hw: tuple[int, int], class_names: Sequence[str] = (), phase: np.ndarray | None = None
    ) -> Instances:
        """No instances in a frame of ``frame_hw`` (a phase map may still have some dispersed phase)."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0), class_names, frame_hw, phase=phase)

    @classmethod
    def from_masks(
        cls,
        masks: np.ndarray,
        scores: np.ndarray | None = None,
        class_ids: np.ndarray | None = None,
        class_names: Sequence[str] = ("object",),
        phase: np.ndarray | None = None,
    ) -> Instances:
        """Build instances from full-frame boolean masks ``(N, H, W)`` (boxes are the masks' extents).

        Useful for tests, ground truth, and measuring masks that came from elsewhere; ``phase`` is an
        optional ``(H, W)`` phase map of the frame.
        """
        masks = np.asarray(masks, dtype=bool)
        n, h, w = masks.shape
        boxes = np.zeros((n, 4), dtype=np.float32)
        regions = np.zeros((n, 4), dtype=np.int64)
        crops = []
        for i, m in enumerate(masks):
            ys = np.flatnonzero(m.any(axis=1))
            xs = np.flatnonzero(m.any(axis=0))
            if len(xs) == 0:
                crops.append(np.zeros((0, 0), dtype=bool))
                continue
            x0, x1, y0, y1 = int(xs[0]), int(xs[-1]) + 1, int(ys[0]), int(ys[-1]) + 1
            boxes[i] = (x0, y0, x1, y1)
            regions[i] = (x0, y0, x1, y1)
            crops.append(m[y0:y1, x0:x1].copy())
        scores = np.ones(n, dtype=np.float32) if scores is None else scores
        class_ids = np.zeros(n, dtype=np.int64) if class_ids is None else class_ids
        return cls(boxes, scores, class_ids, class_names, (h, w), regions, crops, phase=phase)

    # -- container protocol -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int] | Sequence[bool]) -> Instances:
        """Select instances with an int, a slice, a boolean mask or an integer index array."""
        if isinstance(index, (int, np.integer)):
            i = int(index)
            if not -len(self) <= i < len(self):
                raise IndexError(f"instance {i} out of range for {len(self)} instances")
            idx = np.array([i % len(self)], dtype=np.int64)
        elif isinstance(index, slice):
            idx = np.arange(len(self))[index]
        else:
            arr = np.asarray(index)
            if arr.dtype == np.bool_:
                if arr.shape != (len(self),):
                    raise IndexError(f"boolean index of shape {arr.shape} for {len(self)} instances")
                idx = np.flatnonzero(arr)
            else:
                idx = arr.astype(np.int64).reshape(-1)
        out = Instances(
            self.boxes[idx],
            self.scores[idx],
            self.class_ids[idx],
            self.class_names,
            self.frame_hw,
            self.regions[idx],
            [self.crops[int(i)] for i in idx],
            phase=self.phase,  # the frame's map, whichever instances are kept
        )
        if self._masks is not None:
            out._masks = self._masks[idx]
        return out

    def __repr__(self) -> str:
        phase = ", phase" if self.phase is not None else ""
        return f"Instances(num={len(self)}, frame_hw={self.frame_hw}, classes={self.class_names}{phase})"

    # -- masks --------------------------------------------------------------------------------
    @property
    def areas(self) -> np.ndarray:
        """Mask pixel counts ``(N,)`` int64, counted on the crops (cheap)."""
        return np.array([int(np.count_nonzero(c)) for c in self.crops], dtype=np.int64)

    @property
    def labels(self) -> list[str]:
        """Class name of each instance."""
        return [self.class_names[int(c)] if 0 <= c < len(self.class_names) else str(int(c)) for c in self.class_ids]

    def mask(self, i: int) -> np.ndarray:
        """Full-frame boolean mask ``(H, W)`` of instance ``i``."""
        out = np.zeros(self.frame_hw, dtype=bool)
        x0, y0, x1, y1 = (int(v) for v in self.regions[i])
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = self.crops[i]
        return out

    @property
    def masks(self) -> np.ndarray:
        """Full-frame boolean masks ``(N, H, W)``, built on first use and cached."""
        if self._masks is None:
            out = np.zeros((len(self), *self.frame_hw), dtype=bool)
            for i in range(len(self)):
                x0, y0, x1, y1 = (int(v) for v in self.regions[i])
                if x1 > x0 and y1 > y0:
                    out[i, y0:y1, x0:x1] = self.crops[i]
            self._masks = out
        return self._masks

    def void_fraction(self, threshold: float = 0.5, roi: tuple[int, int, int, int] | None = None) -> float:
        """Fraction of the ROI (the frame by default) in the dispersed phase.

        With a phase map: its pixels above ``threshold``. Without one: the pixels covered by any instance
        mask (``threshold`` unused), as :func:`~maskrt.runtime.measure.frame_stats` counts them.

        Args:
            threshold: phase probability above which a pixel is dispersed phase.
            roi: ``(x0, y0, x1, y1)`` in frame pixels, x1/y1 exclusive; clipped to the frame (empty: 0.0).
        """
        bounds = clip_roi(roi, self.frame_hw)
        if self.phase is None:
            return mask_union_fraction(self, bounds)
        x0, y0, x1, y1 = bounds
        inside = self.phase[y0:y1, x0:x1]
        return float(np.count_nonzero(inside > threshold) / inside.size) if inside.size else 0.0

    def label_map(self) -> np.ndarray:
        """``(H, W)`` int32 map: 0 background, ``i + 1`` where instance ``i`` is; higher scores win overlaps."""
        out = np.zeros(self.frame_hw, dtype=np.int32)
        order = np.argsort(-self.scores, kind="stable")[::-1]  # lowest score first, so the best is painted last
        for i in order.tolist():
            x0, y0, x1, y1 = (int(v) for v in self.regions[i])
            if x1 > x0 and y1 > y0:
                out[y0:y1, x0:x1][self.crops[i]] = i + 1
        return out

    def polygons(self, i: int | None = None, epsilon: float = 0.0) -> Any:
        """Outer contours of instance ``i`` as a list of ``(K, 2)`` float32 ``x, y`` arrays (frame pixels).

        Vertices are pixel centres (OpenCV's convention), so ``cv2.fillPoly`` of the result gives back the
        mask's outline. ``epsilon > 0`` simplifies each polygon (Douglas-Peucker, in pixels). With
        ``i=None``, returns one such list per instance.
        """
        if i is None:
            return [self.polygons(k, epsilon) for k in range(len(self))]
        x0, y0, x1, y1 = (int(v) for v in self.regions[i])
        crop = self.crops[i]
        if x1 <= x0 or y1 <= y0 or not crop.any():
            return []
        contours, _ = cv2.findContours(crop.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        out = []
        for c in contours:
            if epsilon > 0 and len(c) > 3:
                c = cv2.approxPolyDP(c, epsilon, True)
            pts = c.reshape(-1, 2).astype(np.float32) + np.array([x0, y0], dtype=np.float32)
            out.append(pts)
        out.sort(key=len, reverse=True)
        return out

    def rle(self, i: int, compressed: bool = True) -> dict[str, Any]:
        """COCO RLE ``{"size": [h, w], "counts": ...}`` of instance ``i`` over the full frame.

        Encoded from the crop: only the frame columns the box spans are scanned (COCO runs are
        column-major), so the cost follows the box, not the frame.
        """
        h, w = self.frame_hw
        x0, y0, x1, y1 = (int(v) for v in self.regions[i])
        if x1 <= x0 or y1 <= y0:
            counts = [h * w]
        else:
            cols = np.zeros((x1 - x0, h), dtype=bool)
            cols[:, y0:y1] = self.crops[i].T
            counts = rle_codec.mask_to_counts(cols.T)  # column-major order of the (h, x1 - x0) band
            if len(counts) % 2 == 0:  # ends on a run of ones: the zeros after the band start a new run
                counts.append(0)
            counts[0] += x0 * h
            counts[-1] += (w - x1) * h
            while len(counts) > 1 and counts[-1] == 0:
                counts.pop()
        return {"size": [h, w], "counts": rle_codec.counts_to_string(counts) if compressed else counts}

    # -- export -------------------------------------------------------------------------------
    def to_dicts(self) -> list[dict[str, Any]]:
        """Plain JSON-ready dicts, one per instance: class, score, box (xyxy), area in pixels."""
        areas = self.areas
        return [
            {
                "class_id": int(self.class_ids[i]),
                "class_name": self.labels[i],
                "score": round(float(self.scores[i]), 5),
                "box": [round(float(v), 2) for v in self.boxes[i]],
                "area_px": int(areas[i]),
            }
            for i in range(len(self))
        ]

    def to_coco_results(self, image_id: int, category_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """COCO "results" entries (``loadRes`` format): image_id, category_id, bbox xywh, score, RLE.

        Args:
            image_id: the image's id in the COCO ground truth.
            category_ids: COCO category id for each class index; default ``class_id + 1``.
        """
        out = []
        for i in range(len(self)):
            x0, y0, x1, y1 = (float(v) for v in self.boxes[i])
            cid = int(self.class_ids[i])
            out.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(category_ids[cid]) if category_ids is not None else cid + 1,
                    "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                    "score": round(float(self.scores[i]), 5),
                    "segmentation": self.rle(i),
                }
            )
        return out


def clip_roi(roi: Sequence[int] | None, frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """An ROI ``(x0, y0, x1, y1)`` (``None``: the whole frame) clipped to a frame of ``frame_hw``."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    x0, y0, x1, y1 = (int(v) for v in roi) if roi is not None else (0, 0, w, h)
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def mask_union_fraction(inst: Instances, bounds: tuple[int, int, int, int]) -> float:
    """Fraction of the (clipped) ``bounds`` covered by any of ``inst``'s masks; 0.0 for an empty region."""
    bx0, by0, bx1, by1 = bounds
    union = np.zeros((max(by1 - by0, 0), max(bx1 - bx0, 0)), dtype=bool)
    for (x0, y0, x1, y1), crop in zip(inst.regions.tolist(), inst.crops):
        ix0, iy0, ix1, iy1 = max(x0, bx0), max(y0, by0), min(x1, bx1), min(y1, by1)
        if ix1 > ix0 and iy1 > iy0:
            union[iy0 - by0 : iy1 - by0, ix0 - bx0 : ix1 - bx0] |= crop[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0]
    return float(union.mean()) if union.size else 0.0
