"""The per-pixel phase head: a stride-4 or stride-2 map of the dispersed phase beside the instances.

Instance masks live in boxes; a dense boiling frame is one large irregular vapour patch with liquid islands,
merged bubbles and hundreds of specks, which boxes cover badly and which count for most of its void fraction.
:class:`PhaseHead` reads the FPN's finest level (stride 4, which already carries the coarser levels' context),
and predicts one logit per cell: inside any instance of any class, or not. It is trained from the union of the
instance masks (:func:`phase_loss`), so every dataset maskrt reads can train it, and is exported as the optional
``phase`` output of the artifact (:mod:`maskrt.artifact`).

:class:`PhaseMaskRCNN` is torchvision's ``MaskRCNN`` with the head: in training it adds ``loss_phase``; in
evaluation each result gets ``"phase"``, the probability map at the input image's size. With ``phase_only``
set (``maskrt train --phase-only``) only the head learns: the backbone runs without gradients and everything
else stays exactly as loaded, so the instance outputs of the checkpoint are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection import MaskRCNN

PHASE_STRIDE = 4
"""Default stride of the phase map: the FPN level it reads (``"0"``, a quarter of the input)."""


PHASE_STRIDES = (4, 2)
"""Strides the phase head can give its map at: 4 (the FPN level alone) or 2 (with :class:`PhaseRefine`)."""


class PhaseHead(nn.Module):
    """Dispersed-phase logits ``[B, H/S, W/S]`` from the stride-4 FPN map (``S = stride``).

    Depthwise 3x3, pointwise to ``hidden`` channels, a dilated 3x3 for a wider view, then one logit: about a
    tenth of the multiply-adds of one dense 3x3 at that level. With ``stride=2`` a :class:`PhaseRefine` adds a
    correction at half the input's resolution from the image itself, for boundaries of bubbles a few pixels
    across that a stride-4 cell cannot place.
    """

    def __init__(self, in_channels: int, hidden: int = 32, stride: int = PHASE_STRIDE) -> None:
        super().__init__()
        if stride not in PHASE_STRIDES:
            raise ValueError(f"phase stride {stride} is not one of {PHASE_STRIDES}")
        self.stride = int(stride)
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=2, dilation=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )
        nn.init.constant_(self.block[-1].bias, -2.0)  # start near "mostly liquid", as most pixels are
        self.refine = PhaseRefine(hidden) if self.stride == 2 else None

    def forward(self, feature: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """``feature``: the stride-4 FPN map; ``image``: the normalised input batch (needed at stride 2)."""
        hidden = self.block[:-1](feature)
        logits = self.block[-1](hidden)
        if self.refine is not None:
            if image is None:
                raise ValueError("a stride-2 phase head needs the input image")
            logits = self.refine(hidden, logits, image)
        return logits[:, 0]


class PhaseRefine(nn.Module):
    """A stride-2 correction of the stride-4 phase logits from the input image (about 0.25 GMAC at 640 px).

    The image goes through a stride-2 3x3 convolution and a separable 3x3; the stride-4 head's hidden
    features, upsampled, join it; two separable 3x3 (the second dilated) and a 1x1 give a correction that is
    added to the upsampled stride-4 logits. The last layer starts at zero, so a stride-4 head that gains a
    refinement gives the same map until it is trained (``maskrt train --phase-only --phase-stride 2``).
    """

    def __init__(self, hidden: int = 32, width: int = 16) -> None:
        super().__init__()

        def separable(ch: int, dilation: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(ch, ch, 3, padding=dilation, dilation=dilation, groups=ch, bias=False),
                    nn.Conv2d(ch, ch, 1), nn.ReLU(inplace=True)]

        self.image = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
                                   *separable(width))
        self.fuse = nn.Sequential(nn.Conv2d(hidden + width, width, 1), nn.ReLU(inplace=True),
                                  *separable(width), *separable(width, 2), nn.Conv2d(width, 1, 1))
        nn.init.zeros_(self.fuse[-1].weight)
        nn.init.zeros_(self.fuse[-1].bias)

    def forward(self, hidden: torch.Tensor, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        img = self.image(image)
        size = (int(img.shape[-2]), int(img.shape[-1]))
        up_h = F.interpolate(hidden, size=size, mode="bilinear", align_corners=False)
        up_l = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return up_l + self.fuse(torch.cat([up_h, img], dim=1))


def phase_targets(targets: list[dict[str, torch.Tensor]], size: tuple[int, int]) -> torch.Tensor:
    """The union of each image's instance masks, zero-padded to the batch tensor's ``size`` ``(H, W)``."""
    out = torch.zeros((len(targets), size[0], size[1]), dtype=torch.float32,
                      device=targets[0]["masks"].device if targets else None)
    for i, t in enumerate(targets):
        masks = t["masks"]
        if masks.numel():
            union = masks.amax(dim=0).to(torch.float32)
            out[i, : union.shape[0], : union.shape[1]] = union.clamp(0, 1)
    return out


PHASE_LOSSES = ("dice", "lovasz")
"""What the phase map is trained with beside binary cross-entropy (:func:`phase_loss`)."""


def phase_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "dice") -> torch.Tensor:
    """Binary cross-entropy plus an overlap term, on the logits upsampled to the target's resolution.

    The overlap term keeps the sparse isolated-bubble frames (3 % vapour) from being learnt as "all liquid";
    the cross-entropy keeps every pixel's probability calibrated, so thresholding at 0.5 gives the void fraction.
    ``kind="dice"``: soft Dice. It pushes a foreground pixel up harder than a background one down, so on
    bubbles a few pixels across its maps come out fat (twice as many false as missed vapour pixels on the
    real isolated frames, training frames included). ``kind="lovasz"``: the Lovasz hinge (Berman et al.,
    CVPR 2018), a tight convex surrogate of each image's IoU at logit 0, i.e. of the union IoU that is
    measured with the map thresholded at 0.5.
    """
    if kind not in PHASE_LOSSES:
        raise ValueError(f"phase loss {kind!r} is not one of {PHASE_LOSSES}")
    up = F.interpolate(logits[:, None], size=target.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    bce = F.binary_cross_entropy_with_logits(up, target)
    if kind == "lovasz":
        return bce + torch.stack([lovasz_hinge(u.reshape(-1), t.reshape(-1)) for u, t in zip(up, target)]).mean()
    prob = torch.sigmoid(up)
    inter = (prob * target).sum(dim=(1, 2))
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum(dim=(1, 2)) + target.sum(dim=(1, 2)) + 1.0)
    return bce + dice.mean()


def lovasz_hinge(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The Lovasz hinge of one image: flat ``logits`` against flat 0/1 ``labels``.

    Hinge errors sorted in decreasing order, weighted by the gradient of the Lovasz extension of the Jaccard
    loss (the increase of ``1 - IoU`` as each pixel is taken in order). An image without foreground is
    penalised by its single worst pixel, as in the reference implementation.
    """
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, descending=True)
    gt_sorted = labels[perm]
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    grad = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
    return torch.dot(F.relu(errors_sorted), grad)


