"""COCO box and mask AP of a model on a dataset (pycocotools), with per-class AP and RLE results JSON.

Example:
    >>> results = predict(model, dataset, device="cpu")          # COCO results, masks as RLE
    >>> metrics = coco_metrics(dataset, results)
    >>> metrics["segm"]["AP50"], metrics["per_class"]["bubble"]["segm"]
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskrt.atomic import write_text
from maskrt.errors import MaskrtError
from maskrt.train.data.record import Dataset

log = logging.getLogger(__name__)

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


@torch.inference_mode()
def predict(
    model: torch.nn.Module,
    dataset: Dataset,
    device: str | torch.device = "cpu",
    batch_size: int = 2,
    progress: Any = None,
    mask_threshold: float = 0.5,
    phase_stats: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run ``model`` over every image of ``dataset`` at its original size; return COCO results.

    Image ids are 1-based positions in ``dataset.images`` (as :meth:`Dataset.to_coco` numbers them);
    category ids are ``label`` (category + 1). Masks are thresholded at ``mask_threshold`` and RLE-encoded.

    Args:
        progress: optional callable ``(done, total)`` called after each batch.
        phase_stats: a dict to fill with the phase map's scores (:func:`phase_metrics`) when the model has a
            phase head: the union of each image's instance masks is the truth.
    """
    from pycocotools import mask as mask_util

    from maskrt.train.dataset import MaskDataset

    was_training = model.training
    model.eval()
    view = MaskDataset(dataset, max_size=None, augment=None, skip_crowd=False)
    results: list[dict[str, Any]] = []
    n = len(dataset.images)
    for start in range(0, n, batch_size):
        idxs = list(range(start, min(n, start + batch_size)))
        images = [_image_only(view, i).to(device) for i in idxs]
        outputs = model(images)
        for i, out in zip(idxs, outputs):
            if phase_stats is not None and "phase" in out:
                _add_phase(phase_stats, out["phase"], view, i)
            boxes = out["boxes"].float().cpu().numpy()
            scores = out["scores"].float().cpu().numpy()
            labels = out["labels"].cpu().numpy()
            masks = (out["masks"][:, 0] > mask_threshold).cpu().numpy().astype(np.uint8)
            for k in range(len(scores)):
                rle = mask_util.encode(np.asfortranarray(masks[k]))
                rle["counts"] = rle["counts"].decode("ascii")
                x0, y0, x1, y1 = (float(v) for v in boxes[k])
                results.append(
                    {
                        "image_id": i + 1,
                        "category_id": int(labels[k]),
                        "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                        "score": round(float(scores[k]), 5),
                        "segmentation": rle,
                    }
                )
        if progress is not None:
            progress(idxs[-1] + 1, n)
    model.train(was_training)
    return results


@torch.inference_mode()
def phase_maps(model: torch.nn.Module, dataset: Dataset, device: str | torch.device = "cpu",
               progress: Any = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(phase probability, truth)`` per image of ``dataset``, both at the image's size (float32, bool).

    The truth is the union of the image's instance masks, as validation scores it (:func:`_add_phase`).
    """
    from maskrt.train.dataset import MaskDataset

    was_training = model.training
    model.eval()
    view = MaskDataset(dataset, max_size=None, augment=None, skip_crowd=False)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    n = len(dataset.images)
    try:
        for i in range(n):
            result = model([_image_only(view, i).to(device)])[0]
            if "phase" not in result:
                raise MaskrtError("the model has no phase head; train one with `maskrt train --phase-only`")
            prob = result["phase"].float().cpu().numpy()
            out.append((prob, _phase_truth(dataset.images[i], *prob.shape)))
            if progress is not None:
                progress(i + 1, n)
    finally:
        model.train(was_training)
    return out


def _phase_truth(record: Any, h: int, w: int) -> np.ndarray:
    """The union of an image's instance masks at ``h`` x ``w``, drawn from its annotations (no image decoded)."""
    union = np.zeros((h, w), dtype=bool)
    for a in record.annotations:
        union |= a.mask(h, w).astype(bool)
    return union


def _add_phase(stats: dict[str, Any], prob: torch.Tensor, view: Any, idx: int) -> None:
    """Accumulate one image's phase-map intersection, union and void fractions against its instance masks."""
    pred = (prob > 0.5).cpu().numpy()
    add_phase_pixels(stats, pred, _phase_truth(view.dataset.images[idx], *pred.shape))


def add_phase_pixels(stats: dict[str, Any], pred: np.ndarray, truth: np.ndarray) -> None:
    """Accumulate one image's thresholded map ``pred`` against ``truth`` (bool arrays) for :func:`phase_metrics`."""
    stats.setdefault("inter", 0)
    stats.setdefault("union", 0)
    stats.setdefault("void_err", []).append(abs(float(pred.mean()) - float(truth.mean())))
    stats["inter"] += int(np.count_nonzero(pred & truth))
    stats["union"] += int(np.count_nonzero(pred | truth))


def phase_metrics(stats: dict[str, Any]) -> dict[str, float]:
    """``{"iou", "void_abs_err", "images"}`` of the phase map (IoU pooled over the pixels of all images)."""
    n = len(stats.get("void_err", []))
    return {
        "iou": stats["inter"] / stats["union"] if stats.get("union") else 1.0,
        "void_abs_err": float(np.mean(stats["void_err"])) if n else 0.0,
        "images": n,
    }


def _image_only(view: Any, idx: int) -> torch.Tensor:
    rec = view.dataset.images[idx]
    bgr = rec.load()
    return torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1])).permute(2, 0, 1).float().div_(255.0)


