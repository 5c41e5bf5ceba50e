"""FP16 version of an exported model: the heavy layers in half precision, box geometry kept in FP32.

TensorRT 11 is strongly typed (no FP16 builder flag): precision comes from the ONNX types, so an
FP16 engine needs an FP16 ONNX. Only the convolution/GEMM-heavy parts (backbone, FPN, RPN head,
box and mask heads) are converted. Pre-processing, anchor/box decoding, clipping, NMS, RoiAlign,
TopK, the score softmax and the padding stay FP32: box coordinates of a 512-pixel image lose a
quarter pixel in FP16, too much for 5-20 pixel bubbles. Inputs and outputs keep their types
(uint8 image; float32/int32 outputs), so the runtime treats both precisions the same.

The pass is our own (onnxconverter-common's ``convert_float_to_float16`` fails on this graph while
removing its own Cast nodes): weights of converted nodes become FP16 and a ``Cast`` is inserted
wherever a tensor crosses between the two regions.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from maskrt.artifact import ArtifactMeta
from maskrt.atomic import atomic_path
from maskrt.errors import MaskrtError
from maskrt.export.metadata import props_of, set_meta

log = logging.getLogger(__name__)

FP16_PREFIXES = (
    "/backbone/",
    "/rpn/head/",
    "/roi_heads/box_head/",
    "/roi_heads/mask_head/",
    "/roi_heads/mask_predictor/",
)
"""Node-name prefixes (module paths from tracing the wrapper) whose nodes run in FP16."""

ALWAYS_FP32_OPS = frozenset({"NonMaxSuppression", "RoiAlign", "TopK", "Resize", "Range", "CumSum", "Softmax",
                             "Exp", "Log", "Sqrt", "NonZero", "Min", "Max", "Constant", "ConstantOfShape",
                             "RandomUniformLike", "Upsample"})
"""Operators kept FP32 wherever they are (numerically sensitive, index/geometry producing, or constants)."""


def _is_fp16_node(node: onnx.NodeProto) -> bool:
    return node.name.startswith(FP16_PREFIXES) and node.op_type not in ALWAYS_FP32_OPS


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {t.name: t.data_type for t in g.initializer}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        types[vi.name] = vi.type.tensor_type.elem_type
    for node in g.node:  # Constant outputs are not always in value_info
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    types[node.output[0]] = a.t.data_type
    return types


def convert_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a mixed FP16 copy of ``model`` (an FP32 maskrt export); metadata says ``precision: fp16``."""
    if any(not n.name for n in model.graph.node):
        raise MaskrtError("the ONNX model has unnamed nodes; re-export it with `maskrt export` before --half")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    types = _elem_types(model)
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    producer_fp16: set[str] = set()
    for node in g.node:
        if _is_fp16_node(node):
            producer_fp16.update(o for o in node.output if types.get(o) == TensorProto.FLOAT)
    consumers_fp32: set[str] = {i for n in g.node if not _is_fp16_node(n) for i in n.input}
    consumers_fp32.update(o.name for o in g.output)

    new_nodes: list[onnx.NodeProto] = []
    half_name: dict[str, str] = {}  # fp32 tensor -> its fp16 version
    new_inits: list[onnx.TensorProto] = []
    converted = 0
    for node in g.node:
        if not _is_fp16_node(node):
            new_nodes.append(node)
            continue
        converted += 1
        for k, name in enumerate(node.input):
            if not name or types.get(name) != TensorProto.FLOAT:
                continue
            if name in producer_fp16:
                node.input[k] = name + "__h"
                continue
            if name not in half_name:
                src = inits.get(name)
                if src is None and name in consts:
                    src = next(a.t for a in consts[name].attribute if a.name == "value")
                hname = name + "__fp16"
                if src is not None:
                    arr = numpy_helper.to_array(src).astype(np.float16)
                    new_inits.append(numpy_helper.from_array(arr, hname))
                else:
                    new_nodes.append(helper.make_node("Cast", [name], [hname], name=hname + "_cast",
                                                      to=TensorProto.FLOAT16))
                half_name[name] = hname
            node.input[k] = half_name[name]
        if node.op_type == "Cast":
            for a in node.attribute:
                if a.name == "to" and a.i == TensorProto.FLOAT:
                    a.i = TensorProto.FLOAT16
        outs = list(node.output)
        for k, name in enumerate(outs):
            if name in producer_fp16:
                node.output[k] = name + "__h"
        new_nodes.append(node)
        for name in outs:
            if name in producer_fp16 and name in consumers_fp32:
                new_nodes.append(helper.make_node("Cast", [name + "__h"], [name], name=name + "__h_cast",
                                                  to=TensorProto.FLOAT))
    del g.node[:]
    g.node.extend(new_nodes)
    g.initializer.extend(new_inits)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    meta = ArtifactMeta.from_props(props_of(model))
    set_meta(model, ArtifactMeta(**{**meta.__dict__, "precision": "fp16"}))
    onnx.checker.check_model(model)
    log.info("FP16: %d of %d nodes converted", converted, len(new_nodes))
    return model


def write_fp16(src: str | Path, dst: str | Path) -> Path:
    """Read the FP32 ONNX ``src`` and atomically write its FP16 version to ``dst``."""
    half = convert_fp16(onnx.load(str(src)))
    with atomic_path(dst) as tmp:
        onnx.save(half, str(tmp))
    return Path(dst)
