"""Trace :class:`~maskrt.export.wrapper.ExportWrapper` to a static ONNX file with maskrt metadata.

Uses the legacy TorchScript exporter (``dynamo=False``): the dynamo exporter fails on
torchvision's detection models as shipped (a data-dependent guard in ``batched_nms``; a slow test
tracks it, and shows that with :func:`static_export_patches` dynamo works too). During tracing,
:func:`static_export_patches` removes the two places where torchvision's tracing paths make the
graph dynamic (an ``If`` around NMS, a runtime top-k K in the RPN).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torchvision
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, permute_and_flatten
from torchvision.ops import boxes as box_ops
from torchvision.ops import poolers

from maskrt.artifact import INPUT_NAME, ArtifactMeta
from maskrt.atomic import atomic_path
from maskrt.errors import MaskrtError
from maskrt.export.metadata import set_meta
from maskrt.export.wrapper import ExportWrapper

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
NMS_MAX_OUTPUT = 5000
"""Bound on NonMaxSuppression's max_output_boxes_per_class (torchvision writes INT64_MAX).

TensorRT considers at most 5000 boxes per NMS anyway (2000 on SM 5.3/6.2), and every NMS here is
followed by a top-k of at most ``rpn post_nms_top_n`` / ``max_det`` (< 3840) rows, so the bound
never changes a result; it keeps TensorRT from sizing the NMS output for 2**63 boxes.
"""


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote."""

    path: Path
    nodes: int
    nodes_before_simplify: int
    simplified: bool
    size_bytes: int


