"""Mask R-CNN presets (all torchvision ``MaskRCNN`` underneath) and the recipe that rebuilds them.

A :class:`ModelRecipe` holds everything needed to rebuild a model without its training code: the
preset, the class names, the input size and the anchors. Checkpoints store it, so export and
evaluation need nothing else.

Example:
    >>> recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=512)
    >>> model = build_model(recipe)            # random weights
    >>> model = build_model(recipe, weights="imagenet")   # backbone from torchvision's ImageNet weights
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN, _resnet_fpn_extractor
from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import misc as misc_nn_ops
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from maskrt.errors import MaskrtError
from maskrt.train.phase import PHASE_STRIDES, PhaseMaskRCNN

log = logging.getLogger(__name__)

ARCHS = ("lite", "lite-fast", "mbv3-fpn", "r50-fpn", "r50-fpn-v2")

# Per preset: anchor sizes per FPN level (small sizes first: 5-20 px bubbles matter) and head sizes.
_DEFAULT_ANCHORS: dict[str, list[list[int]]] = {
    "lite": [[8, 12], [16, 24], [32, 48], [64, 96], [128, 256]],
    "lite-fast": [[8, 12], [16, 24], [32, 48], [64, 96], [128, 256]],
    "mbv3-fpn": [[8, 12], [16, 24], [32, 48], [64, 96], [128, 256]],
    "r50-fpn": [[16], [32], [64], [128], [256]],
    "r50-fpn-v2": [[16], [32], [64], [128], [256]],
}
ASPECT_RATIOS = (0.5, 1.0, 2.0)
LITE_CHANNELS = 128  # the lite presets' FPN width, and their mask head's unless the recipe says otherwise
MASK_HEAD_LIGHT = 64  # the light mask head's width (maskrt.train.mask_head: distilled from the 128-wide one)


@dataclass
class ModelRecipe:
    """How to rebuild a model: preset, classes, input size, anchors and head sizes."""

    arch: str
    classes: list[str]
    image_size: int = 512
    anchor_sizes: list[list[int]] = field(default_factory=list)
    aspect_ratios: list[float] = field(default_factory=lambda: list(ASPECT_RATIOS))
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    max_det: int = 100
    mask_size: int = 28
    phase: bool = False  # a per-pixel phase head beside the instances (maskrt.train.phase)
    phase_stride: int = 4  # its map's stride: 4, or 2 with the image-resolution refinement
    mask_channels: int = 0  # lite presets: the mask head's width (0: the preset's 128; 64 is MASK_HEAD_LIGHT)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise MaskrtError(f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if not self.anchor_sizes:
            self.anchor_sizes = [list(s) for s in _DEFAULT_ANCHORS[self.arch]]
        if not self.classes:
            raise MaskrtError("a model needs at least one class; check the dataset's categories")
        if int(self.phase_stride) not in PHASE_STRIDES:
            raise MaskrtError(f"phase stride {self.phase_stride} is not 4 or 2; pass --phase-stride 4 or 2")
        self.phase_stride = int(self.phase_stride)
        self.mask_channels = int(self.mask_channels)
        if self.mask_channels and self.arch not in ("lite", "lite-fast"):
            raise MaskrtError(
                f"a mask head width ({self.mask_channels}) is a lite-preset option, not {self.arch!r}'s; "
                "drop it or use --arch lite"
            )
        if self.mask_channels and not 8 <= self.mask_channels <= 512:
            raise MaskrtError(f"mask head width {self.mask_channels} is not in 8..512; 64 is the light head")

    @property
    def mask_width(self) -> int:
        """A lite preset's mask head width: ``mask_channels``, or the preset's 128 when that is 0."""
        return self.mask_channels or LITE_CHANNELS

    @property
    def num_classes(self) -> int:
        """Number of object classes (background not counted)."""
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelRecipe:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def _anchor_generator(recipe: ModelRecipe) -> AnchorGenerator:
    sizes = tuple(tuple(int(s) for s in level) for level in recipe.anchor_sizes)
    ratios = (tuple(float(r) for r in recipe.aspect_ratios),) * len(sizes)
    return AnchorGenerator(sizes, ratios)


def _mobilenet_fpn(out_channels: int, pretrained_backbone: bool) -> BackboneWithFPN:
    """MobileNetV3-Large features with an FPN on strides 4, 8, 16, 32 (+ a max-pooled stride-64 level)."""
    from torchvision.models import MobileNet_V3_Large_Weights, mobilenet_v3_large

    weights = MobileNet_V3_Large_Weights.IMAGENET1K_V1 if pretrained_backbone else None
    norm_layer = misc_nn_ops.FrozenBatchNorm2d if pretrained_backbone else nn.BatchNorm2d
    features = mobilenet_v3_large(weights=weights, norm_layer=norm_layer).features
    # the last block of each stride: the stage starts at a downsampling block (_is_cn)
    starts = [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [len(features)]
    ends = [s - 1 for s in starts[1:]] + [len(features) - 1]  # stride 4, 8, 16, 32
    ends = sorted(set(ends))[-4:]
    return_layers = {str(idx): str(k) for k, idx in enumerate(ends)}
    in_channels = [_out_channels(features[idx]) for idx in ends]
    if pretrained_backbone:  # train only the later stages, as torchvision does for fine-tuning
        for idx, block in enumerate(features):
            if idx < ends[1]:
                block.requires_grad_(False)
    return BackboneWithFPN(features, return_layers, in_channels, out_channels, extra_blocks=LastLevelMaxPool())


class SeparableConv3x3(nn.Sequential):
    """A depthwise 3x3 then a pointwise 1x1 convolution: about 1/8 of a dense 3x3's multiply-adds at 128 channels."""

    def __init__(self, channels: int, relu: bool = False) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class StrideFourLightRPNHead(nn.Module):
    """torchvision's RPN head, except that the stride-4 level goes through a separable 3x3 convolution.

    The dense 3x3 on the 160x160 stride-4 map of a 640 px input is a fifth of a ``lite`` frame on a CPU;
    the coarser levels keep the dense (shared) convolution, whose weights a ``lite`` checkpoint provides.
    """

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        from torchvision.models.detection.rpn import RPNHead

        base = RPNHead(in_channels, num_anchors)
        self.conv = base.conv
        self.cls_logits = base.cls_logits
        self.bbox_pred = base.bbox_pred
        self.conv_fine = SeparableConv3x3(in_channels, relu=True)

    def forward(self, x: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        logits, bbox_reg = [], []
        for level, feature in enumerate(x):
            t = self.conv_fine(feature) if level == 0 else self.conv(feature)
            logits.append(self.cls_logits(t))
            bbox_reg.append(self.bbox_pred(t))
        return logits, bbox_reg


def _out_channels(block: nn.Module) -> int:
    if hasattr(block, "out_channels"):
        return int(block.out_channels)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return int(convs[-1].out_channels)


def build_model(recipe: ModelRecipe, weights: str | None = None) -> MaskRCNN:
    """Build the recipe's Mask R-CNN.

    Args:
        recipe: preset, classes, input size and anchors.
        weights: ``None``/``"none"`` for random weights, ``"imagenet"`` for torchvision's ImageNet
            backbone, ``"coco"`` for torchvision's COCO Mask R-CNN (``r50-fpn``/``r50-fpn-v2`` only;
            class-specific layers are replaced). Checkpoint paths are loaded by the trainer.

    Returns:
        A ``MaskRCNN`` whose transform resizes every image so its longer side is ``image_size``.
    """
    weights = None if weights in (None, "none") else weights
    if weights not in (None, "imagenet", "coco"):
        raise ValueError(f"build_model takes weights none|imagenet|coco, not {weights!r}")
    if weights == "coco" and recipe.arch not in ("r50-fpn", "r50-fpn-v2"):
        raise MaskrtError(
            f"COCO weights exist only for r50-fpn and r50-fpn-v2, not {recipe.arch!r}; "
            "use --weights imagenet, a checkpoint, or --arch r50-fpn"
        )
    n = recipe.num_classes + 1
    size = recipe.image_size
    common: dict[str, Any] = {
        "min_size": size,
        "max_size": size,
        "image_mean": list(recipe.mean),
        "image_std": list(recipe.std),
        "rpn_anchor_generator": _anchor_generator(recipe),
        "box_detections_per_img": recipe.max_det,
    }
    num_anchors = len(recipe.anchor_sizes[0]) * len(recipe.aspect_ratios)
    from torchvision.models.detection.rpn import RPNHead

    cls: Any = MaskRCNN
    if recipe.phase:
        cls = functools.partial(PhaseMaskRCNN, phase_stride=recipe.phase_stride)

    if recipe.arch in ("lite", "lite-fast"):
        ch = LITE_CHANNELS
        mask_ch = recipe.mask_width
        backbone = _mobilenet_fpn(ch, weights == "imagenet")
        if recipe.arch == "lite-fast":  # the stride-4 3x3 convolutions become separable (FPN output, RPN head)
            backbone.fpn.layer_blocks[0] = SeparableConv3x3(ch)
        fast = recipe.arch == "lite-fast"
        model = cls(
            backbone,
            num_classes=None,
            rpn_head=StrideFourLightRPNHead(ch, num_anchors) if fast else RPNHead(ch, num_anchors),
            box_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2),
            box_head=TwoMLPHead(ch * 7 * 7, 256),
            box_predictor=FastRCNNPredictor(256, n),
            mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], 14, 2),
            mask_head=MaskRCNNHeads(ch, [mask_ch, mask_ch], 1),
            mask_predictor=MaskRCNNPredictor(mask_ch, mask_ch, n),
            rpn_pre_nms_top_n_train=1000,
            rpn_post_nms_top_n_train=500,
            rpn_pre_nms_top_n_test=500,
            rpn_post_nms_top_n_test=200,
            box_batch_size_per_image=128,
            **common,
        )
    elif recipe.arch == "mbv3-fpn":
        backbone = _mobilenet_fpn(256, weights == "imagenet")
        model = cls(
            backbone,
            num_classes=n,
            rpn_head=RPNHead(256, num_anchors),
            box_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], 7, 2),
            mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], 14, 2),
            **common,
        )
    elif recipe.arch == "r50-fpn":
        from torchvision.models import ResNet50_Weights, resnet50

        bb_weights = ResNet50_Weights.IMAGENET1K_V1 if weights == "imagenet" else None
        norm = misc_nn_ops.FrozenBatchNorm2d if weights else nn.BatchNorm2d
        trunk = resnet50(weights=bb_weights, norm_layer=norm)
        backbone = _resnet_fpn_extractor(trunk, 3 if weights else 5)
        model = cls(backbone, num_classes=n, rpn_head=RPNHead(256, num_anchors), **common)
    else:  # r50-fpn-v2
        from torchvision.models import ResNet50_Weights, resnet50

        bb_weights = ResNet50_Weights.IMAGENET1K_V1 if weights == "imagenet" else None
        trunk = resnet50(weights=bb_weights)
        backbone = _resnet_fpn_extractor(trunk, 3 if weights else 5, norm_layer=nn.BatchNorm2d)
        model = cls(
            backbone,
            num_classes=n,
            rpn_head=RPNHead(256, num_anchors, conv_depth=2),
            box_head=FastRCNNConvFCHead((256, 7, 7), [256, 256, 256, 256], [1024], norm_layer=nn.BatchNorm2d),
            mask_head=MaskRCNNHeads(256, [256, 256, 256, 256], 1, norm_layer=nn.BatchNorm2d),
            **common,
        )
    set_max_det(model, recipe.max_det)
    if weights == "coco":
        _load_coco(model, recipe.arch)
    return model


