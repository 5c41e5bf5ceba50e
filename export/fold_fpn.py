"""An exact, cheaper form of the FPN's finest level for export (issue 19).

torchvision's FPN computes its stride-4 output as ``P2 = K * (L * C2 + up(I3))``: a 1x1 lateral convolution ``L``
of the backbone's stride-4 map ``C2``, plus the stride-8 inner map ``I3`` upsampled 2x (nearest), then a dense 3x3
convolution ``K`` at 160x160 (a 640 px input). Both terms are linear, so the same values come from two cheaper
operations:

- ``(K . L) * C2``: ``K`` and ``L`` folded into one 3x3 convolution straight from ``C2``'s channels (24 in the
  MobileNetV3 backbone of ``lite``, against the FPN's 128);
- ``K * up(I3 + b_L)`` as a stride-2 transposed convolution of the stride-8 map with a 4x4 kernel: nearest
  upsampling repeats each pixel 2x2, so each output pixel sums 2x2 input pixels through kernel taps of ``K`` added
  together (4 taps per output pixel instead of 9). ``L``'s bias is a constant map, which upsampling keeps as it is.

Zero padding at the border matches on both sides, so the result is exact up to float rounding (tested). Per output
pixel of a ``lite`` model the level costs ``128 x 24 x 9 + 128 x 128 x 4`` multiply-adds instead of
``128 x 24 + 128 x 128 x 9``: 0.61x. :func:`fold_fine_fpn_level` swaps the module in place before tracing, where
it is cheaper (:func:`fold_saves`: a backbone whose stride-4 map has fewer than 5/8 of the FPN's channels); the
checkpoint and its training are not touched.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FeaturePyramidNetwork

log = logging.getLogger(__name__)


def _plain_conv(block: nn.Module, kernel: int) -> nn.Conv2d | None:
    """The ``Conv2d`` of an FPN block made of that convolution alone (no norm layer), else None."""
    layers = list(block.children()) if isinstance(block, nn.Sequential) else [block]
    if len(layers) != 1 or not isinstance(layers[0], nn.Conv2d):
        return None
    conv = layers[0]
    if conv.kernel_size != (kernel, kernel) or conv.stride != (1, 1) or conv.groups != 1 or conv.dilation != (1, 1):
        return None
    if conv.padding != (kernel // 2, kernel // 2) or conv.bias is None:
        return None
    return conv


def fold_saves(fpn: nn.Module) -> bool:
    """Whether ``fpn``'s finest level can be folded exactly and the fold costs fewer multiply-adds."""
    if not isinstance(fpn, FeaturePyramidNetwork) or type(fpn) is not FeaturePyramidNetwork:
        return False
    inner, layer = fpn.inner_blocks, fpn.layer_blocks
    if not isinstance(inner, nn.ModuleList) or not isinstance(layer, nn.ModuleList) or len(inner) < 2:
        return False
    lateral, output = _plain_conv(inner[0], 1), _plain_conv(layer[0], 3)
    if lateral is None or output is None:
        return False
    c2, out = lateral.in_channels, output.out_channels
    return c2 * 9 + out * 4 < out * 9 + c2


