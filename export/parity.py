"""Parity of an exported model with PyTorch: same detections, boxes, scores and pasted masks.

Two comparisons, both on the same uint8 letterboxed images:

* **gate**: ONNX Runtime vs the PyTorch :class:`~maskrt.export.wrapper.ExportWrapper` (same graph
  semantics). Detections are matched one to one (same label, best box IoU); the export passes when
  nothing is missing or extra, every matched box IoU >= ``box_iou``, every pasted-mask IoU >=
  ``mask_iou`` and every score differs by at most ``score_tol``.
* **agreement**: ONNX Runtime (masks pasted on the host with :mod:`maskrt.runtime.paste`) vs the
  plain torchvision model ``model([image])`` with its own full-resolution paste: what users trained.
  Reported, not gated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from maskrt.runtime.boxes import box_iou
from maskrt.runtime.paste import expanded_boxes, paste_mask

Dets = dict[str, np.ndarray]  # boxes [N,4], scores [N], labels [N], masks [N,H,W] bool (pasted)


@dataclass(frozen=True)
class ParityRules:
    """Thresholds of the parity gate (defaults: the FP32 rules of issue 4)."""

    box_iou: float = 0.99
    mask_iou: float = 0.98
    score_tol: float = 1e-3
    score_floor: float = 0.1  # compare detections scoring at least this much
    mask_threshold: float = 0.5
    phase_iou: float = 0.98  # the phase map (when the model has one), thresholded at 0.5


FP16_RULES = ParityRules(box_iou=0.95, mask_iou=0.90, score_tol=2e-2, phase_iou=0.95)
"""Looser rules for FP16 models (reported as such)."""


@dataclass
class ImageParity:
    """Comparison of one image's detections."""

    ref_count: int
    test_count: int
    matched: int
    missing: int
    extra: int
    min_box_iou: float = 1.0
    min_mask_iou: float = 1.0
    mean_mask_iou: float = 1.0
    max_score_diff: float = 0.0
    phase_iou: float = 1.0  # of the two phase maps thresholded at 0.5 (1.0: no phase output)


@dataclass
class ParityReport:
    """Per-image comparisons and whether they pass ``rules``."""

    rules: ParityRules
    images: list[ImageParity] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        r = self.rules
        return all(
            im.missing == 0
            and im.extra == 0
            and im.min_box_iou >= r.box_iou
            and im.min_mask_iou >= r.mask_iou
            and im.max_score_diff <= r.score_tol
            and im.phase_iou >= r.phase_iou
            for im in self.images
        )

    def summary(self) -> dict[str, Any]:
        """Totals and worst cases over all images."""
        ims = self.images
        return {
            "images": len(ims),
            "detections": sum(i.ref_count for i in ims),
            "matched": sum(i.matched for i in ims),
            "missing": sum(i.missing for i in ims),
            "extra": sum(i.extra for i in ims),
            "min_box_iou": min((i.min_box_iou for i in ims), default=1.0),
            "min_mask_iou": min((i.min_mask_iou for i in ims), default=1.0),
            "mean_mask_iou": float(np.mean([i.mean_mask_iou for i in ims])) if ims else 1.0,
            "max_score_diff": max((i.max_score_diff for i in ims), default=0.0),
            "min_phase_iou": min((i.phase_iou for i in ims), default=1.0),
            "passed": self.passed,
            "rules": asdict(self.rules),
        }

    def failures(self) -> list[str]:
        """One line per image that breaks a rule."""
        r, out = self.rules, []
        for k, im in enumerate(self.images):
            why = []
            if im.missing or im.extra:
                why.append(f"{im.missing} missing / {im.extra} extra of {im.ref_count}")
            if im.min_box_iou < r.box_iou:
                why.append(f"box IoU {im.min_box_iou:.4f} < {r.box_iou}")
            if im.min_mask_iou < r.mask_iou:
                why.append(f"mask IoU {im.min_mask_iou:.4f} < {r.mask_iou}")
            if im.max_score_diff > r.score_tol:
                why.append(f"score diff {im.max_score_diff:.2e} > {r.score_tol}")
            if im.phase_iou < r.phase_iou:
                why.append(f"phase map IoU {im.phase_iou:.4f} < {r.phase_iou}")
            if why:
                out.append(f"image {k}: " + ", ".join(why))
        return out


