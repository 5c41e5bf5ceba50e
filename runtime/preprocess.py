"""Turn a camera frame of any size, depth and channel count into the model's input tensor.

The artifact contract (:mod:`maskrt.artifact`) fixes the input: uint8 ``[B, H, W, 3]`` BGR,
letterboxed to the top-left corner and padded with ``pad_value``. Normalisation happens inside the
graph, so the host only converts depth/channels and resizes: no float work on 8-bit frames.
"""

from __future__ import annotations

import cv2
import numpy as np

from maskrt.artifact import letterbox_scale
from maskrt.errors import MaskrtError


def to_uint8(frame: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """Scale a frame of any pixel depth to 8 bits.

    uint8 passes through untouched. uint16 frames are scaled by ``bit_depth`` (the camera's, e.g. 12);
    without it the depth is inferred per frame from the brightest pixel, rounded up to 10, 12, 14 or 16
    bits (a 12-bit camera's frames then keep their brightness unless a frame is very dark: pass the
    depth for a camera). Float frames are taken as 0..1 and clipped. Other integer types are clipped
    to 0..255.
    """
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.uint16:
        if bit_depth is not None:
            bits = int(bit_depth)
            if not 8 <= bits <= 16:
                raise MaskrtError(f"bit depth {bits} is not between 8 and 16; pass the camera's depth, e.g. 12")
        else:
            peak = int(frame.max()) if frame.size else 0
            bits = max(8, int(np.ceil(np.log2(peak + 1))))
            if bits > 8:
                bits = min(16, bits + (bits % 2))
        if bits == 8:
            return frame.astype(np.uint8)
        return cv2.convertScaleAbs(frame, alpha=255.0 / float((1 << bits) - 1))
    if np.issubdtype(frame.dtype, np.floating):
        return (np.clip(np.nan_to_num(frame), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if np.issubdtype(frame.dtype, np.integer) or frame.dtype == np.bool_:
        return np.clip(frame, 0, 255).astype(np.uint8)
    raise MaskrtError(f"frame dtype {frame.dtype} is not an image type; pass uint8, uint16 or float pixels")


def to_bgr(frame: np.ndarray, bit_depth: int | None = None) -> np.ndarray:
    """Return a contiguous uint8 BGR ``(H, W, 3)`` view/copy of a grey, BGR or BGRA frame of any depth."""
    frame = np.asarray(frame)
    if frame.ndim not in (2, 3) or frame.shape[0] == 0 or frame.shape[1] == 0:
        raise MaskrtError(
            f"frame of shape {tuple(frame.shape)} is not an image; pass an (H, W) grey or (H, W, 3) BGR array "
            "with H, W > 0"
        )
    frame = to_uint8(frame, bit_depth)
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(frame.reshape(frame.shape[:2])), cv2.COLOR_GRAY2BGR)
    channels = frame.shape[2]
    if channels == 3:
        return np.ascontiguousarray(frame)
    if channels == 4:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGRA2BGR)
    raise MaskrtError(f"frame has {channels} channels; pass a grey (1), BGR (3) or BGRA (4) image")


def resized_hw(frame_hw: tuple[int, int], scale: float, input_hw: tuple[int, int]) -> tuple[int, int]:
    """``(rows, cols)`` of the input that a frame of ``frame_hw`` fills after :func:`letterbox` at ``scale``."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    return min(int(input_hw[0]), max(1, round(h * scale))), min(int(input_hw[1]), max(1, round(w * scale)))


def letterbox(
    frame: np.ndarray, input_hw: tuple[int, int], pad_value: int = 114, out: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Resize a BGR frame into ``input_hw`` keeping its aspect, at the top-left, padding the rest.

    Args:
        frame: uint8 ``(h, w, 3)`` BGR frame.
        input_hw: model input ``(H, W)``.
        pad_value: grey level of the padding.
        out: optional preallocated uint8 ``(H, W, 3)`` array to fill (saves an allocation per frame).

    Returns:
        ``(image, s)``: the ``(H, W, 3)`` model image and the scale ``s`` (frame pixels * s = input pixels).
    """
    h, w = frame.shape[:2]
    in_h, in_w = input_hw
    s = letterbox_scale((h, w), (in_h, in_w))
    new_h, new_w = resized_hw((h, w), s, (in_h, in_w))
    if out is None or out.shape != (in_h, in_w, 3) or out.dtype != np.uint8:
        out = np.empty((in_h, in_w, 3), dtype=np.uint8)
    if (new_h, new_w) == (h, w):
        out[:h, :w] = frame
    else:
        # area averaging when shrinking (no aliasing of fine bubbles), bilinear when enlarging: the same
        # rule the exporter's parity images use (export/scenes.py)
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        cv2.resize(frame, (new_w, new_h), dst=out[:new_h, :new_w], interpolation=interp)
    if new_w < in_w:
        out[:, new_w:] = pad_value
    if new_h < in_h:
        out[new_h:, :new_w] = pad_value
    return out, s
