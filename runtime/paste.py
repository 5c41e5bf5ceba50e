"""Paste mask-head probabilities (M x M per detection) into frame coordinates on the host.

Two pastes, both touching only the pixels inside each box (never a full frame per detection):

- ``precise`` (the runtime's default): the M x M map is resampled onto the frame pixels its float box
  covers, each frame pixel centre mapped back to the mask grid the way the mask head's training targets
  were sampled (torchvision's ``roi_align`` with ``aligned=False`` at the model's input scale). This is
  what detectron2 does. For objects a few pixels across it is the difference between a usable mask and
  an inflated one: on real 5 px bubbles the ground truth sent through a 28 x 28 box mask and pasted back
  keeps union IoU 1.00 this way and 0.63 with the legacy paste (``benchmarks/real_footage.py --ceiling``).
- ``torchvision``: the same as torchvision's ``paste_masks_in_image`` (1-pixel zero border, box expanded
  by ``(M + 2) / M``, truncated to integers, bilinear resize), for parity checks against the PyTorch
  model's own full-resolution masks.
"""

from __future__ import annotations

import cv2
import numpy as np

PASTE_MODES = ("precise", "torchvision")


def expanded_boxes(boxes: np.ndarray, mask_size: int, padding: int = 1) -> np.ndarray:
    """Integer boxes ``(N, 4)`` expanded to cover the padded mask, as torchvision does."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scale = np.float32((mask_size + 2 * padding) / mask_size)
    w_half = (boxes[:, 2] - boxes[:, 0]) * np.float32(0.5) * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * np.float32(0.5) * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * np.float32(0.5)
    y_c = (boxes[:, 3] + boxes[:, 1]) * np.float32(0.5)
    out = np.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], axis=1)
    return np.trunc(out).astype(np.int64)  # torch's .to(int64) truncates toward zero


def paste_mask(
    prob: np.ndarray, box: np.ndarray, frame_hw: tuple[int, int], threshold: float = 0.5, padding: int = 1
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Paste one ``(M, M)`` probability map for an already expanded integer ``box``.

    Returns:
        ``((x0, y0, x1, y1), crop)``: the clipped region in frame pixels (x1, y1 exclusive) and the
        boolean mask of that region. The region is empty (x1 <= x0) when the box lies outside the frame.
    """
    im_h, im_w = frame_hw
    bx0, by0, bx1, by1 = (int(v) for v in box)
    w = max(bx1 - bx0 + 1, 1)
    h = max(by1 - by0 + 1, 1)
    x0, x1 = max(bx0, 0), min(bx1 + 1, im_w)
    y0, y1 = max(by0, 0), min(by1 + 1, im_h)
    if x1 <= x0 or y1 <= y0:
        return (x0, y0, x0, y0), np.zeros((0, 0), dtype=bool)
    m = np.asarray(prob, dtype=np.float32)
    if padding:
        m = np.pad(m, padding)
    resized = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    crop = resized[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0] > threshold
    return (x0, y0, x1, y1), crop


def paste_mask_precise(
    prob: np.ndarray, box: np.ndarray, frame_hw: tuple[int, int], threshold: float = 0.5, shift: float = 0.0
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """Paste one ``(M, M)`` map over the float xyxy frame ``box`` by sub-pixel resampling.

    Frame pixel ``X`` (centre ``X + 0.5``) reads the map at ``u = (X + 0.5 - x0 - shift) * M / w - 0.5``
    (bilinear, zero outside the map). ``shift`` is the half input pixel by which ``roi_align(aligned=False)``
    offsets the training targets, in frame pixels (``0.5 / scale``).

    Returns:
        ``((x0, y0, x1, y1), crop)`` as :func:`paste_mask`.
    """
    im_h, im_w = frame_hw
    bx0, by0, bx1, by1 = (float(v) for v in box)
    x0, y0 = max(int(np.floor(bx0)), 0), max(int(np.floor(by0)), 0)
    x1, y1 = min(int(np.ceil(bx1)), im_w), min(int(np.ceil(by1)), im_h)
    if x1 <= x0 or y1 <= y0:
        return (x0, y0, x0, y0), np.zeros((0, 0), dtype=bool)
    m = np.asarray(prob, dtype=np.float32)
    sx = m.shape[1] / max(bx1 - bx0, 1e-3)
    sy = m.shape[0] / max(by1 - by0, 1e-3)
    warp = np.array(
        [[sx, 0.0, (x0 + 0.5 - bx0 - shift) * sx - 0.5], [0.0, sy, (y0 + 0.5 - by0 - shift) * sy - 0.5]],
        dtype=np.float64,
    )
    resized = cv2.warpAffine(
        m, warp, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0.0,
    )
    return (x0, y0, x1, y1), resized > threshold


def paste_masks(
    probs: np.ndarray,
    boxes: np.ndarray,
    frame_hw: tuple[int, int],
    threshold: float = 0.5,
    mode: str = "precise",
    scale: float = 1.0,
) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Paste ``(N, M, M)`` probabilities for ``(N, 4)`` xyxy frame boxes; one (region, crop) per detection.

    Args:
        mode: ``precise`` (sub-pixel, the default) or ``torchvision`` (its ``paste_masks_in_image``).
        scale: letterbox scale of the frame (input pixels = frame pixels * scale), for ``precise``.
    """
    probs = np.asarray(probs)
    if len(probs) == 0:
        return []
    if mode == "precise":
        shift = 0.5 / float(scale)
        return [paste_mask_precise(p, b, frame_hw, threshold, shift) for p, b in zip(probs, boxes)]
    if mode != "torchvision":
        raise ValueError(f"paste mode {mode!r}; choose one of {', '.join(PASTE_MODES)}")
    ebox = expanded_boxes(boxes, probs.shape[-1])
    return [paste_mask(p, b, frame_hw, threshold) for p, b in zip(probs, ebox)]


def full_mask(region: tuple[int, int, int, int], crop: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Expand one pasted crop to a full-frame boolean mask."""
    out = np.zeros(frame_hw, dtype=bool)
    x0, y0, x1, y1 = region
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = crop
    return out
