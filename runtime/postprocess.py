"""Turn the model's fixed-size outputs into :class:`Instances` in frame coordinates.

Boxes are divided by the letterbox scale and clipped to the frame; detections are filtered by score
and class; each ``M x M`` mask is pasted on the host only inside its box (:mod:`maskrt.runtime.paste`:
sub-pixel by default, or exactly as torchvision's ``paste_masks_in_image`` for parity checks).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from maskrt.runtime.instances import Instances
from maskrt.runtime.paste import paste_masks


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
) -> Instances:
    """Decode batch item ``index`` of the model outputs into frame-space instances.

    Args:
        outputs: ``boxes``, ``scores``, ``labels``, ``masks``, ``num_dets`` as the artifact contract defines.
        scale: letterbox scale ``s`` used for this frame (input pixels = frame pixels * s).
        frame_hw: ``(height, width)`` of the original frame.
        class_names: the model's class names (labels are 1-based into this list).
        conf: keep detections with ``score >= conf``.
        mask_threshold: probability above which a mask pixel is foreground.
        class_ids: 0-based class indices to keep (``None``: all).
        index: which batch item to decode.
        paste: ``precise`` (sub-pixel; right for objects a few pixels across) or ``torchvision``.
    """
    h, w = int(frame_hw[0]), int(frame_hw[1])
    n = int(np.asarray(outputs["num_dets"]).reshape(-1)[index])
    scores = np.asarray(outputs["scores"][index][:n], dtype=np.float32)
    labels = np.asarray(outputs["labels"][index][:n]).astype(np.int64) - 1
    keep = (scores >= conf) & (labels >= 0) & (labels < len(class_names))
    if class_ids is not None:
        keep &= np.isin(labels, np.fromiter(class_ids, dtype=np.int64))
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return Instances.empty((h, w), class_names)
    boxes = np.asarray(outputs["boxes"][index][idx], dtype=np.float32) / np.float32(scale)
    np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
    masks = np.asarray(outputs["masks"][index])
    masks = masks.reshape(masks.shape[0], masks.shape[-2], masks.shape[-1])[idx]
    pasted = paste_masks(masks, boxes, (h, w), mask_threshold, paste, scale)
    regions = np.array([r for r, _ in pasted], dtype=np.int64).reshape(-1, 4)
    crops = [c for _, c in pasted]
    return Instances(boxes, scores[idx], labels[idx], class_names, (h, w), regions, crops)
