"""Paste mask-head probabilities (M x M per detection) into frame coordinates on the host.

This mirrors torchvision's ``paste_masks_in_image`` (1-pixel zero border, box expanded by
``(M + 2) / M``, integer box, bilinear resize with half-pixel centres), so that masks pasted here
match the PyTorch model's full-resolution masks, but it only ever touches the pixels inside each
box instead of allocating a full frame per detection.
"""

from __future__ import annotations

import cv2
import numpy as np


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


def paste_masks(
    probs: np.ndarray, boxes: np.ndarray, frame_hw: tuple[int, int], threshold: float = 0.5
) -> list[tuple[tuple[int, int, int, int], np.ndarray]]:
    """Paste ``(N, M, M)`` probabilities for ``(N, 4)`` xyxy frame boxes; one (region, crop) per detection."""
    probs = np.asarray(probs)
    if len(probs) == 0:
        return []
    ebox = expanded_boxes(boxes, probs.shape[-1])
    return [paste_mask(p, b, frame_hw, threshold) for p, b in zip(probs, ebox)]


def full_mask(region: tuple[int, int, int, int], crop: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Expand one pasted crop to a full-frame boolean mask."""
    out = np.zeros(frame_hw, dtype=bool)
    x0, y0, x1, y1 = region
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = crop
    return out
