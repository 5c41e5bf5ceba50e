"""Draw instances on a frame: translucent masks, contours, boxes, labels and a status line.

Blending touches only the pixels inside each box (OpenCV calls on the box, no float copies), so
drawing 100 instances on a large frame costs about as much as the masks' area, not frames x instances.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from maskrt.runtime.instances import Instances
from maskrt.runtime.preprocess import to_bgr

# 20 well-separated BGR colours (Tableau 20-like), cycled per instance or per track id
PALETTE = np.array(
    [
        (180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
        (75, 86, 140), (194, 119, 227), (34, 189, 188), (207, 190, 23), (127, 127, 127),
        (232, 199, 174), (120, 187, 255), (138, 223, 152), (150, 152, 255), (213, 176, 197),
        (148, 156, 196), (210, 182, 247), (141, 219, 219), (229, 218, 158), (199, 199, 199),
    ],
    dtype=np.uint8,
)


def colour(key: int) -> tuple[int, int, int]:
    """The palette colour (BGR) for an instance index or track id; stable for a given key."""
    c = PALETTE[(int(key) * 7) % len(PALETTE)]  # stride 7 keeps consecutive ids far apart in the palette
    return int(c[0]), int(c[1]), int(c[2])


def draw_overlay(
    frame: np.ndarray,
    inst: Instances,
    alpha: float = 0.45,
    contours: bool = True,
    boxes: bool = False,
    labels: bool = True,
    scores: bool = True,
    ids: Sequence[int] | np.ndarray | None = None,
    status: str | None = None,
) -> np.ndarray:
    """Return a BGR copy of ``frame`` with the instances drawn on it.

    Args:
        frame: BGR or grey frame (any depth; converted to 8-bit BGR).
        inst: instances of this frame.
        alpha: mask opacity (0 = contours only).
        contours: outline each mask.
        boxes: draw each box.
        labels: write the class name at each instance.
        scores: append the score to the label.
        ids: one track id per instance; colours then stay with the id across frames, and the id is written.
        status: a short line (FPS, count, void fraction...) drawn at the top-left.
    """
    out = to_bgr(frame).copy()
    h, w = out.shape[:2]
    font, fscale, thick = cv2.FONT_HERSHEY_SIMPLEX, max(0.35, min(h, w) / 1400), 1
    lw = max(1, round(min(h, w) / 700))
    names = inst.labels
    keys = [int(ids[i]) if ids is not None else i for i in range(len(inst))]
    if alpha > 0 and len(inst):
        _blend(out, inst, [colour(k) for k in keys], alpha)
    for i, key in enumerate(keys):
        col = colour(key)
        x0, y0, x1, y1 = (int(v) for v in inst.regions[i])
        if contours and x1 > x0 and y1 > y0:
            img = np.ascontiguousarray(inst.crops[i]).view(np.uint8)
            cs, _ = cv2.findContours(img, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, cs, -1, col, lw, lineType=cv2.LINE_8, offset=(x0, y0))
        bx0, by0, bx1, by1 = (round(float(v)) for v in inst.boxes[i])
        if boxes:
            cv2.rectangle(out, (bx0, by0), (bx1, by1), col, lw)
        if labels or scores or ids is not None:
            parts = []
            if ids is not None:
                parts.append(f"#{key}")
            if labels:
                parts.append(names[i])
            if scores:
                parts.append(f"{float(inst.scores[i]):.2f}")
            _text(out, " ".join(parts), (bx0, max(by0 - 3, 10)), font, fscale, thick, col)
    if status:
        _text(out, status, (4, 4 + int(22 * fscale / 0.5)), font, fscale * 1.2, thick, (255, 255, 255), bg=(0, 0, 0))
    return out


def _blend(out: np.ndarray, inst: Instances, colours: list[tuple[int, int, int]], alpha: float) -> None:
    """Tint every mask pixel with its instance's colour, touching only the pixels inside each box.

    Lowest scores first, so that where masks overlap the best instance's colour is on top.
    """
    for i in np.argsort(-inst.scores, kind="stable")[::-1].tolist():
        x0, y0, x1, y1 = (int(v) for v in inst.regions[i])
        if x1 <= x0 or y1 <= y0:
            continue
        sub = out[y0:y1, x0:x1]
        c = colours[i]
        tint = (c[0] * alpha, c[1] * alpha, c[2] * alpha, 0.0)
        blended = cv2.add(cv2.convertScaleAbs(sub, alpha=1.0 - alpha), tint)  # type: ignore[call-overload]
        cv2.copyTo(blended, np.ascontiguousarray(inst.crops[i]).view(np.uint8), sub)  # writes into the view


def _text(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    font: int,
    scale: float,
    thick: int,
    col: tuple[int, int, int],
    bg: tuple[int, int, int] | None = None,
) -> None:
    """Readable text: a dark outline (or a filled background) under coloured letters."""
    if bg is not None:
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
        x, y = org
        cv2.rectangle(img, (x - 2, y - th - 3), (x + tw + 2, y + base), bg, -1)
    else:
        cv2.putText(img, text, org, font, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, font, scale, col, thick, cv2.LINE_AA)
