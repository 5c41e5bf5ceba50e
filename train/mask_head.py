"""A lighter mask head for the lite presets, distilled from the one a checkpoint already has.

The ``lite`` mask branch runs on every detection: two 3x3 128->128 convolutions on the RoI's 14x14 features, a 2x2
transposed convolution 128->128 to 28x28 and the 1x1 logits, about 71 million multiply-adds per RoI. A real frame of
dense boiling sends 130-300 RoIs through it, which made it a third of an INT8 frame on a CPU (benchmarks/README.md).
``ModelRecipe(mask_channels=64)`` narrows it to 64 channels (``MaskRCNNHeads(128, [64, 64])`` and a 64-wide
predictor): 25 million multiply-adds per RoI, 2.8x fewer, and the transposed convolution (the slowest layer of the
branch on OpenVINO) 4x fewer.

:func:`distil_mask_head` trains that head without touching anything else: every other weight is the checkpoint's,
so the detections (boxes, scores, classes), the phase map and every RoI's pooled features are exactly the
teacher's. On a few training images the teacher runs as it is exported (eval mode, its own detections, plus boxes
jittered around them so that the head also sees slightly wrong boxes); the RoI features and the teacher's mask
logits are kept, and the narrow head is fitted to give the teacher's per-pixel probabilities (binary cross-entropy
against them). The report says how far the student's masks are from the teacher's on RoIs of images it was not
fitted on (mean mask IoU at 0.5, per-pixel disagreement).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

MASK_PARAMS = ("roi_heads.mask_head.", "roi_heads.mask_predictor.")


def is_mask_param(name: str) -> bool:
    """Whether a state-dict entry belongs to the mask head or its predictor (what :func:`distil_mask_head` fits)."""
    return name.startswith(MASK_PARAMS)


def _jitter(boxes: torch.Tensor, gen: torch.Generator, shift: float, scale: float) -> torch.Tensor:
    """Boxes moved by up to ``shift`` of their size and rescaled by up to ``1 +- scale`` (per box, uniform)."""
    if boxes.numel() == 0:
        return boxes
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1.0)
    centre = (boxes[:, 2:] + boxes[:, :2]) / 2
    r = torch.rand(boxes.shape[0], 4, generator=gen) * 2 - 1
    centre = centre + r[:, :2] * shift * wh
    wh = wh * (1 + r[:, 2:] * scale)
    return torch.cat([centre - wh / 2, centre + wh / 2], dim=1)


@torch.no_grad()
def collect_rois(
    teacher: nn.Module, images: list[torch.Tensor], per_image: int = 200, jitter: int = 1, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The teacher's mask-head inputs and outputs on its own detections of ``images`` (and jittered copies).

    Returns:
        ``(features [N, C, 14, 14] float16, logits [N, 28, 28] float16, labels [N], image index [N])``: the pooled
        RoI features, the teacher's mask logits for the class it detected there (the one mask it outputs), the
        class, and which image each RoI came from.
    """
    heads = teacher.roi_heads
    captured: list[tuple[Any, ...]] = []
    handle = heads.mask_roi_pool.register_forward_hook(lambda _m, args, _out: captured.append(args))
    gen = torch.Generator().manual_seed(seed)
    feats, logits, labels, owner = [], [], [], []
    was_training = teacher.training
    teacher.eval()
    try:
        for i, image in enumerate(images):
            captured.clear()
            label = teacher([image])[0]["labels"]  # in the order of the boxes the mask head saw
            if not captured:
                continue
            x, boxes, shapes = captured[-1]
            b = boxes[0]
            if b.shape[0] > per_image:
                keep = torch.randperm(b.shape[0], generator=gen)[:per_image]
                b, label = b[keep], label[keep]
            if b.shape[0] == 0:
                continue
            b = torch.cat([b] + [_jitter(b, gen, 0.1, 0.1) for _ in range(jitter)])
            label = label.repeat(jitter + 1)
            f = heads.mask_roi_pool(x, [b], shapes)
            out = heads.mask_predictor(heads.mask_head(f))
            feats.append(f.half())
            logits.append(out[torch.arange(out.shape[0]), label].half())
            labels.append(label)
            owner.append(torch.full((b.shape[0],), i, dtype=torch.long))
            if (i + 1) % 20 == 0:
                log.info("teacher RoIs: %d images, %d RoIs", i + 1, sum(o.numel() for o in owner))
    finally:
        handle.remove()
        teacher.train(was_training)
    if not feats:
        raise ValueError("the teacher found nothing on these images; give images with objects in them")
    return torch.cat(feats), torch.cat(logits), torch.cat(labels), torch.cat(owner)