def phase_probability(logits: torch.Tensor, padded: tuple[int, int], valid: tuple[int, int],
                      original: tuple[int, int]) -> torch.Tensor:
    """One image's logits ``[h4, w4]`` -> probabilities at its ``original`` size.

    ``padded`` is the batch tensor's size, ``valid`` the resized image inside it (top-left).
    """
    up = F.interpolate(logits[None, None], size=padded, mode="bilinear", align_corners=False)
    up = up[..., : valid[0], : valid[1]]
    return torch.sigmoid(F.interpolate(up, size=original, mode="bilinear", align_corners=False))[0, 0]


class PhaseMaskRCNN(MaskRCNN):
    """``MaskRCNN`` plus :class:`PhaseHead` on the backbone's ``"0"`` level (see the module docstring)."""

    def __init__(self, backbone: nn.Module, *args: Any, phase_stride: int = PHASE_STRIDE, **kwargs: Any) -> None:
        super().__init__(backbone, *args, **kwargs)
        self.phase_head = PhaseHead(int(backbone.out_channels), stride=phase_stride)
        self.phase_only = False
        self.phase_loss = "dice"  # the overlap term of :func:`phase_loss` (``maskrt train --phase-loss``)

    def train(self, mode: bool = True) -> PhaseMaskRCNN:
        super().train(mode)
        if mode and self.phase_only:  # the loaded statistics (BatchNorm) stay as they are
            for name, child in self.named_children():
                if name != "phase_head":
                    child.eval()
        return self

    def set_phase_only(self, on: bool = True) -> None:
        """Train the phase head alone: every other parameter frozen, every other module in eval mode."""
        self.phase_only = bool(on)
        for name, p in self.named_parameters():
            p.requires_grad_(name.startswith("phase_head.") or not on)
        self.train(self.training)

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None) -> Any:  # type: ignore[override]
        if self.training and targets is None:
            raise ValueError("targets are needed in training mode")
        original = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        image_list, targets = self.transform(images, targets)
        padded = (int(image_list.tensors.shape[-2]), int(image_list.tensors.shape[-1]))
        if self.training and self.phase_only:
            assert targets is not None
            with torch.no_grad():
                feature = self.backbone(image_list.tensors)["0"]
            logits = self.phase_head(feature, image_list.tensors)
            return {"loss_phase": phase_loss(logits, phase_targets(targets, padded), self.phase_loss)}
        features = self.backbone(image_list.tensors)
        logits = self.phase_head(features["0"], image_list.tensors)
        proposals, proposal_losses = self.rpn(image_list, features, targets)
        detections, detector_losses = self.roi_heads(features, proposals, image_list.image_sizes, targets)
        if self.training:
            assert targets is not None
            losses = {**detector_losses, **proposal_losses}
            losses["loss_phase"] = phase_loss(logits, phase_targets(targets, padded), self.phase_loss)
            return losses
        detections = self.transform.postprocess(detections, image_list.image_sizes, original)
        for i, det in enumerate(detections):
            valid = (int(image_list.image_sizes[i][0]), int(image_list.image_sizes[i][1]))
            det["phase"] = phase_probability(logits[i], padded, valid, original[i])
        return detections


