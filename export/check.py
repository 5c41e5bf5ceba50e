"""TensorRT-compatibility check of an ONNX model: every reason TensorRT's ONNX parser would reject it.

The supported operator set is the "Y" rows of onnx-tensorrt's ``docs/operators.md`` for TensorRT
10.x (10.15 table; TensorRT 11 parses the same set, strongly typed). Beyond operators, it flags
control flow (``Loop``/``If``/``Scan``: they keep a graph from being static and the paste-in-a-
``Loop`` form of torchvision's export is rejected by TensorRT), non-static input/output dimensions,
and the attribute restrictions listed in that table.

Example:
    >>> problems = check_model("model.onnx")
    >>> print("\\n".join(str(p) for p in problems) or "TensorRT-compatible")
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import numpy_helper

from maskrt.errors import MaskrtError

TRT_SUPPORTED_OPS = frozenset(
    ["Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh", "Attention", "AveragePool", "BatchNormalization", "BlackmanWindow", "Cast", "CastLike", "Ceil", "Celu", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DeformConv", "DepthToSpace", "DequantizeLinear", "Div", "Dropout", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "GroupNormalization", "GRU", "HammingWindow", "HannWindow", "HardSigmoid", "HardSwish", "Hardmax", "Identity", "If", "ImageScaler", "InstanceNormalization", "IsInf", "IsNaN", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop", "LRN", "LSTM", "LpNormalization", "LpPool", "MatMul", "Max", "MaxPool", "Mean", "MeanVarianceNormalization", "Min", "Mish", "Mod", "Mul", "Neg", "NonMaxSuppression", "NonZero", "Not", "OneHot", "Or", "Pad", "ParametricSoftplus", "Pow", "PRelu", "QuantizeLinear", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize", "ReverseSequence", "RMSNormalization", "RNN", "RoiAlign", "RotaryEmbedding", "Round", "STFT", "ScaledTanh", "Scan", "Scatter", "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh", "TensorScatter", "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze", "Upsample", "Where", "Xor"]
)
"""ONNX operators the TensorRT 10 ONNX parser converts natively (no plugins)."""

CONTROL_FLOW_OPS = frozenset({"Loop", "If", "Scan"})
"""Parsed by TensorRT, but not allowed in a maskrt artifact: they make shapes and timing data-dependent."""

TOPK_MAX_K = 3840
OPSET_RANGE = (9, 20)  # TensorRT 10.0 accepts opsets 9..20 (later 10.x up to 24)
RESIZE_MODES = {"nearest", "linear"}
RESIZE_COORD_MODES = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
NEAREST_MODES = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"}


@dataclass(frozen=True)
class Violation:
    """One reason TensorRT would reject (or we do not accept) the model."""

    kind: str  # "operator" | "control-flow" | "dynamic-shape" | "attribute" | "opset" | "dtype"
    where: str  # node or tensor name
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.where}: {self.detail}"


def _walk(graph: onnx.GraphProto, prefix: str = "") -> Iterator[tuple[str, onnx.NodeProto]]:
    for i, node in enumerate(graph.node):
        name = f"{prefix}{node.name or node.op_type + '_' + str(i)}"
        yield name, node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _walk(attr.g, name + "/")
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _walk(g, name + "/")


def _attr(node: onnx.NodeProto, name: str, default: object = None) -> object:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _text(v: object) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _constants(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    """Tensors known at build time: initializers and Constant node outputs."""
    out = {t.name: t for t in model.graph.initializer}
    for _, node in _walk(model.graph):
        if node.op_type == "Constant" and node.output:
            value = _attr(node, "value")
            if isinstance(value, onnx.TensorProto):
                out[node.output[0]] = value
    return out


def _static_dims(vi: onnx.ValueInfoProto) -> list[str] | None:
    """The dims as text when any is not a fixed positive number, else None."""
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return ["unknown rank"]
    dims = [d.dim_param if d.dim_param else (str(d.dim_value) if d.HasField("dim_value") else "?") for d in t.shape.dim]
    ok = all(d.HasField("dim_value") and d.dim_value > 0 for d in t.shape.dim)
    return None if ok else dims


def check_model(model: onnx.ModelProto | str | Path) -> list[Violation]:
    """List every TensorRT-compatibility violation of ``model`` (a path or a loaded ModelProto)."""
    if not isinstance(model, onnx.ModelProto):
        path = Path(model)
        if not path.is_file():
            raise MaskrtError("ONNX file not found; pass the path of an exported .onnx model", path=path)
        try:
            model = onnx.load(str(path))
        except Exception as exc:  # protobuf decode errors have many types
            raise MaskrtError(f"cannot read as ONNX ({type(exc).__name__}); is the file complete?", path=path) from exc
    out: list[Violation] = []
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not OPSET_RANGE[0] <= imp.version <= OPSET_RANGE[1]:
            out.append(Violation("opset", "model", f"opset {imp.version} outside TensorRT 10's {OPSET_RANGE}"))
    consts = _constants(model)
    for name, node in _walk(model.graph):
        out.extend(_check_node(name, node, consts))
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - report, do not crash the check
        out.append(Violation("dynamic-shape", "model", f"shape inference failed: {exc}"))
        inferred = model
    graph_io = list(inferred.graph.input) + list(inferred.graph.output)
    init_names = {t.name for t in inferred.graph.initializer}
    for vi in graph_io:
        if vi.name in init_names:
            continue
        dims = _static_dims(vi)
        if dims is not None:
            kind = "output" if vi in inferred.graph.output else "input"
            out.append(Violation("dynamic-shape", vi.name, f"{kind} has non-static shape [{', '.join(dims)}]"))
    seen = {vi.name for vi in graph_io}
    for vi in inferred.graph.value_info:
        if vi.name in seen:
            continue
        seen.add(vi.name)
        et = vi.type.tensor_type.elem_type
        if et == onnx.TensorProto.UINT8:
            out.append(Violation("dtype", vi.name, "uint8 is only supported as a network input or output"))
        elif et in (onnx.TensorProto.STRING, onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128):
            out.append(Violation("dtype", vi.name, f"type {onnx.TensorProto.DataType.Name(et)} unsupported"))
    return out


def _check_node(name: str, node: onnx.NodeProto, consts: dict[str, onnx.TensorProto]) -> list[Violation]:
    op = node.op_type
    label = f"{name} ({op})"
    if node.domain not in ("", "ai.onnx"):
        return [Violation("operator", label, f"custom domain {node.domain!r} needs a TensorRT plugin")]
    if op in CONTROL_FLOW_OPS:
        return [Violation("control-flow", label, f"{op} makes the graph data-dependent; remove it")]
    if op not in TRT_SUPPORTED_OPS:
        return [Violation("operator", label, "not supported by the TensorRT ONNX parser")]
    out: list[Violation] = []
    if op == "TopK":
        if len(node.input) > 1 and node.input[1] not in consts:
            out.append(Violation("attribute", label, "K must be a build-time constant"))
        elif len(node.input) > 1:
            k = int(numpy_helper.to_array(consts[node.input[1]]).reshape(-1)[0])
            if k >= TOPK_MAX_K:
                out.append(Violation("attribute", label, f"K={k} must be less than {TOPK_MAX_K}"))
        if int(_attr(node, "sorted", 1)) != 1:  # type: ignore[call-overload]
            out.append(Violation("attribute", label, "sorted must be 1"))
    elif op == "Resize":
        mode = _text(_attr(node, "mode", "nearest"))
        coord = _text(_attr(node, "coordinate_transformation_mode", "half_pixel"))
        nearest = _text(_attr(node, "nearest_mode", "round_prefer_floor"))
        if mode not in RESIZE_MODES:
            out.append(Violation("attribute", label, f"mode {mode!r} unsupported (nearest, linear)"))
        if coord not in RESIZE_COORD_MODES:
            out.append(Violation("attribute", label, f"coordinate_transformation_mode {coord!r} unsupported"))
        if mode == "nearest" and nearest not in NEAREST_MODES:
            out.append(Violation("attribute", label, f"nearest_mode {nearest!r} unsupported"))
        if int(_attr(node, "antialias", 0)):  # type: ignore[call-overload]
            out.append(Violation("attribute", label, "antialiasing is unsupported"))
    elif op in ("MaxPool", "AveragePool", "LpPool"):
        dil = _attr(node, "dilations", [])
        if dil and any(int(d) != 1 for d in dil):  # type: ignore[attr-defined]
            out.append(Violation("attribute", label, "dilations must be all ones"))
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            out.append(Violation("attribute", label, "the Indices output is unsupported"))
    elif op == "ScatterND" and _text(_attr(node, "reduction", "none")) != "none":
        out.append(Violation("attribute", label, "reduction other than none is unsupported"))
    elif op in ("Squeeze", "Unsqueeze") and len(node.input) > 1 and node.input[1] not in consts:
        out.append(Violation("attribute", label, "axes must be a constant"))
    elif op.startswith("Reduce") and len(node.input) > 1 and node.input[1] and node.input[1] not in consts:
        out.append(Violation("attribute", label, "axes must be an initializer"))
    elif op == "CumSum" and node.input[1] not in consts:
        out.append(Violation("attribute", label, "axis must be a build-time constant"))
    elif op == "OneHot" and node.input[1] not in consts:
        out.append(Violation("attribute", label, "depth must be a build-time constant"))
    elif op == "LSTM" and (int(_attr(node, "input_forget", 0)) or int(_attr(node, "layout", 0))):  # type: ignore[call-overload]
        out.append(Violation("attribute", label, "input_forget and layout must be 0"))
    elif op == "Constant":
        for a in node.attribute:
            if a.name in ("sparse_value", "value_string", "value_strings"):
                out.append(Violation("attribute", label, f"Constant with {a.name} is unsupported"))
    return out
