"""The traceable module behind every exported model: uint8 frames in, fixed-shape detections out.

torchvision's ``MaskRCNN.forward`` resizes, batches and pastes masks to full resolution; traced,
those steps become an ONNX ``Loop`` whose output changes shape per iteration (TensorRT rejects it,
and it is slower than pasting on the host). :class:`ExportWrapper` skips them: it normalises the
already letterboxed uint8 image inside the graph, calls the backbone, RPN and ROI heads directly,
and pads the detections to ``max_det`` rows with operations whose output shapes are static
(``Concat`` with dummy rows, then ``TopK`` with a constant ``K``). The contract it implements is
documented in :mod:`maskrt.artifact`.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.image_list import ImageList

from maskrt.artifact import GRAPH_SCORE_THRESHOLD, OUTPUT_NAMES, PHASE_OUTPUT
from maskrt.errors import MaskrtError
from maskrt.train.models import set_input_size, set_max_det

DEFAULT_GRAPH_SCORE_THRESH = GRAPH_SCORE_THRESHOLD
"""Score threshold applied inside the graph; the runtime applies the user's (higher) threshold."""


class ExportWrapper(nn.Module):
    """Mask R-CNN inference on ``uint8 [B, H, W, 3]`` BGR images with outputs padded to ``max_det``.

    Args:
        model: a torchvision ``MaskRCNN`` (put in eval mode here).
        input_size: ``(H, W)`` of the fixed input; both multiples of 32.
        max_det: number of output rows per image.
        mean: RGB mean in 0..1 used in training.
        std: RGB std in 0..1 used in training.
        score_thresh: score threshold inside the graph (low; the runtime filters further).

    Example:
        >>> wrapper = ExportWrapper(model, (512, 512), max_det=100, mean=recipe.mean, std=recipe.std)
        >>> boxes, scores, labels, masks, num_dets = wrapper(torch.zeros(1, 512, 512, 3, dtype=torch.uint8))

    A model with a phase head (:mod:`maskrt.train.phase`) returns a sixth output, ``phase``: the
    dispersed-phase probabilities ``[B, H/S, W/S]`` of the letterboxed input (``S``: the head's stride, 4 or 2).
    """

    def __init__(
        self,
        model: MaskRCNN,
        input_size: tuple[int, int],
        max_det: int = 100,
        mean: tuple[float, ...] | list[float] = (0.485, 0.456, 0.406),
        std: tuple[float, ...] | list[float] = (0.229, 0.224, 0.225),
        score_thresh: float = DEFAULT_GRAPH_SCORE_THRESH,
    ) -> None:
        super().__init__()
        h, w = int(input_size[0]), int(input_size[1])
        if h % 32 or w % 32 or h <= 0 or w <= 0:
            raise MaskrtError(f"input size {h}x{w} must be a positive multiple of 32; pass e.g. --imgsz 512")
        if not 1 <= max_det < 3840:  # TensorRT's TopK limit
            raise MaskrtError(f"max_det {max_det} must be between 1 and 3839; pass e.g. --max-det 100")
        self.model = model.eval()
        self.has_phase = hasattr(model, "phase_head")
        self.input_size = (h, w)
        self.max_det = int(max_det)
        set_max_det(self.model, self.max_det)  # dense max_det: the proposals to fill it, as in training
        self.model.roi_heads.score_thresh = float(score_thresh)
        # the plain model (parity's eager agreement, benchmarks) must see frames at the export size,
        # not resize them to the training size kept in its transform
        set_input_size(self.model, min(h, w), max(h, w))
        # x_norm = (x / 255 - mean) / std = x * scale + shift, on RGB channels
        mean_t = torch.tensor([float(v) for v in mean], dtype=torch.float32)
        std_t = torch.tensor([float(v) for v in std], dtype=torch.float32)
        self.register_buffer("scale", (1.0 / (255.0 * std_t)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("shift", (-mean_t / std_t).view(1, 3, 1, 1), persistent=False)
        self.eval()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC BGR -> normalised float NCHW RGB."""
        x = images.to(torch.float32).permute(0, 3, 1, 2)  # cast first: TensorRT keeps uint8 only at the I/O
        x = torch.flip(x, dims=[1])  # BGR -> RGB
        return x * self.scale + self.shift

    @property
    def output_names(self) -> list[str]:
        """The graph's outputs, in the order :meth:`forward` returns them."""
        return list(OUTPUT_NAMES) + ([PHASE_OUTPUT] if self.has_phase else [])

    @property
    def phase_stride(self) -> int:
        """Stride of the ``phase`` output (0: none)."""
        return int(self.model.phase_head.stride) if self.has_phase else 0

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run detection; returns ``(boxes, scores, labels, masks, num_dets[, phase])`` as in :mod:`maskrt.artifact`."""
        x = self.preprocess(images)
        batch = int(x.shape[0])
        sizes = [self.input_size] * batch
        image_list = ImageList(x, sizes)
        features = self.model.backbone(x)
        proposals, _ = self.model.rpn(image_list, features)
        detections, _ = self.model.roi_heads(features, proposals, sizes)
        outs = [self._pad(d) for d in detections]
        result = tuple(torch.stack([o[i] for o in outs]) for i in range(5))
        if self.has_phase:
            result += (torch.sigmoid(self.model.phase_head(features["0"], x)),)
        return result

    def _pad(self, det: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Pad one image's N detections to ``max_det`` rows with static shapes."""
        d = self.max_det
        boxes, scores, labels = det["boxes"], det["scores"], det["labels"]
        masks = det["masks"][:, 0]  # [N, M, M] probabilities of the predicted class
        m = int(masks.shape[-1])  # a constant in the trace
        scores = torch.cat([scores, torch.full((d,), -1.0, dtype=scores.dtype)])
        top_scores, idx = torch.topk(scores, d)  # constant K: static [D]
        valid = top_scores > -0.5
        # the reshapes to constant shapes let ONNX shape inference see the static output dimensions
        boxes = torch.cat([boxes, torch.zeros((d, 4), dtype=boxes.dtype)])[idx].reshape(d, 4)
        labels = torch.cat([labels, torch.zeros((d,), dtype=labels.dtype)])[idx].reshape(d)
        masks = torch.cat([masks, torch.zeros((d, m, m), dtype=masks.dtype)])[idx].reshape(d, m, m)
        top_scores = top_scores.reshape(d)
        vf = valid.to(torch.float32)
        boxes = boxes * vf[:, None]
        masks = masks * vf[:, None, None]
        top_scores = top_scores.clamp(min=0.0)
        labels = labels.to(torch.int32) * valid.to(torch.int32)
        num = valid.to(torch.int32).sum().to(torch.int32)
        return boxes, top_scores, labels, masks, num
