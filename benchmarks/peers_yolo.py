"""YOLO segmentation networks as peers of maskrt: read their ONNX export, feed it, decode what it returns.

Nothing here comes from Ultralytics (AGPL, not a dependency of maskrt): the file is read as any ONNX
file, and the pre- and post-processing are our own numpy/OpenCV versions of what Ultralytics' predictor
does, so that a YOLO whole frame can be timed beside maskrt's. Two output layouts exist:

- ``raw`` (YOLOv8/YOLO11): ``output0`` ``[1, 4 + nc + nm, anchors]`` (centre-x, centre-y, width, height,
  class scores, mask coefficients) and ``output1`` ``[1, nm, mh, mw]`` prototype masks; NMS is ours.
- ``end2end`` (YOLO26, NMS-free): ``output0`` ``[1, max_det, 6 + nm]`` (x0, y0, x1, y1, score, class,
  mask coefficients) and the same prototypes; no NMS.

Example:
    >>> spec = inspect_peer("/work/peers/yolo11n-seg.onnx")        # PeerSpec, or MaskrtError naming the fix
    >>> x, lb = peer_letterbox(frame, spec.input_hw)                 # [1, 3, 640, 640] float32 RGB in [0, 1]
    >>> dets = peer_postprocess(outputs, lb, frame.shape[:2], spec.input_hw, spec.layout, spec.n_classes)
    >>> len(dets), dets.boxes[:2], dets.masks[0].shape
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskrt.errors import MaskrtError

EXPORT_HINT = (
    "make it with `yolo export model=yolo26n-seg.pt format=onnx imgsz=640` (or from the YAML config with random "
    "weights, see benchmarks/README.md, 'Peers side by side')"
)
PAD_VALUE = 114
"""Ultralytics' letterbox grey."""
NMS_CANDIDATES = 10
"""With a forced detection count N, the ``NMS_CANDIDATES * N`` best-scoring anchors go to NMS."""


@dataclass(frozen=True)
class PeerSpec:
    """What a YOLO segmentation ONNX file takes and returns."""

    name: str
    path: Path
    input_hw: tuple[int, int]
    layout: str  # "raw" or "end2end"
    n_classes: int  # 0 when the layout does not tell (end2end)
    n_coeffs: int
    proto_hw: tuple[int, int]


@dataclass(frozen=True)
class Letterbox:
    """How a frame was placed in the network input: input pixels = frame pixels * scale + pad."""

    scale: float
    pad_x: float
    pad_y: float


