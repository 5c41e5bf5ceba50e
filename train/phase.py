"""The per-pixel phase head: a stride-4 map of the dispersed phase (vapour or droplet liquid) beside the instances.

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
"""Stride of the phase map: the FPN level it reads (``"0"``, a quarter of the input)."""


class PhaseHead(nn.Module):
    """Dispersed-phase logits ``[B, H/4, W/4]`` from the stride-4 FPN map.

    Depthwise 3x3, pointwise to ``hidden`` channels, a dilated 3x3 for a wider view, then one logit: about a
    tenth of the multiply-adds of one dense 3x3 at that level.
    """

    def __init__(self, in_channels: int, hidden: int = 32) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=2, dilation=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )
        nn.init.constant_(self.block[-1].bias, -2.0)  # start near "mostly liquid", as most pixels are

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        return self.block(feature)[:, 0]


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


def phase_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy plus soft Dice on the logits upsampled to the target's resolution.

    Dice keeps the sparse isolated-bubble frames (3 % vapour) from being learnt as "all liquid"; the
    cross-entropy keeps every pixel's probability calibrated, so thresholding at 0.5 gives the void fraction.
    """
    up = F.interpolate(logits[:, None], size=target.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    bce = F.binary_cross_entropy_with_logits(up, target)
    prob = torch.sigmoid(up)
    inter = (prob * target).sum(dim=(1, 2))
    dice = 1.0 - (2.0 * inter + 1.0) / (prob.sum(dim=(1, 2)) + target.sum(dim=(1, 2)) + 1.0)
    return bce + dice.mean()


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

    def __init__(self, backbone: nn.Module, *args: Any, **kwargs: Any) -> None:
        super().__init__(backbone, *args, **kwargs)
        self.phase_head = PhaseHead(int(backbone.out_channels))
        self.phase_only = False

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
            return {"loss_phase": phase_loss(self.phase_head(feature), phase_targets(targets, padded))}
        features = self.backbone(image_list.tensors)
        logits = self.phase_head(features["0"])
        proposals, proposal_losses = self.rpn(image_list, features, targets)
        detections, detector_losses = self.roi_heads(features, proposals, image_list.image_sizes, targets)
        if self.training:
            assert targets is not None
            losses = {**detector_losses, **proposal_losses}
            losses["loss_phase"] = phase_loss(logits, phase_targets(targets, padded))
            return losses
        detections = self.transform.postprocess(detections, image_list.image_sizes, original)
        for i, det in enumerate(detections):
            valid = (int(image_list.image_sizes[i][0]), int(image_list.image_sizes[i][1]))
            det["phase"] = phase_probability(logits[i], padded, valid, original[i])
        return detections
