"""INT8 version of an FP32 maskrt artifact: Q/DQ ONNX calibrated on images, for ONNX Runtime, OpenVINO, TensorRT.

The quantizer is ONNX Runtime's (``onnxruntime.quantization.quantize_static``, QDQ format); this module
chooses what it quantizes and with which rules, feeds it calibration images, and writes the artifact
with ``precision: int8`` in its metadata.

Rules followed (TensorRT's explicit quantization, its only INT8 path since TensorRT 11; OpenVINO and
ONNX Runtime read the same Q/DQ file):

* Symmetric INT8 everywhere, zero point 0 (``QuantType.QInt8`` for weights and activations,
  ``ActivationSymmetric`` / ``WeightSymmetric``): TensorRT accepts no other zero point. Weights use
  [-127, 127], activations [-128, 127] (ONNX Runtime's symmetric ranges match TensorRT's).
* Weights in 7 bits by default ([-64, 64], ONNX Runtime's ``reduce_range``; ``weight_bits=8`` /
  ``maskrt export --int8-weight-bits 8`` for [-127, 127]): on an x86 CPU without VNNI (AVX2 only, which
  many lab PCs are), ONNX Runtime's and OpenVINO's INT8 kernels multiply uint8 activations by int8
  weights with ``vpmaddubsw``, whose pairwise int16 sums saturate on full-range weights
  (2 x 255 x 127 > 32767); 7-bit weights cannot (2 x 255 x 64 < 32767). Measured on the bundled model on
  such a CPU (OpenVINO, 20 held-out scenes): mask AP50 0.885 -> 0.872 with 8-bit weights (the gate fails),
  0.876 with 7-bit; in exact arithmetic (no fused kernels) the two agree to 0.001 of mean mask IoU. The
  file is still plain symmetric INT8 Q/DQ, so TensorRT and VNNI CPUs read it as they read 8-bit weights.
* Weights per channel on the output-channel axis (axis 0 of Conv ``[O, I, kh, kw]`` and of Gemm
  with ``transB=1``), stored as INT8 initializers followed by a ``DequantizeLinear`` (TensorRT:
  "when using pre-quantized weights, an IDequantizeLayer is required between the weights and the
  linear operator").
* Biases stay float (``QuantizeBias: False``): TensorRT's parser rejects ``DequantizeLinear`` of an
  INT32 bias ("only activation types allowed as input to this layer"); TensorRT and ONNX Runtime fuse
  a float bias into the INT8 convolution themselves.
* Q/DQ on the inputs of every quantized Conv/Gemm, and on their outputs (ONNX Runtime's QDQ
  placement): each quantized layer's input is INT8, which is what TensorRT's placement advice asks
  of weighted layers, and an INT8 output lets TensorRT and ONNX Runtime chain INT8 kernels.
* Only the backbone, the FPN, the RPN's shared 3x3 convolution, the box/mask head convolutions and
  fully connected layers, the mask predictor's 2x2 transposed convolution and the phase head are
  quantized (:data:`QUANT_PREFIXES`): the RPN's objectness and box delta convolutions, the box predictor
  (class scores, box deltas), the mask logits convolution, the phase head's two logit layers
  (:data:`FLOAT_LAYERS`), anchor and box decoding, NMS, RoIAlign, TopK and the pre-processing stay
  FP32. The transposed convolution takes an INT8 input and INT8 weights (per output channel: axis 1
  of its ``[I, O, kh, kw]`` weight) but its output is not quantized, so the mask logits are computed
  in floating point from a floating-point input. So every tensor that NMS or box decoding reads, and
  the mask logits, are computed in floating point. (The transposed convolution was
  the largest float layer of an INT8 frame: 42-46 ms of 255-290 on OpenVINO at 300 detections, 24 ms
  in INT8, the mask AP50 of the report unchanged.)

The model is quantized from FP32 weights: the bundled artifact stores FP16 weights behind ``Cast``
nodes (:mod:`maskrt.export.compact`), which are folded back into FP32 initializers first.

Calibration sees what inference sees: images are letterboxed with the runtime's own
:func:`maskrt.runtime.preprocess.letterbox` and fed as the uint8 graph input. Without ``--calib``
they are synthetic ``maskrt synth`` scenes (``mixed``, seed :data:`CALIB_SEED`, not a seed the
bundled model trained or was evaluated on).

Known limit of ONNX Runtime's CPU execution provider on x86: it runs INT8 convolutions as
uint8 x int8, converting each symmetric int8 Q/DQ pair to uint8 at load time, but only for a tensor
with one consumer; convolutions reading or writing a tensor with several consumers (the inputs and
outputs of residual blocks) stay FP32 with fake quantization around them. See
``benchmarks/int8.py`` for what that costs.
"""