def phase_map_iou(ref: np.ndarray, test: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of two phase maps thresholded at ``threshold`` (1.0 when both are empty)."""
    a, b = np.asarray(ref) > threshold, np.asarray(test) > threshold
    union = int(np.count_nonzero(a | b))
    return float(np.count_nonzero(a & b)) / union if union else 1.0


def artifact_dets(outputs: list[np.ndarray] | tuple[Any, ...], hw: tuple[int, int], index: int = 0,
                  mask_threshold: float = 0.5) -> Dets:
    """Valid detections of image ``index`` from the artifact's outputs, masks pasted at ``hw``."""
    boxes, scores, labels, masks, num = (np.asarray(o) for o in list(outputs)[:5])  # phase (6th) compared apart
    n = int(num[index])
    b = boxes[index, :n].astype(np.float32)
    return {
        "boxes": b,
        "scores": scores[index, :n].astype(np.float32),
        "labels": labels[index, :n].astype(np.int64),
        "masks": paste_full(masks[index, :n].astype(np.float32), b, hw, mask_threshold),
    }


def paste_full(probs: np.ndarray, boxes: np.ndarray, hw: tuple[int, int], threshold: float) -> np.ndarray:
    """Paste ``(N, M, M)`` probabilities into ``(N, H, W)`` boolean masks with the runtime's paste."""
    out = np.zeros((len(probs), hw[0], hw[1]), dtype=bool)
    if len(probs) == 0:
        return out
    for i, (p, eb) in enumerate(zip(probs, expanded_boxes(boxes, probs.shape[-1]))):
        (x0, y0, x1, y1), crop = paste_mask(p, eb, hw, threshold)
        if x1 > x0 and y1 > y0:
            out[i, y0:y1, x0:x1] = crop
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks; two empty masks agree perfectly."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def compare(ref: Dets, test: Dets, rules: ParityRules, max_det: int | None = None) -> ImageParity:
    """Match ``test`` detections to ``ref`` ones one to one (same label, box IoU >= 0.5, best pairs first).

    When a side holds ``max_det`` detections it was truncated, and detections tied with its lowest
    score may legitimately differ: unmatched ones within ``score_tol`` of the other side's cut-off
    are not counted as missing or extra.
    """
    keep_r = np.flatnonzero(ref["scores"] >= rules.score_floor)
    keep_t = np.flatnonzero(test["scores"] >= rules.score_floor - rules.score_tol)
    ious = box_iou(ref["boxes"][keep_r], test["boxes"][keep_t])
    used = np.zeros(len(keep_t), dtype=bool)
    box_ious: list[float] = []
    mask_ious: list[float] = []
    score_diffs: list[float] = []
    cut_r = _cutoff(ref["scores"], max_det, rules.score_tol)
    cut_t = _cutoff(test["scores"], max_det, rules.score_tol)
    same = ref["labels"][keep_r][:, None] == test["labels"][keep_t][None, :]
    sdiff = np.abs(ref["scores"][keep_r][:, None] - test["scores"][keep_t][None, :])
    pairs = np.argwhere(same & (ious >= 0.5))
    # best pairs first (highest IoU, then closest score), so ties among equal boxes resolve exactly
    order = np.lexsort((sdiff[pairs[:, 0], pairs[:, 1]], -ious[pairs[:, 0], pairs[:, 1]])) if len(pairs) else []
    used_r = np.zeros(len(keep_r), dtype=bool)
    for k in order:
        i, j = pairs[k]
        if used_r[i] or used[j]:
            continue
        used_r[i] = used[j] = True
        ri, ti = keep_r[i], keep_t[j]
        box_ious.append(float(ious[i, j]))
        mask_ious.append(mask_iou(ref["masks"][ri], test["masks"][ti]))
        score_diffs.append(float(sdiff[i, j]))
    missing = int(np.sum(~used_r & (ref["scores"][keep_r] > cut_t)))
    # an unmatched test detection only counts when it clearly clears the floor
    floor = max(rules.score_floor + rules.score_tol, cut_r + 1e-12)
    extra = int(np.sum(~used & (test["scores"][keep_t] >= floor)))
    return ImageParity(
        ref_count=len(keep_r),
        test_count=len(keep_t),
        matched=len(box_ious),
        missing=missing,
        extra=extra,
        min_box_iou=min(box_ious, default=1.0),
        min_mask_iou=min(mask_ious, default=1.0),
        mean_mask_iou=float(np.mean(mask_ious)) if mask_ious else 1.0,
        max_score_diff=max(score_diffs, default=0.0),
    )


def _cutoff(scores: np.ndarray, max_det: int | None, tol: float) -> float:
    """Score up to which detections may be cut by ``max_det`` truncation (-inf when not truncated)."""
    if max_det is None or len(scores) < max_det or len(scores) == 0:
        return float("-inf")
    return float(np.min(scores)) + tol


INT8_MAX_AP50_DROP = 0.01
"""An INT8 model passes when its held-out mask AP50 is at most this much (1 point) below the FP32 model's."""

INT8_RULES = ParityRules(box_iou=0.5, mask_iou=0.0, score_tol=0.1, score_floor=0.5)
"""How INT8 detections are matched to FP32 ones: same label, box IoU >= 0.5, FP32 detections scoring at least
0.5 (the default threshold); an INT8 detection counts as missing or extra only when it is 0.1 clear of it."""


@dataclass
class Int8Parity:
    """What INT8 changes against the FP32 model it was quantized from (reported by ``maskrt export --int8``).

    ``matching`` compares the two ONNX models' detections image by image (:data:`INT8_RULES`);
    ``ap50_*`` / ``ap_*`` are COCO mask AP50 / AP of each model on ``heldout_images`` held-out
    annotated images, scored through the runtime (``None`` when not measured, e.g. a model whose
    classes are not in the synthetic scenes). The gate is the AP50 drop when measured.
    """

    matching: ParityReport
    heldout_images: int = 0
    heldout_source: str = ""
    ap50_fp32: float | None = None
    ap50_int8: float | None = None
    ap_fp32: float | None = None
    ap_int8: float | None = None
    max_ap50_drop: float = INT8_MAX_AP50_DROP

    @property
    def ap50_drop(self) -> float | None:
        if self.ap50_fp32 is None or self.ap50_int8 is None:
            return None
        return self.ap50_fp32 - self.ap50_int8

    @property
    def passed(self) -> bool:
        drop = self.ap50_drop
        return drop is None or drop <= self.max_ap50_drop + 1e-9

    def summary(self) -> dict[str, Any]:
        """Matching totals, AP before/after and the verdict."""
        m = self.matching.summary()
        return {
            "images": m["images"],
            "detections": m["detections"],
            "matched": m["matched"],
            "missing": m["missing"],
            "extra": m["extra"],
            "match_rate": m["matched"] / m["detections"] if m["detections"] else 1.0,
            "min_box_iou": m["min_box_iou"],
            "mean_mask_iou": m["mean_mask_iou"],
            "max_score_diff": m["max_score_diff"],
            "heldout_images": self.heldout_images,
            "heldout_source": self.heldout_source,
            "mask_ap50_fp32": self.ap50_fp32,
            "mask_ap50_int8": self.ap50_int8,
            "mask_ap_fp32": self.ap_fp32,
            "mask_ap_int8": self.ap_int8,
            "ap50_drop": self.ap50_drop,
            "max_ap50_drop": self.max_ap50_drop,
            "passed": self.passed,
        }

    def failures(self) -> list[str]:
        """Why the gate failed (empty when it passed)."""
        drop = self.ap50_drop
        if self.passed or drop is None:
            return []
        return [(f"mask AP50 {self.ap50_int8:.3f} is {drop * 100:.1f} points below FP32's {self.ap50_fp32:.3f} "
                 f"(allowed {self.max_ap50_drop * 100:.0f}); calibrate on your own images with --calib DATA "
                 "or on more of them with --calib-images")]