def set_input_size(model: MaskRCNN, shorter: int, longer: int | None = None) -> None:
    """Make the model resize its input so the shorter side is ``shorter`` and the longer at most ``longer``.

    torchvision's ``GeneralizedRCNNTransform`` keeps the training size; evaluation at another ``--imgsz``,
    the export wrapper (a fixed ``H x W``) and the eager benchmark row set it here. ``longer`` defaults to
    ``shorter`` (a square input of that size).
    """
    model.transform.min_size = (int(shorter),)
    model.transform.max_size = int(shorter if longer is None else longer)


def set_max_det(model: MaskRCNN, max_det: int) -> None:
    """Keep up to ``max_det`` detections per image, with enough test-time proposals to fill them.

    Dense scenes (hundreds of droplets) need more RPN proposals than the presets keep: the post-NMS
    count is raised to at least ``2 * max_det`` (pre-NMS to ``4 * max_det``), never lowered. Raising
    the detection limit alone would leave the count capped by the proposals.
    """
    max_det = int(max_det)
    model.roi_heads.detections_per_img = max_det
    post, pre = model.rpn._post_nms_top_n, model.rpn._pre_nms_top_n
    if post["testing"] < 2 * max_det:
        post["testing"] = 2 * max_det
        pre["testing"] = max(pre["testing"], 4 * max_det)


def coco_weights_enum(arch: str) -> Any:
    """torchvision's COCO weights enum member for a preset."""
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights, MaskRCNN_ResNet50_FPN_Weights

    return MaskRCNN_ResNet50_FPN_Weights.COCO_V1 if arch == "r50-fpn" else MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1


def _load_coco(model: MaskRCNN, arch: str) -> None:
    """Load torchvision's COCO weights; class-specific layers and mismatching shapes are skipped."""
    from maskrt.train.weights import fetch_torchvision_state_dict

    state = fetch_torchvision_state_dict(coco_weights_enum(arch))
    load_matching(model, state)


def load_matching(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Load every tensor whose name and shape match; return (loaded, skipped) names."""
    own = model.state_dict()
    loaded, skipped = [], []
    for k, v in state.items():
        if k in own and own[k].shape == v.shape:
            own[k] = v.to(own[k].dtype)
            loaded.append(k)
        else:
            skipped.append(k)
    model.load_state_dict(own)
    if skipped:
        log.info("loaded %d tensors; replaced %d class- or shape-specific ones (e.g. %s)", len(loaded),
                 len(skipped), skipped[0])
    return loaded, skipped


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
