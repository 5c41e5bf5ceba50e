"""Draw instances on a frame: translucent masks, contours, boxes, labels and a status line.

Blending touches only the pixels inside each box (OpenCV calls on the box, no float copies), so
drawing 100 instances on a large frame costs about as much as the masks' area, not frames x instances.

Labels are placed by :func:`place_labels`: ``auto`` (the default) writes a label only where it can be
read, so that a dense frame (200 bubbles on 256 px) shows its contours and a few labels instead of a
wall of text; ``all`` writes one per instance, ``none`` none. Contours and the status line are always drawn.

With ``phase=True`` and a model that gives a phase map (``Instances.phase``), the outline of the dispersed
phase (probability above 0.5, holes included) is drawn first, thin and in :data:`PHASE_COLOUR`, under the
instance contours; off by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from maskrt.errors import MaskrtError
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

PHASE_COLOUR = (255, 0, 255)
"""BGR colour of the phase-map outline (magenta: in no palette entry, nor the ROI's yellow)."""
PHASE_THRESHOLD = 0.5
"""Phase probability the outline follows."""


def colour(key: int) -> tuple[int, int, int]:
    """The palette colour (BGR) for an instance index or track id; stable for a given key."""
    c = PALETTE[(int(key) * 7) % len(PALETTE)]  # stride 7 keeps consecutive ids far apart in the palette
    return int(c[0]), int(c[1]), int(c[2])


LABEL_MODES = ("auto", "all", "none")
AUTO_AREA_RATIO = 2.0
"""In ``auto``, a label is written only if its text box is at most this many times its instance's box area."""


class LabelBox(NamedTuple):
    """Where one instance's label goes: its text, the baseline origin, and the pixels it covers."""

    index: int
    """The instance's index in the Instances."""
    text: str
    org: tuple[int, int]
    """``(x, y)`` of the text's baseline start, as ``cv2.putText`` takes it."""
    rect: tuple[int, int, int, int]
    """``x0, y0, x1, y1`` (exclusive) that the text and its outline may change."""


def label_mode(labels: str | bool, option: str = "--labels") -> str:
    """The label mode ``auto``, ``all`` or ``none`` for ``labels`` (``True``/``False`` are ``all``/``none``).

    Args:
        labels: what the user gave.
        option: the command-line option it came from, for the message.

    Raises:
        MaskrtError: for any other value, naming it and the choices.
    """
    if labels is True or labels is False:
        return "all" if labels else "none"
    mode = str(labels).strip().lower()
    if mode not in LABEL_MODES:
        raise MaskrtError(f"{option} {labels!r} is not a label mode; use auto (where they fit), all or none")
    return mode


def _font(frame_hw: tuple[int, int]) -> tuple[int, float, int]:
    """Font, scale and thickness of the labels on a frame of ``frame_hw``."""
    return cv2.FONT_HERSHEY_SIMPLEX, max(0.35, min(frame_hw) / 1400), 1


def place_labels(
    inst: Instances,
    frame_hw: tuple[int, int],
    labels: str | bool = "auto",
    scores: bool = True,
    ids: Sequence[int] | np.ndarray | None = None,
    reserved: Sequence[tuple[int, int, int, int]] = (),
) -> list[LabelBox]:
    """Decide which instances get a label and where: what :func:`draw_overlay` writes.

    ``all`` puts every label just above its box (one per instance, overlaps allowed). ``auto`` keeps a
    frame readable: largest instances first, a label is written only if its text box is not much larger
    than the instance (:data:`AUTO_AREA_RATIO`) and it fits inside the frame, above, below or inside the
    box, without touching a label already placed or a ``reserved`` rectangle (the status line).
    ``none`` places nothing.

    Args:
        inst: the frame's instances.
        frame_hw: ``(height, width)`` of the frame drawn on.
        labels: ``auto``, ``all`` or ``none`` (or ``True``/``False`` for ``all``/``none``).
        scores: append each score to its label.
        ids: one track id per instance, written first as ``#id``.
        reserved: ``x0, y0, x1, y1`` rectangles no ``auto`` label may cover.

    Returns:
        The labels to draw, at most one per instance; in ``auto`` no two rectangles overlap.

    Example:
        >>> boxes = place_labels(inst, (256, 256), "auto")
        >>> [b.index for b in boxes]  # the instances that are labelled
    """
    mode = label_mode(labels)
    if mode == "none" or not len(inst):
        return []
    h, w = int(frame_hw[0]), int(frame_hw[1])
    font, scale, thick = _font((h, w))
    names = inst.labels
    pad = _pad(scale)

    def rect_of(x: int, y: int, tw: int, th: int, base: int) -> tuple[int, int, int, int]:
        return x - pad, y - th - pad, x + tw + pad, y + base + pad

    id_list = [int(v) for v in ids] if ids is not None else None
    score_list = inst.scores.tolist()

    def text_of(i: int) -> str:
        text = names[i] if id_list is None else f"#{id_list[i]} {names[i]}"
        return f"{text} {score_list[i]:.2f}" if scores else text

    boxes = np.round(inst.boxes).astype(np.int64)
    if mode == "all":
        out = []
        for i, (x, y) in enumerate(boxes[:, :2].tolist()):
            text = text_of(i)
            (tw, th), base = cv2.getTextSize(text, font, scale, thick)
            y = max(y - 3, 10)
            out.append(LabelBox(i, text, (x, y), rect_of(x, y, tw, th, base)))
        return out

    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    # a label is at least as large as its class name alone: instances too small even for that are skipped unmeasured
    (_, nh), nbase = cv2.getTextSize("Ag", font, scale, thick)
    least = {name: cv2.getTextSize(name, font, scale, thick)[0][0] * (nh + nbase) for name in set(names)}
    room = (areas * AUTO_AREA_RATIO).tolist()
    box_list = boxes.tolist()
    taken = np.zeros((h, w), dtype=bool)
    for x0, y0, x1, y1 in reserved:
        taken[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    out = []
    for i in np.lexsort((-inst.scores, -areas)).tolist():  # largest first, ties by score
        if least[names[i]] > room[i]:
            continue
        text = text_of(i)
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
        if tw * (th + base) > room[i]:
            continue
        bx0, by0, _, by1 = box_list[i]
        rx0, _, rx1, _ = rect_of(0, 0, tw, th, base)
        if rx1 - rx0 > w:
            continue
        x = min(max(bx0, -rx0), w - rx1)  # left-aligned with the box, shifted into the frame
        for y in (by0 - 2 - base, by1 + th + 2, by0 + th + 2):  # baseline above, below, inside the box top
            rect = rect_of(x, y, tw, th, base)
            if rect[1] < 0 or rect[3] > h or taken[rect[1]:rect[3], rect[0]:rect[2]].any():
                continue
            taken[rect[1]:rect[3], rect[0]:rect[2]] = True
            out.append(LabelBox(i, text, (x, y), rect))
            break
    return out


def draw_overlay(
    frame: np.ndarray,
    inst: Instances,
    alpha: float = 0.45,
    contours: bool = True,
    boxes: bool = False,
    labels: str | bool = "auto",
    scores: bool = True,
    ids: Sequence[int] | np.ndarray | None = None,
    status: str | None = None,
    phase: bool = False,
) -> np.ndarray:
    """Return a BGR copy of ``frame`` with the instances drawn on it.

    Args:
        frame: BGR or grey frame (any depth; converted to 8-bit BGR).
        inst: instances of this frame.
        alpha: mask opacity (0 = contours only).
        contours: outline each mask.
        boxes: draw each box.
        labels: which instances get a label (class name, score, track id): ``auto`` (only where it fits
            and the instance is large enough to carry it, see :func:`place_labels`), ``all`` or ``none``;
            ``True``/``False`` mean ``all``/``none``.
        scores: append the score to the label.
        ids: one track id per instance; colours then stay with the id across frames, and the id is written.
        status: a short line (FPS, count, void fraction...) drawn at the top-left; always drawn.
        phase: outline the regions of ``inst.phase`` above 0.5 (and their liquid islands) in
            :data:`PHASE_COLOUR`, under the instance contours; nothing when the model gave no phase map.

    Raises:
        MaskrtError: ``labels`` is not one of the modes.
    """
    mode = label_mode(labels)
    out = to_bgr(frame).copy()
    h, w = out.shape[:2]
    font, fscale, thick = _font((h, w))
    lw = max(1, round(min(h, w) / 700))
    keys = [int(ids[i]) if ids is not None else i for i in range(len(inst))]
    cols = [colour(k) for k in keys]
    if alpha > 0 and len(inst):
        _blend(out, inst, cols, alpha)
    if phase and inst.phase is not None and inst.phase.shape == (h, w):
        region = (inst.phase > PHASE_THRESHOLD).view(np.uint8)
        cs, _ = cv2.findContours(region, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, cs, -1, PHASE_COLOUR, lw, lineType=cv2.LINE_8)
    for i, col in enumerate(cols):
        x0, y0, x1, y1 = (int(v) for v in inst.regions[i])
        if contours and x1 > x0 and y1 > y0:
            img = np.ascontiguousarray(inst.crops[i]).view(np.uint8)
            cs, _ = cv2.findContours(img, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, cs, -1, col, lw, lineType=cv2.LINE_8, offset=(x0, y0))
        if boxes:
            bx0, by0, bx1, by1 = (round(float(v)) for v in inst.boxes[i])
            cv2.rectangle(out, (bx0, by0), (bx1, by1), col, lw)
    status_org, status_scale = (4, 4 + int(22 * fscale / 0.5)), fscale * 1.2
    reserved = []
    if status and mode == "auto":
        (tw, _), base = cv2.getTextSize(status, font, status_scale, thick)
        reserved.append((0, 0, status_org[0] + tw + 3, status_org[1] + base + 1))
    for box in place_labels(inst, (h, w), mode, scores=scores, ids=ids, reserved=reserved):
        _text(out, box.text, box.org, font, fscale, thick, cols[box.index])  # labels on top of every contour
    if status:
        _text(out, status, status_org, font, status_scale, thick, (255, 255, 255), bg=(0, 0, 0))
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
    """Readable text: a dark outline (or a filled background) under coloured letters.

    The outline is a thicker black copy of the text, except where OpenCV advances thick letters wider
    than thin ones (small scales, digits most): a thick copy would drift off the letters along the line,
    so there the outline is the letters' own ink grown by one pixel.
    """
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    x, y = org
    if bg is not None:
        cv2.rectangle(img, (x - 2, y - th - 3), (x + tw + 2, y + base), bg, -1)
    elif cv2.getTextSize(text, font, scale, thick + 2)[0][0] <= tw + 2:
        cv2.putText(img, text, org, font, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    else:
        pad = _pad(scale)
        x0, y0 = max(x - pad, 0), max(y - th - pad, 0)
        roi = img[y0:max(y + base + pad, 0), x0:max(x + tw + pad, 0)]
        if roi.size:
            ink = np.zeros(roi.shape[:2], np.uint8)
            cv2.putText(ink, text, (x - x0, y - y0), font, scale, 255, thick, cv2.LINE_AA)
            _, halo = cv2.threshold(cv2.dilate(ink, _HALO), 96, 255, cv2.THRESH_BINARY)
            cv2.subtract(roi, (255, 255, 255, 0), dst=roi, mask=halo)  # black where the halo is, in place
    cv2.putText(img, text, org, font, scale, col, thick, cv2.LINE_AA)


_HALO = np.ones((3, 3), np.uint8)


def _pad(scale: float) -> int:
    """How far a label's ink and outline may reach past its ``getTextSize`` box, at font ``scale``."""
    return 2 + int(scale)
