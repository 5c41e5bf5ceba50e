"""Box overlap in plain numpy: the one ``box_iou`` of the tracker (``maskrt run --track``) and the export's parity check.

Boxes are ``(x0, y0, x1, y1)`` in pixels, ``x1 > x0`` for a box with area. A box with no area (a point or a
line, as a model may give for a vanishing object) overlaps nothing but the same box: two equal empty boxes
have IoU 1 (one detection seen twice, as parity compares), two different ones 0 (nothing to track by).
"""

from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4 xyxy) with every box in ``b`` (M, 4): an (N, M) float64 array.

    Example:
        >>> box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [3, 3, 3, 3]])).round(3).tolist()
        [[0.333, 0.0]]
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    same = np.all(a[:, None, :] == b[None, :, :], axis=2)
    return np.where(union > 0, inter / np.maximum(union, 1e-12), same * 1.0)