@dataclass
class PeerDetections:
    """Decoded detections in frame pixels: boxes ``[n, 4]`` (x0, y0, x1, y1), scores, classes, masks.

    ``masks[i]`` is a bool array covering ``mask_boxes[i]`` (integer x0, y0, x1, y1, exclusive end), the
    box's pixels inside the frame: masks are pasted inside their boxes only, as maskrt does.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    masks: list[np.ndarray] = field(default_factory=list)
    mask_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


def _static(shape: Any) -> list[int] | None:
    dims = list(shape)
    return [int(d) for d in dims] if all(isinstance(d, int) and d > 0 for d in dims) else None


def layout_of(out_shape: list[int], proto_shape: list[int]) -> tuple[str, int, int] | None:
    """``(layout, n_classes, n_coeffs)`` for a detection output and a prototype shape, ``None`` if not YOLO-seg."""
    if len(out_shape) != 3 or len(proto_shape) != 4 or out_shape[0] != 1 or proto_shape[0] != 1:
        return None
    nm = proto_shape[1]
    if out_shape[2] == 6 + nm:
        return "end2end", 0, nm
    if out_shape[1] > 4 + nm and out_shape[2] > out_shape[1]:
        return "raw", out_shape[1] - 4 - nm, nm
    return None


def onnx_shapes(path: Path) -> tuple[list[list[Any]], list[list[Any]]]:
    """The input and output shapes of an ONNX file, read with ONNX Runtime (symbolic dimensions as strings).

    Raises:
        MaskrtError: ONNX Runtime cannot read the file.
    """
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise MaskrtError(
            f"ONNX Runtime cannot read this peer ({str(exc).splitlines()[0][:120]}), skipped; {EXPORT_HINT}",
            path=path,
        ) from exc
    return [list(i.shape) for i in sess.get_inputs()], [list(o.shape) for o in sess.get_outputs()]


def inspect_peer(path: str | Path) -> PeerSpec:
    """Check that ``path`` is a YOLO segmentation ONNX export with a static input; describe it.

    Raises:
        MaskrtError: the file is missing, unreadable, dynamic or not a YOLO segmentation export; the
            message names the file and how to make a usable one.
    """
    path = Path(path)
    if not path.is_file():
        raise MaskrtError(f"peer file not found, skipped; {EXPORT_HINT}", path=path)
    in_shapes, out_shapes = onnx_shapes(path)
    image = _static(in_shapes[0]) if len(in_shapes) == 1 else None
    if image is None or len(image) != 4 or image[:2] != [1, 3]:
        raise MaskrtError(
            f"peer inputs {in_shapes} are not one static [1, 3, H, W] image (exported with dynamic=True or a "
            f"batch?), skipped; {EXPORT_HINT}", path=path,
        )
    outs = [_static(s) for s in out_shapes]
    found = None
    if len(outs) == 2 and all(o is not None for o in outs):
        det, proto = sorted(outs, key=len)  # type: ignore[arg-type]  (the 3-D detections, the 4-D prototypes)
        found = layout_of(det, proto)
    if found is None:
        raise MaskrtError(
            f"outputs {out_shapes} are not a YOLO segmentation export (detections [1, 4+nc+32, anchors] or "
            f"[1, max_det, 38] and prototypes [1, 32, h, w]), skipped; export a -seg model: {EXPORT_HINT}",
            path=path,
        )
    layout, nc, nm = found
    return PeerSpec(path.stem, path, (image[2], image[3]), layout, nc, nm, (proto[2], proto[3]))


def peer_letterbox(frame: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, Letterbox]:
    """A BGR uint8 frame -> the ``[1, 3, H, W]`` float32 RGB input in [0, 1] that Ultralytics' exports expect.

    As Ultralytics' ``LetterBox`` at a fixed size: aspect kept, the frame centred, grey 114 around it.
    """
    h, w = frame.shape[:2]
    in_h, in_w = input_hw
    s = min(in_h / h, in_w / w)
    new_w, new_h = round(w * s), round(h * s)
    pad_x, pad_y = (in_w - new_w) / 2, (in_h - new_h) / 2
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas = np.full((in_h, in_w, 3), PAD_VALUE, dtype=np.uint8)
    resized = frame if (new_h, new_w) == (h, w) else cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas[top : top + new_h, left : left + new_w] = resized
    x = canvas[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255)
    return np.ascontiguousarray(x), Letterbox(s, float(left), float(top))


def _candidates(
    det: np.ndarray, layout: str, n_classes: int, conf: float, n_dets: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Boxes (x0, y0, x1, y1, input px), scores, classes, coefficients of the detections before NMS."""
    if layout == "end2end":
        rows = det[0]
        boxes, scores, classes, coeffs = rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64), rows[:, 6:]
    else:
        pred = det[0].T  # [anchors, 4 + nc + nm]
        cls = pred[:, 4 : 4 + n_classes]
        classes = cls.argmax(1)
        scores = cls[np.arange(len(cls)), classes]
        xywh, coeffs = pred[:, :4], pred[:, 4 + n_classes :]
        boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    if n_dets is None:
        keep = np.flatnonzero(scores > conf)
    else:
        k = min(len(scores), n_dets if layout == "end2end" else NMS_CANDIDATES * n_dets)
        keep = np.argpartition(-scores, k - 1)[:k] if 0 < k < len(scores) else np.arange(k)
    return boxes[keep], scores[keep], classes[keep], coeffs[keep]


