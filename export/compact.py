"""Store an FP32 model's weights as FP16 on disk while it still computes in FP32.

Every large float32 initializer becomes a float16 initializer followed by a ``Cast`` to float32.
ONNX Runtime folds those casts when it loads the model, and TensorRT's parser does too, so the
model runs exactly like an FP32 one (same speed, same operators) at about half the file size. The
weights lose FP16 rounding only; the bundled model ships this way to stay small. Unlike ``--half``
(:mod:`maskrt.export.fp16`), activations stay FP32, which is what CPUs want.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from maskrt.atomic import atomic_path

MIN_ELEMENTS = 1024
"""Initializers smaller than this stay FP32 (biases, anchors, constants the graph computes with)."""


def compact_weights(model: onnx.ModelProto, min_elements: int = MIN_ELEMENTS) -> tuple[onnx.ModelProto, int]:
    """Return a copy of ``model`` whose large FP32 initializers are stored as FP16; and how many were."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    casts = []
    kept = []
    converted = 0
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            kept.append(init)
            continue
        arr = numpy_helper.to_array(init)
        if np.abs(arr).max(initial=0.0) > 60000.0:  # would overflow FP16
            kept.append(init)
            continue
        half = numpy_helper.from_array(arr.astype(np.float16), init.name + "__fp16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=init.name + "__cast"))
        converted += 1
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return out, converted


def write_compact(src: str | Path, dst: str | Path, min_elements: int = MIN_ELEMENTS) -> Path:
    """Write ``src`` with FP16-stored weights to ``dst`` (atomically) after checking it with onnx.checker."""
    model, _ = compact_weights(onnx.load(str(src)), min_elements)
    onnx.checker.check_model(model)
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    return Path(dst)
