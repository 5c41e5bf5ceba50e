"""Start a ``lite-fast`` model from ``lite`` weights without losing what the two stride-4 convolutions knew.

``lite-fast`` is ``lite`` with its two 3x3 convolutions on the stride-4 level (the FPN's output block and the RPN
head's convolution on that level) made depthwise-separable: every other weight loads from a ``lite`` checkpoint
as is, but these two would start from random values, and with them every detection and mask of the new model.

:func:`distil_stride_four` fills them from the dense convolutions they replace:

1. a per-input-channel rank-1 factorisation of the dense kernel (the best separable kernel in weight space, SVD);
2. then a short least-squares fit on the model's own feature maps of a few training images: the separable
   convolution is trained to give the dense one's (pre-activation) output on the same input, the rest of the
   model untouched.

Fine-tuning the whole model afterwards starts from a model that already detects (measured in
``benchmarks/README.md``), instead of one whose proposals are random.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from maskrt.train.models import SeparableConv3x3

log = logging.getLogger(__name__)

DENSE_FPN = "backbone.fpn.layer_blocks.0.0"  # lite: the FPN's 3x3 output block on the stride-4 level
DENSE_RPN = "rpn.head.conv.0.0"  # lite: the RPN head's 3x3 convolution (shared by all levels)


def has_dense_stride_four(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` (a ``lite`` model's) holds both dense convolutions ``lite-fast`` replaces."""
    return all(f"{p}.{t}" in state for p in (DENSE_FPN, DENSE_RPN) for t in ("weight", "bias"))


def _dense(state: dict[str, torch.Tensor], prefix: str) -> nn.Conv2d:
    w, b = state[f"{prefix}.weight"].float(), state[f"{prefix}.bias"].float()
    conv = nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(w)
        conv.bias.copy_(b)
    return conv.requires_grad_(False)


@torch.no_grad()
def factorise(sep: SeparableConv3x3, dense: nn.Conv2d) -> float:
    """Set ``sep`` to the best rank-1-per-input-channel copy of ``dense``; return the kernel's relative error."""
    w = dense.weight  # [out, in, 3, 3]
    out_ch, in_ch = w.shape[:2]
    m = w.reshape(out_ch, in_ch, 9).permute(1, 0, 2)  # per input channel: [out, 9]
    u, s, vh = torch.linalg.svd(m, full_matrices=False)
    root = s[:, 0].sqrt()
    depthwise, pointwise = sep[0], sep[1]
    depthwise.weight.copy_((vh[:, 0, :] * root[:, None]).reshape(in_ch, 1, 3, 3))
    pointwise.weight.copy_((u[:, :, 0] * root[:, None]).T.reshape(out_ch, in_ch, 1, 1))
    pointwise.bias.copy_(dense.bias)
    approx = pointwise.weight[:, :, 0, 0][:, :, None] * depthwise.weight.reshape(in_ch, 9)[None]
    return float((approx - w.reshape(out_ch, in_ch, 9)).norm() / w.norm())


@torch.no_grad()
def _stride_four_inputs(
    model: nn.Module, dense_fpn: nn.Conv2d, images: list[torch.Tensor]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The inputs of the two convolutions on each image, with ``lite``'s dense FPN block in place."""
    fpn = model.backbone.fpn
    separable = fpn.layer_blocks[0]
    fpn_in: list[torch.Tensor] = []
    handle = dense_fpn.register_forward_hook(lambda _m, args, _out: fpn_in.append(args[0].detach()))
    fpn.layer_blocks[0] = nn.Sequential(dense_fpn)
    rpn_in: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        for image in images:
            batch, _ = model.transform([image])
            rpn_in.append(model.backbone(batch.tensors)["0"].detach())
    finally:
        handle.remove()
        fpn.layer_blocks[0] = separable
        model.train(was_training)
    return fpn_in, rpn_in


def _fit(linear: nn.Module, dense: nn.Conv2d, inputs: list[torch.Tensor], steps: int, lr: float) -> tuple[float, float]:
    """Least squares: ``linear(x)`` -> ``dense(x)`` over ``inputs``; relative output error before and after."""
    targets = [dense(x) for x in inputs]

    def error() -> float:
        with torch.no_grad():
            num = sum(float((linear(x) - y).pow(2).sum()) for x, y in zip(inputs, targets))
            den = sum(float(y.pow(2).sum()) for y in targets)
        return (num / max(den, 1e-12)) ** 0.5

    before = error()
    opt = torch.optim.Adam(list(linear.parameters()), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    g = torch.Generator().manual_seed(0)
    scale = [float(y.pow(2).mean()) for y in targets]
    for _ in range(steps):
        i = int(torch.randint(len(inputs), (1,), generator=g))
        loss = F.mse_loss(linear(inputs[i]), targets[i]) / max(scale[i], 1e-12)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return before, error()


def spread_images(dataset: Any, max_size: int, n: int) -> list[torch.Tensor]:
    """``n`` images (float CHW) evenly spaced over ``dataset`` (a record of several sources: each gets its share)."""
    from maskrt.train.dataset import MaskDataset

    view = MaskDataset(dataset, max_size=max_size)
    total = len(view)
    return [view[int(i * total / n)][0] for i in range(min(total, n))]


def distil_stride_four(
    model: nn.Module, lite_state: dict[str, torch.Tensor], images: list[torch.Tensor], steps: int = 300,
    lr: float = 3e-3,
) -> dict[str, Any]:
    """Fill ``model``'s (a ``lite-fast``) separable stride-4 convolutions from ``lite_state``'s dense ones.

    Args:
        model: the ``lite-fast`` model, every other weight already loaded from ``lite_state``.
        lite_state: the ``lite`` checkpoint's state dict (:func:`has_dense_stride_four` true).
        images: a few training images (float CHW in [0, 1]); none gives the weight-space factorisation alone.
        steps: optimisation steps of each least-squares fit.

    Returns:
        Relative errors (kernel, and output on ``images`` after factorising and after fitting) per convolution.
    """
    dense_fpn, dense_rpn = _dense(lite_state, DENSE_FPN), _dense(lite_state, DENSE_RPN)
    sep_fpn, sep_rpn = model.backbone.fpn.layer_blocks[0], model.rpn.head.conv_fine
    if not isinstance(sep_fpn, SeparableConv3x3) or not isinstance(sep_rpn, SeparableConv3x3):
        raise TypeError("distil_stride_four needs a lite-fast model")
    device = next(model.parameters()).device
    dense_fpn.to(device)
    dense_rpn.to(device)
    report: dict[str, Any] = {
        "fpn": {"kernel_error": factorise(sep_fpn, dense_fpn)},
        "rpn": {"kernel_error": factorise(sep_rpn, dense_rpn)},
        "images": len(images),
    }
    if images:
        fpn_in, rpn_in = _stride_four_inputs(model, dense_fpn, [im.to(device) for im in images])
        for name, sep, dense, xs in (("fpn", sep_fpn, dense_fpn, fpn_in), ("rpn", sep_rpn, dense_rpn, rpn_in)):
            linear = nn.Sequential(sep[0], sep[1])  # the RPN's ReLU comes after, as in lite
            before, after = _fit(linear, dense, xs, steps, lr)
            report[name].update(output_error_factorised=before, output_error=after)
    log.info(
        "lite-fast stride-4 convolutions from the dense ones: output error FPN %.3f, RPN %.3f (relative, %d images)",
        report["fpn"].get("output_error", report["fpn"]["kernel_error"]),
        report["rpn"].get("output_error", report["rpn"]["kernel_error"]),
        len(images),
    )
    return report