def _nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by class-aware NMS (OpenCV's), best score first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.astype(np.float64).tolist(), classes.tolist(), 0.0, iou)
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")]


def decode_masks(
    coeffs: np.ndarray,
    protos: np.ndarray,
    boxes_in: np.ndarray,
    lb: Letterbox,
    frame_hw: tuple[int, int],
    input_hw: tuple[int, int],
) -> tuple[list[np.ndarray], np.ndarray]:
    """Each detection's mask inside its box, in frame pixels: (coefficients @ prototypes) > 0.

    As Ultralytics' ``process_mask``: the logits at prototype resolution, upsampled bilinearly, cropped
    to the box, thresholded at 0 (sigmoid > 0.5); but only the prototype pixels under each box are
    computed and upsampled, straight to frame pixels (Ultralytics computes every mask over the whole
    prototype and resamples twice, to the input and then to the frame).

    Returns:
        ``(masks, mask_boxes)``: one bool array per detection and its integer frame box (x0, y0, x1, y1).
    """
    fh, fw = frame_hw
    _, mh, mw = protos.shape[-3:]
    n = len(coeffs)
    mask_boxes = np.zeros((n, 4), np.int32)
    if n == 0:
        return [], mask_boxes
    in_h, in_w = input_hw
    coeffs = coeffs.astype(np.float32)
    rx, ry = in_w / mw, in_h / mh  # input pixels per prototype pixel
    masks: list[np.ndarray] = []
    for i in range(n):
        x0, y0, x1, y1 = (float(v) for v in boxes_in[i])
        # the box in frame pixels, clipped to the frame
        fx0 = min(max(math.floor((x0 - lb.pad_x) / lb.scale), 0), fw)
        fy0 = min(max(math.floor((y0 - lb.pad_y) / lb.scale), 0), fh)
        fx1 = min(max(math.ceil((x1 - lb.pad_x) / lb.scale), fx0), fw)
        fy1 = min(max(math.ceil((y1 - lb.pad_y) / lb.scale), fy0), fh)
        mask_boxes[i] = (fx0, fy0, fx1, fy1)
        if fx1 <= fx0 or fy1 <= fy0:
            masks.append(np.zeros((fy1 - fy0, fx1 - fx0), bool))
            continue
        # prototype pixels covering the box (one more each side for the interpolation)
        px0 = max(math.floor(x0 / rx) - 1, 0)
        py0 = max(math.floor(y0 / ry) - 1, 0)
        px1 = min(math.ceil(x1 / rx) + 1, mw)
        py1 = min(math.ceil(y1 / ry) + 1, mh)
        crop = np.tensordot(coeffs[i], protos[:, py0:py1, px0:px1], axes=1)  # the logits under the box only
        # frame pixel centres in input pixels, then in the crop's prototype pixels (centres at integers)
        in_x = (np.arange(fx0, fx1) + 0.5) * lb.scale + lb.pad_x
        in_y = (np.arange(fy0, fy1) + 0.5) * lb.scale + lb.pad_y
        map_x = np.broadcast_to((in_x / rx - 0.5 - px0).astype(np.float32)[None, :], (len(in_y), len(in_x)))
        map_y = np.broadcast_to((in_y / ry - 0.5 - py0).astype(np.float32)[:, None], (len(in_y), len(in_x)))
        up = cv2.remap(crop, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # Ultralytics' crop_mask: nothing outside the predicted box (in input pixels)
        inside = ((in_y >= y0) & (in_y < y1))[:, None] & ((in_x >= x0) & (in_x < x1))[None, :]
        masks.append((up > 0) & inside)
    return masks, mask_boxes


def peer_postprocess(
    outputs: list[np.ndarray],
    lb: Letterbox,
    frame_hw: tuple[int, int],
    input_hw: tuple[int, int],
    layout: str,
    n_classes: int = 0,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    n_dets: int | None = None,
    reference_boxes: np.ndarray | None = None,
) -> PeerDetections:
    """A YOLO-seg network's two outputs -> detections with masks in frame pixels (our numpy/OpenCV version).

    Args:
        outputs: the detections and the prototypes, in either order.
        lb: where the frame sits in the network input (:func:`peer_letterbox`).
        frame_hw: the frame's height and width.
        input_hw: the network input's height and width.
        layout: ``raw`` (NMS here) or ``end2end`` (NMS-free).
        n_classes: class count of a ``raw`` output.
        conf, iou, max_det: Ultralytics' predict defaults (score threshold, NMS IoU, detections kept).
        n_dets: keep the ``n_dets`` best whatever their score instead of thresholding at ``conf``: random
            weights score below any threshold, and the post-processing cost grows with the count.
        reference_boxes: boxes (x0, y0, x1, y1, frame pixels) a trained model would find on this frame:
            their count is ``n_dets`` and the masks are decoded inside them instead of the predicted boxes
            (random weights predict boxes of any size, and decoding costs what the boxes cover).
    """
    det, protos = sorted(outputs, key=lambda a: a.ndim)
    if reference_boxes is not None:
        n_dets = max(len(reference_boxes), 1)
    boxes, scores, classes, coeffs = _candidates(det, layout, n_classes, conf, n_dets)
    limit = max_det if n_dets is None else n_dets
    if layout == "raw":
        order = _nms(boxes, scores, classes, iou)[:limit]
    else:
        order = np.argsort(-scores, kind="stable")[:limit]
    boxes, scores, classes, coeffs = boxes[order], scores[order], classes[order], coeffs[order]
    if reference_boxes is not None:
        ref = np.asarray(reference_boxes, np.float32).reshape(-1, 4)[: len(order)]
        k = len(ref)
        boxes = ref * lb.scale + np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y], np.float32)
        scores, classes, coeffs = scores[:k], classes[:k], coeffs[:k]
    masks, mask_boxes = decode_masks(coeffs, protos[0], boxes, lb, frame_hw, input_hw)
    fh, fw = frame_hw
    frame_boxes = (boxes - np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y], np.float32)) / lb.scale
    frame_boxes = np.clip(frame_boxes, 0, [fw, fh, fw, fh]).astype(np.float32)
    return PeerDetections(frame_boxes, scores.astype(np.float32), classes.astype(np.int64), masks, mask_boxes)