def phase_bias_layer(model: nn.Module) -> nn.Conv2d:
    """The last layer of the phase head, whose bias shifts every logit of the map alike.

    Stride 4: the head's final 1x1. Stride 2: the refinement's final 1x1 (the map is the upsampled stride-4
    logits plus that correction, so its bias adds to every logit of the stride-2 map).
    """
    head = getattr(model, "phase_head", None)
    if not isinstance(head, PhaseHead):
        raise TypeError("the model has no phase head")
    layer = head.refine.fuse[-1] if head.refine is not None else head.block[-1]
    assert isinstance(layer, nn.Conv2d) and layer.bias is not None
    return layer


PHASE_OBJECTIVES = ("void", "iou")
"""What :func:`choose_phase_offset` minimises: mean absolute void-fraction error, or 1 - pooled IoU."""


def phase_scores(maps: list[tuple[Any, Any]], threshold: float) -> dict[str, float]:
    """Pooled IoU and mean absolute void-fraction error of probability maps thresholded at ``threshold``.

    ``maps``: ``(probability, truth)`` pairs of numpy arrays of one image each (as :func:`phase_maps` gives);
    scored as validation scores the map (:func:`maskrt.train.evaluate.phase_metrics`).
    """
    from maskrt.train.evaluate import add_phase_pixels, phase_metrics

    stats: dict[str, Any] = {}
    for prob, truth in maps:
        add_phase_pixels(stats, prob > threshold, truth)
    return phase_metrics(stats)


def choose_phase_offset(maps: list[tuple[Any, Any]], objective: str = "iou",
                        max_offset: float = 3.0, step: float = 0.05) -> tuple[float, dict[str, float]]:
    """The logit offset ``d`` (map thresholded at ``sigmoid(d)``) that minimises ``objective`` on ``maps``.

    Offsets are tried on a grid of ``step`` in ``[-max_offset, max_offset]``; among equal scores the one
    closest to 0 wins, so a calibrated map is left as it is. Returns ``(d, scores at d)``.
    """
    import math

    if objective not in PHASE_OBJECTIVES:
        raise ValueError(f"objective {objective!r} is not one of {PHASE_OBJECTIVES}")
    if not maps:
        raise ValueError("no images to calibrate the phase map on")
    n = round(max_offset / step)
    best: tuple[float, float, dict[str, float]] | None = None
    for k in sorted(range(-n, n + 1), key=abs):  # nearest to 0 first: only a strictly better offset replaces it
        d = k * step
        s = phase_scores(maps, 1.0 / (1.0 + math.exp(-d)))
        loss = s["void_abs_err"] if objective == "void" else 1.0 - s["iou"]
        if best is None or loss < best[0] - 1e-12:
            best = (loss, d, s)
    assert best is not None
    return best[1], best[2]


def shift_phase_logits(model: nn.Module, offset: float) -> None:
    """Subtract ``offset`` from every logit of the phase map: thresholding at 0.5 then equals ``sigmoid(offset)``."""
    layer = phase_bias_layer(model)
    with torch.no_grad():
        layer.bias.sub_(float(offset))