def _agreement(
    head: Any, feats: torch.Tensor, target: torch.Tensor, labels: torch.Tensor, batch: int
) -> dict[str, float]:
    """Mean mask IoU (threshold 0.5, the detected class's mask) and per-pixel disagreement of ``head`` vs the teacher."""
    inter = union = 0.0
    ious, differ, pixels = [], 0.0, 0
    with torch.no_grad():
        for s in range(0, feats.shape[0], batch):
            got = head(feats[s : s + batch].float(), labels[s : s + batch]) > 0
            want = target[s : s + batch].float() > 0
            i = (got & want).flatten(1).sum(-1).float()
            u = (got | want).flatten(1).sum(-1).float()
            keep = u > 0
            ious.append(i[keep] / u[keep])
            inter += float(i.sum())
            union += float(u.sum())
            differ += float((got ^ want).sum())
            pixels += got.numel()
    iou = torch.cat(ious) if ious else torch.zeros(0)
    return {
        "mean_mask_iou": float(iou.mean()) if iou.numel() else 1.0,
        "pooled_mask_iou": inter / union if union else 1.0,
        "pixel_disagreement": differ / max(pixels, 1),
    }


def distil_mask_head(
    student: nn.Module,
    teacher: nn.Module,
    images: list[torch.Tensor],
    steps: int = 3000,
    batch: int = 128,
    lr: float = 2e-3,
    holdout: float = 0.15,
    per_image: int = 200,
    seed: int = 0,
    max_epochs: float | None = None,
) -> dict[str, Any]:
    """Fit ``student``'s mask head and predictor to ``teacher``'s on the teacher's RoIs of ``images``.

    Args:
        student: the narrow model, every weight but its mask head and predictor already the teacher's.
        teacher: the checkpoint's model (its mask head is the target); not changed.
        images: training images (float CHW in [0, 1]); the last ``holdout`` of them only score the fit.
        steps: optimisation steps (Adam, one-cycle schedule from 40 steps) of ``batch`` RoIs each.
        max_epochs: fewer steps when this many passes over the fitted RoIs take fewer (a few images).

    Returns:
        RoI counts and the agreement with the teacher (mean / pooled mask IoU, pixel disagreement) on the
        held-out images' RoIs, for the narrow head as initialised and as fitted.
    """
    feats, target, labels, owner = collect_rois(teacher, images, per_image=per_image, seed=seed)
    n_fit = max(1, math.ceil(len(images) * (1 - holdout)))
    fit = owner < n_fit
    if not bool(fit.any()) or bool(fit.all()):
        fit = torch.arange(feats.shape[0]) < max(1, int(feats.shape[0] * (1 - holdout)))
    xf, yf, lf = feats[fit], target[fit], labels[fit]
    xh, yh, lh = feats[~fit], target[~fit], labels[~fit]
    heads = student.roi_heads

    def head(x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        out = heads.mask_predictor(heads.mask_head(x))
        return out[torch.arange(out.shape[0]), label]

    if max_epochs is not None:
        steps = max(1, min(steps, math.ceil(max_epochs * xf.shape[0] / batch)))
    params = [p for m in (heads.mask_head, heads.mask_predictor) for p in m.parameters()]
    was_training = student.training
    student.eval()  # no BatchNorm in these heads; eval keeps the rest of the model as it is
    for p in params:
        p.requires_grad_(True)
    before = _agreement(head, xh, yh, lh, 256)
    opt = torch.optim.Adam(params, lr=lr)
    if steps >= 40:  # one cycle: up over the first 5%, then down (cosine)
        sched: Any = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    else:  # too few steps for a cycle (a test, a handful of RoIs): the rate as given
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _i: 1.0)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    for step in range(steps):
        idx = torch.randint(xf.shape[0], (min(batch, xf.shape[0]),), generator=gen)
        out = head(xf[idx].float(), lf[idx])
        want = torch.sigmoid(yf[idx].float())
        loss = F.binary_cross_entropy_with_logits(out, want)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, steps // 10) == 0:
            log.info("mask head distillation %d/%d: loss %.4f", step + 1, steps, sum(losses[-50:]) / len(losses[-50:]))
    student.train(was_training)
    after = _agreement(head, xh, yh, lh, 256)
    report = {
        "images": len(images),
        "fit_images": n_fit,
        "fit_rois": int(xf.shape[0]),
        "heldout_rois": int(xh.shape[0]),
        "steps": steps,
        "final_loss": sum(losses[-50:]) / max(len(losses[-50:]), 1),
        "initial": before,
        "distilled": after,
    }
    log.info(
        "light mask head vs the teacher's on %d held-out RoIs: mean mask IoU %.3f, pixels differing %.4f",
        xh.shape[0], after["mean_mask_iou"], after["pixel_disagreement"],
    )
    return report