from __future__ import annotations

import glob
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from maskrt.artifact import INPUT_NAME, ArtifactMeta
from maskrt.atomic import atomic_path
from maskrt.errors import MaskrtError
from maskrt.export.metadata import props_of, set_meta
from maskrt.runtime.images import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

QUANT_OPS = ("Conv", "Gemm", "MatMul", "ConvTranspose")
"""Operator types that are quantized (when their node name has one of :data:`QUANT_PREFIXES`)."""

QUANT_PREFIXES = (
    "/backbone/",
    "/rpn/head/conv/",
    "/roi_heads/box_head/",
    "/roi_heads/mask_head/",
    "/roi_heads/mask_predictor/conv5_mask/",
    "/phase_head/",
)
"""Node-name prefixes (module paths from tracing the export wrapper) whose Conv/Gemm/MatMul/ConvTranspose
are INT8.

Left out on purpose: ``/rpn/head/cls_logits``, ``/rpn/head/bbox_pred`` (objectness and box deltas:
NMS and box decoding inputs), ``/roi_heads/box_predictor/`` (class scores, box deltas) and
``/roi_heads/mask_predictor/mask_fcn_logits`` (the mask logits), and the phase head's two logit layers
(:data:`FLOAT_LAYERS`)."""

FLOAT_LAYERS = (
    "/phase_head/block.5/",
    "/phase_head/refine/fuse/fuse.8/",
)
"""Prefixes inside :data:`QUANT_PREFIXES` that stay FP32: the phase head's stride-4 logits and its stride-2
correction (the phase map is their sigmoid), as the mask logits are."""

FLOAT_OUTPUT_OPS = ("ConvTranspose",)
"""Quantized operator types whose output is not quantized (the mask logits read the transposed convolution's)."""


CALIB_SEED = 4242
"""Seed of the default synthetic calibration scenes (training used 0, 3, 5; validation 500; held-out 1000)."""

DEFAULT_CALIB_IMAGES = 32
WEIGHT_BITS = (7, 8)
DEFAULT_WEIGHT_BITS = 7
"""INT8 weight range: 7 bits ([-64, 64]) run exactly on every CPU; 8 ([-127, 127]) saturate without VNNI."""


def check_weight_bits(bits: int) -> None:
    """Refuse an INT8 weight range other than :data:`WEIGHT_BITS` (one message for the API and the CLI)."""
    if bits not in WEIGHT_BITS:
        raise MaskrtError(f"INT8 weight bits {bits} (--int8-weight-bits {bits}); use 7 (the default: exact on every "
                          "CPU) or 8 (full range: only for CPUs with VNNI and TensorRT)")


def recipe_key() -> str:
    """What decides the quantized graph besides the model and its calibration images (cache keys use it)."""
    return repr((QUANT_OPS, QUANT_PREFIXES, FLOAT_LAYERS, FLOAT_OUTPUT_OPS, CALIB_SEED, DEFAULT_WEIGHT_BITS))


