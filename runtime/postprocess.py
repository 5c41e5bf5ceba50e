"""Turn the model's fixed-size outputs into :class:`Instances` in frame coordinates.

Boxes are divided by the letterbox scale and clipped to the frame; detections are filtered by score
and class; each ``M x M`` mask is pasted on the host only inside its box (:mod:`maskrt.runtime.paste`:
sub-pixel by default, or exactly as torchvision's ``paste_masks_in_image`` for parity checks). A model
with the optional ``phase`` output (:mod:`maskrt.artifact`) also gives a per-pixel map of the dispersed
phase, cut out of the letterbox and resized to the frame by :func:`phase_map`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import cv2
import numpy as np

from maskrt.artifact import PHASE_OUTPUT
from maskrt.runtime.instances import Instances
from maskrt.runtime.paste import paste_masks
from maskrt.runtime.preprocess import resized_hw


def phase_map(phase: np.ndarray, scale: float, frame_hw: tuple[int, int], stride: int) -> np.ndarray:
    """One image's ``phase`` output ``[H / S, W / S]`` -> float32 probabilities ``[h, w]`` over the frame.

    The letterbox put the frame at the input's top-left corner, resized to ``(rows, cols)`` input pixels
    (:func:`~maskrt.runtime.preprocess.resized_hw`, ``round(h * s)`` by ``round(w * s)``), so it covers the
    first ``rows / S`` by ``cols / S`` cells of the map: an exact, usually fractional extent. The cells that
    touch it are cut out and resized bilinearly by exactly ``h / (rows / S)`` and ``w / (cols / S)``
    (``cv2.resize`` with ``fx``/``fy``, not to a rounded size): the centre of frame pixel ``x`` samples the map
    at ``(x + 0.5) * cols / (w * S) - 0.5``. Cells past the frame's extent are never sampled (edge pixels clamp
    to the last cut cell); when the extent ends inside a cell, that cell is used as the model gave it, in part
    computed on padding.

    Args:
        phase: the map of one batch item (``[H / S, W / S]``; a leading 1 is dropped), any float dtype.
        scale: the letterbox scale ``s`` of this frame.
        frame_hw: ``(h, w)`` of the frame.
        stride: ``S``, the metadata's ``phase_stride``.
    """
    h, w = int(frame_hw[0]), int(frame_hw[1])
    grid = np.asarray(phase, dtype=np.float32)
    cells_h, cells_w = int(grid.shape[-2]), int(grid.shape[-1])
    grid = grid.reshape(cells_h, cells_w)
    rows, cols = resized_hw((h, w), scale, (cells_h * stride, cells_w * stride))
    ext_h, ext_w = rows / stride, cols / stride  # the frame's extent in cells (exact floats)
    crop = np.ascontiguousarray(grid[: min(cells_h, math.ceil(ext_h)), : min(cells_w, math.ceil(ext_w))])
    out = cv2.resize(crop, None, fx=w / ext_w, fy=h / ext_h, interpolation=cv2.INTER_LINEAR)
    if out.shape[0] < h or out.shape[1] < w:  # a cut short by the map's edge, or rounding of the size
        out = np.pad(out, ((0, max(0, h - out.shape[0])), (0, max(0, w - out.shape[1]))), mode="edge")
    return np.ascontiguousarray(out[:h, :w])


def postprocess(
    outputs: dict[str, np.ndarray],
    scale: float,
    frame_hw: tuple[int, int],
    class_names: Sequence[str],
    conf: float = 0.5,
    mask_threshold: float = 0.5,
    class_ids: Collection[int] | None = None,
    index: int = 0,
    paste: str = "precise",
    phase_stride: int = 0,
) -> Instances:
    """Decode batch item ``index`` of the model outputs into frame-space instances.

    Args:
        outputs: ``boxes``, ``scores``, ``labels``, ``masks``, ``num_dets`` (and optionally ``phase``) as the
            artifact contract defines.
        scale: letterbox scale ``s`` used for this frame (input pixels = frame pixels * s).
        frame_hw: ``(height, width)`` of the original frame.
        class_names: the model's class names (labels are 1-based into this list).
        conf: keep detections with ``score >= conf``.
        mask_threshold: probability above which a mask pixel is foreground.
        class_ids: 0-based class indices to keep (``None``: all).
        index: which batch item to decode.
        paste: ``precise`` (sub-pixel; right for objects a few pixels across) or ``torchvision``.
        phase_stride: the model's ``phase_stride``; when it is set and ``outputs`` hold ``phase``, the
            instances get :attr:`Instances.phase` (:func:`phase_map`), else ``None``. The phase map is the
            whole frame's, whatever the score and class filters keep.
    """
    h, w = int(frame_hw[0]), int(frame_hw[1])
    phase = None
    if phase_stride and PHASE_OUTPUT in outputs:
        phase = phase_map(np.asarray(outputs[PHASE_OUTPUT])[index], scale, (h, w), int(phase_stride))
    n = int(np.asarray(outputs["num_dets"]).reshape(-1)[index])
    scores = np.asarray(outputs["scores"][index][:n], dtype=np.float32)
    labels = np.asarray(outputs["labels"][index][:n]).astype(np.int64) - 1
    keep = (scores >= conf) & (labels >= 0) & (labels < len(class_names))
    if class_ids is not None:
        keep &= np.isin(labels, np.fromiter(class_ids, dtype=np.int64))
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return Instances.empty((h, w), class_names, phase=phase)
    boxes = np.asarray(outputs["boxes"][index][idx], dtype=np.float32) / np.float32(scale)
    np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
    masks = np.asarray(outputs["masks"][index])
    masks = masks.reshape(masks.shape[0], masks.shape[-2], masks.shape[-1])[idx]
    pasted = paste_masks(masks, boxes, (h, w), mask_threshold, paste, scale)
    regions = np.array([r for r, _ in pasted], dtype=np.int64).reshape(-1, 4)
    crops = [c for _, c in pasted]
    return Instances(boxes, scores[idx], labels[idx], class_names, (h, w), regions, crops, phase=phase)