@contextlib.contextmanager
def static_export_patches(max_coordinate: float) -> Iterator[None]:
    """Make torchvision's detection code trace to a static, ``If``-free graph (the input size is fixed).

    * ``batched_nms``: torchvision scripts a ``numel() == 0`` branch into an ONNX ``If``; here a
      constant per-class offset (boxes are clipped to the image before every NMS) needs no branch.
    * ``_topk_min``: under tracing, the RPN's per-level top-k K becomes a runtime ``Min`` of a
      shape, which TensorRT rejects (K must be a build-time constant); with static shapes the
      Python ``min`` is exact.
    * ``_onnx_merge_levels`` (the multi-scale RoIAlign's merge of per-level results): torchvision
      scatters every level into a zero tensor of the full result size through an index expanded to
      that size (``ConstantOfShape`` + ``Expand`` + ``ScatterElements`` per level: about 10% of an
      r50-fpn frame in ONNX Runtime). :func:`merge_levels_gather` does one ``Concat`` and one
      ``Gather`` by the inverse permutation: the same tensor, bit for bit.
    * ``RegionProposalNetwork.forward`` (inference only): torchvision decodes the box deltas of every
      anchor (204,600 at 640 px) and then keeps each level's ``pre_nms_top_n`` by objectness;
      :func:`rpn_select_then_decode` keeps them first and decodes only those: the same proposals, bit
      for bit, without the full-size concatenations and decoding (about 10 ms of a 170 ms INT8 frame on
      OpenVINO).
    * ``RoIHeads.forward`` and ``postprocess_detections`` (inference, one image, under the legacy tracer,
      which alone merges levels with ``_onnx_merge_levels``): the proposals, and then the detections,
      are put in the order of their FPN level (:func:`level_order`, the pooler's own mapping) before
      they are pooled, so each pooler's per-level results concatenated are already in RoI order and
      the merge needs no ``Gather`` of the pooled features (a copy of every RoI's ``C x 7 x 7`` or
      ``C x 14 x 14`` features). Every RoI keeps its own boxes, scores and labels; the box branch's NMS
      and the wrapper's final top-k order by score, so only exact score ties could come out in another
      order.

    Args:
        max_coordinate: an upper bound of every box coordinate (the larger input side).
    """
    original_nms = box_ops.batched_nms
    original_topk_min = det_utils._topk_min
    original_merge = poolers._onnx_merge_levels
    original_rpn_forward = RegionProposalNetwork.forward
    original_roi_forward = RoIHeads.forward
    original_postprocess = RoIHeads.postprocess_detections
    offset_step = float(max_coordinate) + 1.0

    def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> Any:
        offsets = idxs.to(boxes.dtype) * offset_step
        return box_ops.nms(boxes + offsets[:, None], scores, iou_threshold)

    def topk_min(input: torch.Tensor, orig_kval: int, axis: int) -> int:
        return min(int(orig_kval), int(input.size(axis)))

    box_ops.batched_nms = batched_nms
    det_utils._topk_min = topk_min
    by_level: dict[str, Any] = {}  # the features of the one image whose RoIs are pooled in level order now

    def merge_levels(levels: torch.Tensor, unmerged_results: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(unmerged_results) if by_level else merge_levels_gather(levels, unmerged_results)

    def roi_forward(self: RoIHeads, features: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                    image_shapes: list[tuple[int, int]], targets: Any = None) -> Any:
        # only the legacy tracer merges levels with _onnx_merge_levels (eager and dynamo scatter into place)
        if self.training or targets is not None or len(proposals) != 1 or not torchvision._is_tracing():
            return original_roi_forward(self, features, proposals, image_shapes, targets)
        order = level_order(self.box_roi_pool, features, proposals[0], image_shapes)
        by_level.update(features=features)
        try:
            return original_roi_forward(self, features, [proposals[0][order]], image_shapes, targets)
        finally:
            by_level.clear()

    def postprocess(self: RoIHeads, class_logits: torch.Tensor, box_regression: torch.Tensor,
                    proposals: list[torch.Tensor], image_shapes: list[tuple[int, int]]) -> Any:
        boxes, scores, labels = original_postprocess(self, class_logits, box_regression, proposals, image_shapes)
        if by_level and self.has_mask():
            order = level_order(self.mask_roi_pool, by_level["features"], boxes[0], image_shapes)
            boxes, scores, labels = [boxes[0][order]], [scores[0][order]], [labels[0][order]]
        return boxes, scores, labels

    poolers._onnx_merge_levels = merge_levels
    RoIHeads.forward = roi_forward  # type: ignore[method-assign]
    RoIHeads.postprocess_detections = postprocess  # type: ignore[method-assign]

    def rpn_forward(self: RegionProposalNetwork, images: ImageList, features: dict[str, torch.Tensor],
                    targets: Any = None) -> Any:
        if self.training or targets is not None:  # training needs every anchor's deltas for its loss
            return original_rpn_forward(self, images, features, targets)
        return rpn_select_then_decode(self, images, features), {}

    RegionProposalNetwork.forward = rpn_forward  # type: ignore[method-assign]
    try:
        yield
    finally:
        box_ops.batched_nms = original_nms
        det_utils._topk_min = original_topk_min
        poolers._onnx_merge_levels = original_merge
        RegionProposalNetwork.forward = original_rpn_forward  # type: ignore[method-assign]
        RoIHeads.forward = original_roi_forward  # type: ignore[method-assign]
        RoIHeads.postprocess_detections = original_postprocess  # type: ignore[method-assign]


def level_order(pooler: poolers.MultiScaleRoIAlign, features: dict[str, torch.Tensor], boxes: torch.Tensor,
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
    """The permutation that puts ``boxes`` (one image's) in the order of the FPN level ``pooler`` pools each from.

    Within a level the boxes keep their order, so the permuted boxes' ``where(levels == l)`` are consecutive
    runs and the pooler's per-level results concatenated are in the permuted boxes' order.
    """
    if pooler.scales is None or pooler.map_levels is None:  # as the pooler's forward sets them up
        pooler.scales, pooler.map_levels = poolers._setup_scales(
            poolers._filter_input(features, pooler.featmap_names), image_shapes, pooler.canonical_scale,
            pooler.canonical_level)
    levels = pooler.map_levels([boxes])
    return torch.cat([torch.where(levels == level)[0] for level in range(len(pooler.scales))])


def rpn_select_then_decode(rpn: RegionProposalNetwork, images: ImageList,
                           features: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The proposals of ``rpn`` in inference, each level's top anchors chosen before their deltas are decoded.

    torchvision's ``RegionProposalNetwork.forward`` concatenates every level's objectness and deltas,
    decodes all anchors, and then ``filter_proposals`` keeps each level's ``pre_nms_top_n`` by objectness.
    Decoding is row by row, so gathering those rows first and decoding only them gives the same boxes;
    what follows (clip, small-box and score filters, NMS per level, ``post_nms_top_n``) is
    ``filter_proposals``' own loop. Returns one ``[P, 4]`` tensor of proposals per image.
    """
    feats = list(features.values())
    objectness, deltas = rpn.head(feats)
    anchors = torch.stack(rpn.anchor_generator(images, feats))  # [N, anchors of all levels, 4]
    per_level = [int(o[0].numel()) for o in objectness]  # anchors per level: A * H * W
    num_images = int(anchors.shape[0])
    batch_idx = torch.arange(num_images, device=anchors.device)[:, None]
    boxes, scores, levels = [], [], []
    for level, (obj, dlt, anc) in enumerate(zip(objectness, deltas, anchors.split(per_level, dim=1))):
        n, a_c, h, w = obj.shape
        a = int(dlt.shape[1]) // 4
        obj = permute_and_flatten(obj, n, a, a_c // a, h, w).reshape(n, -1)  # [N, H*W*A], anchors' order
        dlt = permute_and_flatten(dlt, n, a, 4, h, w)  # [N, H*W*A, 4]
        k = det_utils._topk_min(obj, rpn.pre_nms_top_n(), 1)
        top, idx = obj.topk(k, dim=1)
        picked = rpn.box_coder.decode_single(dlt[batch_idx, idx].reshape(-1, 4), anc[batch_idx, idx].reshape(-1, 4))
        boxes.append(picked.reshape(n, -1, 4))
        scores.append(torch.sigmoid(top))
        levels.append(torch.full_like(idx, level))
    proposals, probs, lvls = torch.cat(boxes, 1), torch.cat(scores, 1), torch.cat(levels, 1)
    final = []
    for b, s, lvl, shape in zip(proposals, probs, lvls, images.image_sizes):
        b = box_ops.clip_boxes_to_image(b, shape)
        keep = box_ops.remove_small_boxes(b, rpn.min_size)
        b, s, lvl = b[keep], s[keep], lvl[keep]
        keep = torch.where(s >= rpn.score_thresh)[0]
        b, s, lvl = b[keep], s[keep], lvl[keep]
        keep = box_ops.batched_nms(b, s, lvl, rpn.nms_thresh)[: rpn.post_nms_top_n()]
        final.append(b[keep])
    return final


def merge_levels_gather(levels: torch.Tensor, unmerged_results: list[torch.Tensor]) -> torch.Tensor:
    """Per-level RoIAlign results back in RoI order: ``result[i]`` is RoI ``i``'s pooled features.

    ``unmerged_results[l]`` holds the RoIs with ``levels == l`` in index order (how torchvision's
    ``_multiscale_roi_align`` computes them), so their concatenation is the RoIs permuted by
    ``order = cat(where(levels == l))``; gathering it at the inverse permutation restores RoI order.
    """
    order = torch.cat([torch.where(levels == level)[0] for level in range(len(unmerged_results))])
    stacked = torch.cat(unmerged_results)
    positions = torch.arange(order.shape[0], dtype=order.dtype, device=order.device)
    inverse = torch.zeros_like(order).scatter(0, order, positions)
    return stacked[inverse]


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the legacy exporter's deprecation and tracer warnings (they are expected here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        levels = {}
        for name in ("torch.onnx", "torch.onnx._internal"):
            lg = logging.getLogger(name)
            levels[name] = lg.level
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def example_input(input_size: tuple[int, int], batch: int = 1, seed: int = 0) -> torch.Tensor:
    """A uint8 NHWC image to trace with (content does not matter: no data-dependent branch remains)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, input_size[0], input_size[1], 3), dtype=torch.uint8, generator=g)


def trace_to_onnx(wrapper: ExportWrapper, path: str | Path, batch: int = 1, opset: int = DEFAULT_OPSET) -> None:
    """Write the wrapper's graph to ``path`` (no metadata, not simplified)."""
    x = example_input(wrapper.input_size, batch)
    with quiet_exporter(), static_export_patches(max(wrapper.input_size)), torch.no_grad():
        torch.onnx.export(
            wrapper,
            (x,),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=wrapper.output_names,
            do_constant_folding=True,
        )


def simplify_model(model: onnx.ModelProto) -> onnx.ModelProto | None:
    """onnxslim's version of ``model``, or ``None`` when onnxslim fails on it."""
    try:
        import onnxslim
    except ImportError:
        log.warning("onnxslim is not installed; keeping the unsimplified model (pip install onnxslim)")
        return None
    try:
        slim = onnxslim.slim(model)
    except Exception as exc:  # noqa: BLE001 - onnxslim raises assorted errors on graphs it cannot handle
        log.warning("onnxslim failed (%s); keeping the unsimplified model", exc)
        return None
    if slim is None:
        return None
    try:
        onnx.checker.check_model(slim)
    except onnx.checker.ValidationError as exc:
        log.warning("onnxslim produced an invalid model (%s); keeping the unsimplified one", exc)
        return None
    return slim


def bound_nms_outputs(model: onnx.ModelProto, limit: int = NMS_MAX_OUTPUT) -> int:
    """Set every NonMaxSuppression's max_output_boxes_per_class to ``limit``; returns how many."""
    nms = [n for n in model.graph.node if n.op_type == "NonMaxSuppression"]
    if not nms:
        return 0
    name = "maskrt_nms_max_output_boxes"
    if name not in {t.name for t in model.graph.initializer}:
        model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([limit], dtype=np.int64), name))
    for node in nms:
        while len(node.input) < 3:
            node.input.append("")
        node.input[2] = name
    used = {i for n in model.graph.node for i in n.input}
    unused = [t for t in model.graph.initializer if t.name not in used]
    for t in unused:
        model.graph.initializer.remove(t)
    return len(nms)