@dataclass
class Int8Result:
    """What the quantization wrote."""

    path: Path
    size_bytes: int
    quantized_nodes: int
    qdq_nodes: int
    calib_images: int
    calib_source: str


def fold_weight_casts(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Return a copy of ``model`` whose ``Cast(FP16 initializer) -> FP32`` nodes are FP32 initializers; and how many.

    The quantizer recognises weights only as initializers; a compact artifact's weights are casts.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    inits = {t.name: t for t in g.initializer}
    consumers: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            consumers[i] = consumers.get(i, 0) + 1
    keep, folded, used_src = [], [], set()
    for n in g.node:
        src = inits.get(n.input[0]) if n.op_type == "Cast" and n.input else None
        to = next((a.i for a in n.attribute if a.name == "to"), None)
        if src is not None and src.data_type == TensorProto.FLOAT16 and to == TensorProto.FLOAT:
            arr = numpy_helper.to_array(src).astype(np.float32)
            folded.append(numpy_helper.from_array(arr, n.output[0]))
            used_src.add(src.name)
            continue
        keep.append(n)
    still_used = {i for n in keep for i in n.input} | {o.name for o in g.output}
    inits_kept = [t for t in g.initializer if t.name not in used_src or t.name in still_used]
    del g.node[:]
    g.node.extend(keep)
    del g.initializer[:]
    g.initializer.extend(inits_kept + folded)
    return out, len(folded)


def quantizable_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes that become INT8 (see the module docstring)."""
    return [n.name for n in model.graph.node if n.op_type in QUANT_OPS and n.name.startswith(QUANT_PREFIXES)
            and not n.name.startswith(FLOAT_LAYERS)]


def _sample(items: Sequence[Path], n: int) -> list[Path]:
    """``n`` items spread evenly over ``items`` (all of them when there are fewer)."""
    if len(items) <= n:
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in dict.fromkeys(idx.tolist())]


def calib_files(source: str | Path) -> list[Path]:
    """Image files named by ``--calib``: a glob, an image, a folder of images, or a dataset ``load_dataset`` reads."""
    text = str(source)
    if any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise MaskrtError("--calib: the pattern matches no image (.jpg, .png, ...); check it", path=text)
        return files
    path = Path(source).expanduser()
    if not path.exists():
        raise MaskrtError("--calib: not found; pass a folder of images, a glob or a dataset", path=path)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            return files
    from maskrt.train.data import load_dataset  # a COCO/labelme/VIA/CVAT file, or a folder without images

    ds = load_dataset(path, allow_empty=True)
    files = [Path(im.file) for im in ds.images]
    if not files:
        raise MaskrtError("--calib: no images in this dataset; pass a folder of images or a dataset with some",
                          path=path)
    return files


def calibration_images(
    input_hw: tuple[int, int], count: int = DEFAULT_CALIB_IMAGES, source: str | Path | None = None,
    pad_value: int = 114,
) -> tuple[list[np.ndarray], str]:
    """``count`` letterboxed uint8 BGR model inputs for calibration, and a description of where they came from.

    ``source`` is what ``--calib`` accepts (:func:`calib_files`); ``None`` renders synthetic scenes.
    """
    from maskrt.runtime.preprocess import letterbox, to_bgr

    if count < 1:
        raise MaskrtError(f"--calib-images {count} must be at least 1 (16-64 images are typical)")
    images = []
    if source is None:
        from maskrt.train.synth.dataset import render_image

        side = max(input_hw)
        for i in range(count):
            images.append(letterbox(render_image(i, side, "mixed", seed=CALIB_SEED)[1].image, input_hw, pad_value)[0])
        return images, f"{count} synthetic mixed scenes (seed {CALIB_SEED})"
    files = _sample(calib_files(source), count)
    for f in files:
        frame = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        if frame is None:
            raise MaskrtError("--calib: cannot decode this image; remove it or convert it to PNG/JPEG", path=f)
        images.append(letterbox(to_bgr(frame), input_hw, pad_value)[0].copy())
    return images, f"{len(files)} images from {source}"


def _reader(images: Sequence[np.ndarray]) -> object:
    from onnxruntime.quantization import CalibrationDataReader

    class _Images(CalibrationDataReader):  # type: ignore[misc]
        """Feeds one letterboxed image per calibration run, as the artifact's uint8 input."""

        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(images)

        def get_next(self) -> dict[str, np.ndarray] | None:
            image = next(self._it, None)
            return None if image is None else {INPUT_NAME: np.ascontiguousarray(image[None], dtype=np.uint8)}

        def rewind(self) -> None:
            self._it = iter(images)

    return _Images()


def quantize_model(
    model: onnx.ModelProto, images: Sequence[np.ndarray], calibrate: str = "minmax-average",
    weight_bits: int = DEFAULT_WEIGHT_BITS,
) -> onnx.ModelProto:
    """INT8 Q/DQ copy of an FP32 maskrt model (see the module docstring); metadata says ``precision: int8``
    and ``int8_weight_bits``.

    ``calibrate``: ``minmax-average`` (default: each activation's range is the moving average of its
    per-image min/max, ORT's ``CalibMovingAverage``; 1 point of held-out mask AP50 lost on the bundled
    model against 2.4 for plain ``minmax``, whose ranges the rarest images stretch).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    meta = ArtifactMeta.from_props(props_of(model))
    if meta.precision != "fp32":
        raise MaskrtError(f"this model is {meta.precision}; INT8 needs the FP32 model: export the checkpoint with "
                          "`maskrt export CHECKPOINT --int8` or pass the FP32 .onnx")
    # ORT's histogram calibrators (percentile, entropy) fail on this graph: tensors whose size follows the
    # number of detections differ between images ("inhomogeneous shape"); min/max works with any shapes
    methods = {"minmax": (CalibrationMethod.MinMax, False), "minmax-average": (CalibrationMethod.MinMax, True)}
    if calibrate not in methods:
        raise MaskrtError(f"unknown calibration method {calibrate!r}; use one of {', '.join(methods)}")
    method, moving_average = methods[calibrate]
    check_weight_bits(weight_bits)
    model, folded = fold_weight_casts(model)
    nodes = quantizable_nodes(model)
    if not nodes:
        raise MaskrtError("no quantizable layer found (node names lack the module paths of a maskrt export); "
                          "re-export the checkpoint with `maskrt export`")
    log.info("INT8: %d layers, %d FP16 weights folded to FP32, %d calibration images", len(nodes), folded,
             len(images))
    with tempfile.TemporaryDirectory(prefix="maskrt-int8-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, str(src))
        quantize_static(
            str(src), str(dst), _reader(images), quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANT_OPS), nodes_to_quantize=nodes, per_channel=True,
            reduce_range=weight_bits == 7,  # weights only (activations stay [-128, 127]) in ORT 1.32's QDQ path
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=method,
            # CalibMaxIntermediateOutputs is left unset: ORT 1.32 drops the collected ranges when it is reached
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False,
                           "CalibMovingAverage": moving_average,
                           # the mask predictor's upsampling: INT8 in, float out (the mask logits read it)
                           "OpTypesToExcludeOutputQuantization": list(FLOAT_OUTPUT_OPS)},
        )  # fmt: skip
        out = onnx.load(str(dst))
    for key, value in props_of(model).items():  # the quantizer does not promise to keep metadata
        if not key.startswith("maskrt."):
            out.metadata_props.add(key=key, value=value)
    set_meta(out, ArtifactMeta(**{**meta.__dict__, "precision": "int8", "int8_weight_bits": weight_bits}))
    onnx.checker.check_model(out)
    return out


SCORE_GATE_NODE = "/roi_heads/Greater"
"""The traced ``scores > score_thresh`` of torchvision's box post-processing (before NMS and the mask head)."""


def set_graph_score_threshold(model: onnx.ModelProto, value: float, source: str | Path = "model") -> None:
    """Set the graph's score threshold (``maskrt export --graph-conf``) of an exported artifact in place.

    The threshold is one scalar constant compared with the class scores before NMS and the mask head
    (:data:`SCORE_GATE_NODE`); it is replaced by a new initializer and the metadata updated, so an artifact
    needs no checkpoint to run the mask head on fewer RoIs. Refused when the node is not the one expected.
    """
    meta = ArtifactMeta.from_props(props_of(model), source)
    if not 0.0 <= value <= meta.score_threshold:
        raise MaskrtError(f"--graph-conf {value:g} must be in [0, {meta.score_threshold:g}] (the model's default "
                          "conf); pass e.g. --graph-conf 0.3", path=source)
    inits = {t.name: t for t in model.graph.initializer}
    consts = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    gates = [n for n in model.graph.node if n.op_type == "Greater" and n.name == SCORE_GATE_NODE]
    if len(gates) == 1 and len(gates[0].input) == 2:
        name = gates[0].input[1]
        tensor = inits[name] if name in inits else consts[name].attribute[0].t if name in consts else None
        if tensor is not None and tensor.data_type == TensorProto.FLOAT:
            current = numpy_helper.to_array(tensor)
            if current.size == 1 and abs(float(current.ravel()[0]) - meta.graph_score_threshold) < 1e-6:
                new = f"maskrt_graph_score_threshold_{value:g}"
                model.graph.initializer.append(numpy_helper.from_array(
                    np.full(current.shape, value, np.float32), new))
                gates[0].input[1] = new
                if name in inits and not any(name in n.input for n in model.graph.node):
                    model.graph.initializer.remove(inits[name])  # the old constant, now unused
                set_meta(model, ArtifactMeta(**{**meta.__dict__, "graph_score_threshold": float(value)}))
                return
    raise MaskrtError("this model's score threshold node was not found (not a maskrt export, or edited); "
                      "export the checkpoint with `maskrt export CHECKPOINT --graph-conf`", path=source)


@contextmanager
def with_graph_score_threshold(src: Path, value: float | None) -> Iterator[Path]:
    """``src`` itself when ``value`` is None, else a temporary copy of it whose graph's score threshold is
    ``value`` (:func:`set_graph_score_threshold`): what an INT8 copy with ``--graph-conf`` is quantized from."""
    if value is None:
        yield src
        return
    model = onnx.load(str(src))
    set_graph_score_threshold(model, float(value), src)
    with tempfile.TemporaryDirectory(prefix="maskrt-int8-") as tmp:
        path = Path(tmp) / src.name
        onnx.save(model, str(path))
        yield path


def write_int8(
    src: str | Path, dst: str | Path, images: Sequence[np.ndarray], calib_source: str = "",
    calibrate: str = "minmax-average", weight_bits: int = DEFAULT_WEIGHT_BITS,
) -> Int8Result:
    """Quantize the FP32 artifact ``src`` on ``images`` and atomically write the INT8 artifact ``dst``."""
    src = Path(src)
    if not src.is_file():
        raise MaskrtError("ONNX model not found; export it first with `maskrt export CHECKPOINT`", path=src)
    try:
        model = onnx.load(str(src))
    except Exception as exc:  # protobuf raises its own DecodeError
        raise MaskrtError(f"not a readable ONNX file ({exc}); pass a maskrt .onnx artifact", path=src) from exc
    out = quantize_model(model, images, calibrate, weight_bits)
    with atomic_path(dst) as tmp:
        onnx.save(out, str(tmp))
    dst = Path(dst)
    qdq = sum(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in out.graph.node)
    return Int8Result(dst, dst.stat().st_size, len(quantizable_nodes(model)), qdq, len(images), calib_source)