def coco_metrics(dataset: Dataset, results: list[dict[str, Any]], max_dets: int = 100) -> dict[str, Any]:
    """COCO AP of ``results`` against ``dataset``: ``{"bbox": {...}, "segm": {...}, "per_class": {...}}``.

    ``bbox``/``segm`` hold AP, AP50, AP75, APs, APm, APl in [0, 1] (-1 where no ground truth of that
    size exists); ``per_class`` maps class name to ``{"bbox": AP, "segm": AP, "instances": n}``.
    ``max_dets`` is COCO's detections-per-image limit (100 is the standard; dense scenes with more
    objects than that need the model's own limit, or recall is capped).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = COCO()
    gt.dataset = dataset.to_coco(relative_to=None)
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    out: dict[str, Any] = {
        "images": len(dataset.images),
        "instances": dataset.num_instances,
        "detections": len(results),
        "max_dets": max_dets,
    }
    per_class: dict[str, dict[str, float]] = {
        name: {"instances": n} for name, n in dataset.class_counts().items()
    }
    for iou_type in ("bbox", "segm"):
        if not results or not gt.dataset["annotations"]:
            out[iou_type] = {k: 0.0 for k in STAT_NAMES}
            for entry in per_class.values():
                entry[iou_type] = 0.0
            continue
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes([dict(r) for r in results])
            ev = COCOeval(gt, dt, iou_type)
            ev.params.maxDets = [1, 10, max_dets]  # summarize() reads AP at maxDets[2]
            ev.evaluate()
            ev.accumulate()
        precision = ev.eval["precision"]  # [T, R, K, A, M]
        out[iou_type] = _summary(precision, ev.params.iouThrs)
        for k, cat_id in enumerate(ev.params.catIds):
            p = precision[:, :, k, 0, -1]
            p = p[p > -1]
            name = dataset.classes[cat_id - 1]
            per_class[name][iou_type] = float(p.mean()) if p.size else -1.0
    out["per_class"] = per_class
    return out


def _summary(precision: np.ndarray, iou_thrs: np.ndarray) -> dict[str, float]:
    """COCO's six AP numbers at the last maxDets (pycocotools' summarize() assumes maxDets=100)."""

    def mean(p: np.ndarray) -> float:
        p = p[p > -1]
        return float(p.mean()) if p.size else -1.0

    t50 = int(np.argmin(np.abs(iou_thrs - 0.5)))
    t75 = int(np.argmin(np.abs(iou_thrs - 0.75)))
    return {
        "AP": mean(precision[:, :, :, 0, -1]),
        "AP50": mean(precision[t50, :, :, 0, -1]),
        "AP75": mean(precision[t75, :, :, 0, -1]),
        "APs": mean(precision[:, :, :, 1, -1]),
        "APm": mean(precision[:, :, :, 2, -1]),
        "APl": mean(precision[:, :, :, 3, -1]),
    }


def evaluate_model(
    model: torch.nn.Module,
    dataset: Dataset,
    device: str | torch.device = "cpu",
    results_json: str | Path | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Predict and score in one call; optionally write the COCO results JSON (masks as RLE).

    A model with a phase head also gets ``"phase"``: :func:`phase_metrics` of its map.
    """
    stats: dict[str, Any] = {}
    results = predict(model, dataset, device, progress=progress, phase_stats=stats)
    if results_json is not None:
        write_text(results_json, json.dumps(results))
    roi_heads = getattr(model, "roi_heads", None)
    max_dets = max(100, int(getattr(roi_heads, "detections_per_img", 100)))
    metrics = coco_metrics(dataset, results, max_dets=max_dets)
    if stats:
        metrics["phase"] = phase_metrics(stats)
    return metrics


def evaluate_checkpoint(
    checkpoint: str | Path, data: list[str | Path], max_det: int | None = None, device: str | torch.device = "cpu"
) -> dict[str, Any]:
    """COCO metrics of a checkpoint on one or more datasets (merged by class name, in the checkpoint's classes)."""
    from maskrt.train.checkpoint import load_model
    from maskrt.train.dataset import align_classes, load_datasets

    model, recipe, _ = load_model(checkpoint, device)
    if max_det is not None:
        from maskrt.train.models import set_max_det

        set_max_det(model, max_det)  # dense scenes need more proposals
    ds = align_classes(load_datasets([str(p) for p in data]), recipe.classes)
    return evaluate_model(model, ds, device)


def format_metrics(metrics: dict[str, Any]) -> str:
    """A small text table of box/mask AP and per-class AP, for the CLI."""
    lines = [f"{'':6} " + " ".join(f"{k:>6}" for k in STAT_NAMES)]
    for t, label in (("bbox", "box"), ("segm", "mask")):
        lines.append(f"{label:6} " + " ".join(f"{metrics[t][k]:6.3f}" for k in STAT_NAMES))
    lines.append("per class (AP box / mask, instances):")
    for name, v in metrics.get("per_class", {}).items():
        lines.append(f"  {name}: {v.get('bbox', 0):.3f} / {v.get('segm', 0):.3f}  ({v['instances']})")
    if "phase" in metrics:
        ph = metrics["phase"]
        lines.append(f"phase map: IoU {ph['iou']:.3f}, void fraction abs. error {ph['void_abs_err']:.4f} "
                     f"({ph['images']} images)")
    return "\n".join(lines)