def export_onnx(
    wrapper: ExportWrapper,
    meta: ArtifactMeta,
    out: str | Path,
    simplify: bool = True,
    opset: int = DEFAULT_OPSET,
) -> OnnxExport:
    """Export ``wrapper`` to ``out`` with ``meta`` in its metadata_props; written atomically.

    With ``simplify``, the onnxslim version is kept when it validates and has fewer nodes.
    """
    out = Path(out)
    if out.suffix != ".onnx":
        raise MaskrtError("the ONNX output path must end in .onnx; pass e.g. --out model.onnx", path=out)
    with atomic_path(out) as tmp:
        trace_to_onnx(wrapper, tmp, batch=meta.batch_size, opset=opset)
        model = onnx.load(str(tmp))
        before = len(model.graph.node)
        simplified = False
        if simplify:
            slim = simplify_model(model)
            if slim is not None and len(slim.graph.node) < before:
                model, simplified = slim, True
        bound_nms_outputs(model)
        model = onnx.shape_inference.infer_shapes(model)
        set_meta(model, meta)
        model.producer_name = "maskrt"
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
    size = out.stat().st_size
    log.info("wrote %s (%.1f MB, %d nodes%s)", out, size / 1e6, len(model.graph.node),
             f", {before} before onnxslim" if simplified else "")
    return OnnxExport(out, len(model.graph.node), before, simplified, size)
