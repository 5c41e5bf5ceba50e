"""Store an FP32 model's weights as FP16 on disk while it still computes in FP32.

Every large float32 initializer becomes a float16 initializer followed by a ``Cast`` to float32.
ONNX Runtime folds those casts when it loads the model, and TensorRT's parser does too, so the
model runs exactly like an FP32 one (same speed, same operators) at about half the file size. The
weights lose FP16 rounding only; the bundled model ships this way to stay small. Unlike ``--half``
(:mod:`maskrt.export.fp16`), activations stay FP32, which is what CPUs want.

At a fixed input size the exporter also folds the RPN's anchors into constants with one row per
anchor (widths, heights, centres, level indices: 5 x 204,600 values at 640x640, 3.3 MB). Each is a
sum of a per-row, a per-column and a per-anchor vector on every FPN level, so
:func:`factor_grid_constants` stores those small vectors and rebuilds the array with ``Add``,
``Reshape`` and ``Concat`` (folded again when the model loads). It only replaces an array that the
rebuild reproduces exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
    _rebuild(graph, kept, casts)
    return out, converted


def _rebuild(graph: onnx.GraphProto, initializers: list[onnx.TensorProto], prepend: list[onnx.NodeProto]) -> None:
    """Replace ``graph``'s initializers and put ``prepend`` (which computes from them) before its nodes."""
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend(prepend + body)


Grid = tuple[int, int, int]
"""One FPN level's anchor grid: rows, columns, anchors per location."""


def anchor_grids(model: Any, input_size: tuple[int, int]) -> list[Grid]:
    """The anchor grid of every FPN level of a torchvision ``MaskRCNN`` at a fixed input size."""
    import torch

    with torch.no_grad():
        features = model.backbone(torch.zeros(1, 3, *input_size))
    per_loc = model.rpn.anchor_generator.num_anchors_per_location()
    return [(int(f.shape[-2]), int(f.shape[-1]), int(a)) for f, a in zip(features.values(), per_loc)]


def _factor(arr: np.ndarray, grids: Sequence[Grid]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """Per level ``(y [H], x [W], c [A])`` with ``(y[:, None, None] + x[None, :, None]) + c == level``."""
    parts = []
    start = 0
    for h, w, a in grids:
        level = arr[start:start + h * w * a].reshape(h, w, a)
        start += h * w * a
        c = level[0, 0, :]
        x = level[0, :, 0] - c[0]
        y = level[:, 0, 0] - c[0]
        if not np.array_equal((y[:, None, None] + x[None, :, None]) + c[None, None, :], level):
            return None
        parts.append((y, x, c))
    return parts


def factor_grid_constants(model: onnx.ModelProto, grids: Sequence[Grid]) -> tuple[onnx.ModelProto, int]:
    """Return a copy of ``model`` whose per-anchor constants are rebuilt from per-level vectors; and how many were.

    A float32 or int64 initializer with one value per anchor (``sum(h * w * a)`` values, shape
    ``[N]`` or ``[N, 1]``) is replaced when it factors exactly as described in the module docstring.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    total = sum(h * w * a for h, w, a in grids)
    kept, nodes, replaced = [], [], 0
    for init in graph.initializer:
        dims = list(init.dims)
        shaped = dims in ([total], [total, 1])
        if not shaped or init.data_type not in (TensorProto.FLOAT, TensorProto.INT64):
            kept.append(init)
            continue
        arr = numpy_helper.to_array(init).reshape(-1)
        parts = _factor(arr, grids)
        if parts is None:
            kept.append(init)
            continue
        name = init.name
        # each level is reshaped to [-1] or [-1, 1] (the array's rank), then Concat joins them on axis 0
        level_shape = name + "__levelshape"
        kept.append(numpy_helper.from_array(np.array([-1] + [1] * (len(dims) - 1), dtype=np.int64), level_shape))
        flat = []
        for lvl, ((h, w, a), (y, x, c)) in enumerate(zip(grids, parts)):
            p = f"{name}__grid{lvl}"
            kept += [numpy_helper.from_array(y.reshape(h, 1, 1), p + "_y"),
                     numpy_helper.from_array(x.reshape(1, w, 1), p + "_x"),
                     numpy_helper.from_array(c.reshape(1, 1, a), p + "_c")]
            nodes += [helper.make_node("Add", [p + "_y", p + "_x"], [p + "_yx"], name=p + "_add_yx"),
                      helper.make_node("Add", [p + "_yx", p + "_c"], [p + "_yxc"], name=p + "_add_c"),
                      helper.make_node("Reshape", [p + "_yxc", level_shape], [p + "_flat"], name=p + "_flat")]
            flat.append(p + "_flat")
        nodes.append(helper.make_node("Concat", flat, [name], axis=0, name=name + "__concat"))
        replaced += 1
    _rebuild(graph, kept, nodes)
    return out, replaced


def write_compact(
    src: str | Path, dst: str | Path, min_elements: int = MIN_ELEMENTS, grids: Sequence[Grid] | None = None
) -> Path:
    """Write ``src`` with FP16-stored weights to ``dst`` (atomically) after checking it with onnx.checker.

    With ``grids`` (:func:`anchor_grids`), per-anchor constants are factored first.
    """
    model = onnx.load(str(src))
    if grids:
        model, _ = factor_grid_constants(model, grids)
    model, _ = compact_weights(model, min_elements)
    onnx.checker.check_model(model)
    with atomic_path(dst) as tmp:
        onnx.save(model, str(tmp))
    return Path(dst)