class FoldedFPN(nn.Module):
    """``FeaturePyramidNetwork`` with its finest output computed in the folded form (module docstring).

    Every other level runs the original blocks; when the finest map is not exactly twice the next one's size
    (an input size that is not a multiple of the coarsest stride), the original computation is used.
    """

    lateral_bias: torch.Tensor

    def __init__(self, fpn: FeaturePyramidNetwork) -> None:
        super().__init__()
        if not fold_saves(fpn):
            raise ValueError("this FPN's finest level cannot be folded to fewer operations")
        self.fpn = fpn
        lateral = _plain_conv(fpn.inner_blocks[0], 1)  # type: ignore[index]
        output = _plain_conv(fpn.layer_blocks[0], 3)  # type: ignore[index]
        assert lateral is not None and output is not None
        assert lateral.bias is not None and output.bias is not None  # _plain_conv checked
        k = output.weight.detach().double()  # [out, mid, 3, 3]
        lw = lateral.weight.detach().double()[:, :, 0, 0]  # [mid, c2]
        with torch.no_grad():
            merged = torch.einsum("omhw,mc->ochw", k, lw)
            self.fine = nn.Conv2d(lw.shape[1], k.shape[0], 3, padding=1, bias=False)
            self.fine.weight.copy_(merged.float())
            # nearest 2x upsampling then K, on the coarse grid: fine rows 2i - 1 and 2i both read coarse rows i - 1
            # and i (1-D; K indexed -1, 0, +1): row 2i - 1 with taps (K[-1] + K[0], K[+1]), row 2i with (K[-1],
            # K[0] + K[+1]). So one 2x2 convolution (padding 1) gives each output position o the two fine rows
            # 2o - 1 and 2o as 2 of its channels (and columns alike: 4 channels per output channel, c-major).
            taps = torch.tensor([[[1, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 1, 1]]], dtype=torch.float64)  # [a, tap, 3]
            phases = torch.einsum("atk,bul,omkl->oabmtu", taps, taps, k)  # [out, a, b, mid, 2, 2]
            self.coarse = nn.Conv2d(k.shape[1], 4 * k.shape[0], 2, padding=1, bias=True)
            self.coarse.weight.copy_(phases.reshape(4 * k.shape[0], k.shape[1], 2, 2).float())
            self.coarse.bias.copy_(output.bias.detach().repeat_interleave(4))  # type: ignore[union-attr]
        self.register_buffer("lateral_bias", lateral.bias.detach().clone().view(1, -1, 1, 1), persistent=False)

    def _upsampled(self, coarse: torch.Tensor) -> torch.Tensor:
        """``K * up(coarse)``: the 2x2 convolution's 4 channels per output channel interleaved into a map of
        ``2h + 2`` rows (``DepthToSpace``), whose row ``r`` is fine row ``r - 1``: cropped by one at each side."""
        h, w = int(coarse.shape[-2]), int(coarse.shape[-1])
        return F.pixel_shuffle(self.coarse(coarse), 2)[:, :, 1:2 * h + 1, 1:2 * w + 1]

    def forward(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        fpn: FeaturePyramidNetwork = self.fpn
        names = list(x.keys())
        feats = list(x.values())
        last_inner = fpn.get_result_from_inner_blocks(feats[-1], -1)
        results = [fpn.get_result_from_layer_blocks(last_inner, -1)]
        for idx in range(len(feats) - 2, -1, -1):
            if idx == 0 and tuple(feats[0].shape[-2:]) == tuple(2 * s for s in last_inner.shape[-2:]):
                results.insert(0, self.fine(feats[0]) + self._upsampled(last_inner + self.lateral_bias))
                continue
            inner_lateral = fpn.get_result_from_inner_blocks(feats[idx], idx)
            top_down = F.interpolate(last_inner, size=inner_lateral.shape[-2:], mode="nearest")
            last_inner = inner_lateral + top_down
            results.insert(0, fpn.get_result_from_layer_blocks(last_inner, idx))
        if fpn.extra_blocks is not None:
            results, names = fpn.extra_blocks(results, feats, names)
        return OrderedDict(zip(names, results))


def fold_fine_fpn_level(model: nn.Module) -> bool:
    """Swap ``model.backbone.fpn`` for its :class:`FoldedFPN` when that saves work; return whether it did."""
    backbone = getattr(model, "backbone", None)
    fpn = getattr(backbone, "fpn", None)
    if backbone is None or fpn is None or not fold_saves(fpn):
        return False
    backbone.fpn = FoldedFPN(fpn)
    log.info("FPN stride-4 level folded for export (exact; 1x1 lateral + 3x3 -> 3x3 on the backbone map + 4x4/2 "
             "transposed convolution)")
    return True
