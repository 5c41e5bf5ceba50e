"""Store an FP32 model's weights as FP16 on disk while it still computes in FP32.

Every large float32 initializer becomes a float16 initializer followed by a ``Cast`` to float32.
ONNX Runtime folds those casts when it loads the model, and TensorRT's parser does too, so the
model runs exactly like an FP32 one (same speed, same operators) at about half the file size. The
weights lose FP16 rounding only; the bundled model ships this way to stay small. Unlike ``--half``
(:mod:`maskrt.export.fp16`), activations stay FP32, which is what CPUs want.

At a fixed input size the exporter also folds the RPN's anchors into constants with one row per
anchor: widths, heights, centres and level indices of every level together (5 x 204,600 values at
640x640, 3.3 MB; exports before the RPN chose its anchors before decoding them), or one
``[anchors of the level, 4]`` array of anchor boxes per level (exports since). Each value is a sum of
a per-row, a per-column and a per-anchor vector on its FPN level, so :func:`factor_grid_constants`
stores those small vectors and rebuilds the array with ``Add``, ``Reshape`` and ``Concat`` (folded
again when the model loads); FP16 storage would round the coordinates. It only replaces an array
that the rebuild reproduces exactly.
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


def _factor_level(level: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(y [H, K], x [W, K], c [A, K])`` with ``(y[:, None, None] + x[None, :, None]) + c == level [H, W, A, K]``."""
    c = level[0, 0]
    x = level[0, :, 0] - c[0]
    y = level[:, 0, 0] - c[0]
    if not np.array_equal((y[:, None, None] + x[None, :, None]) + c[None, None], level):
        return None
    return y, x, c


def _factor(arr: np.ndarray, grids: Sequence[Grid]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """Per level ``(y [H], x [W], c [A])`` with ``(y[:, None, None] + x[None, :, None]) + c == level``."""
    parts = []
    start = 0
    for h, w, a in grids:
        part = _factor_level(arr[start:start + h * w * a].reshape(h, w, a, 1))
        start += h * w * a
        if part is None:
            return None
        parts.append(tuple(v[..., 0] for v in part))  # type: ignore[arg-type]
    return parts


def _grid_nodes(prefix: str, grid: Grid, part: tuple[np.ndarray, np.ndarray, np.ndarray], shape_name: str,
                kept: list[onnx.TensorProto], nodes: list[onnx.NodeProto]) -> str:
    """Initializers and ``Add, Add, Reshape`` that rebuild one level's array from its factors (``[H]``, ``[W]``,
    ``[A]``, or each with a trailing ``K``); its output name."""
    h, w, a = grid
    y, x, c = part
    k = y.shape[1:]
    kept += [numpy_helper.from_array(y.reshape(h, 1, 1, *k), prefix + "_y"),
             numpy_helper.from_array(x.reshape(1, w, 1, *k), prefix + "_x"),
             numpy_helper.from_array(c.reshape(1, 1, a, *k), prefix + "_c")]
    nodes += [helper.make_node("Add", [prefix + "_y", prefix + "_x"], [prefix + "_yx"], name=prefix + "_add_yx"),
              helper.make_node("Add", [prefix + "_yx", prefix + "_c"], [prefix + "_yxc"], name=prefix + "_add_c"),
              helper.make_node("Reshape", [prefix + "_yxc", shape_name], [prefix + "_flat"], name=prefix + "_flat")]
    return prefix + "_flat"


def factor_grid_constants(model: onnx.ModelProto, grids: Sequence[Grid]) -> tuple[onnx.ModelProto, int]:
    """Return a copy of ``model`` whose per-anchor constants are rebuilt from per-level vectors; and how many were.

    A float32 or int64 initializer with one value per anchor of every level (``sum(h * w * a)`` values,
    shape ``[N]`` or ``[N, 1]``), or a float32 ``[h * w * a, 4]`` array of one level's anchor boxes, is
    replaced when it factors exactly as described in the module docstring.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    total = sum(h * w * a for h, w, a in grids)
    by_rows = {h * w * a: (h, w, a) for h, w, a in grids}
    kept, nodes, replaced = [], [], 0
    for init in graph.initializer:
        dims = list(init.dims)
        name = init.name
        level_shape = name + "__levelshape"
        if dims in ([total], [total, 1]) and init.data_type in (TensorProto.FLOAT, TensorProto.INT64):
            parts = _factor(numpy_helper.to_array(init).reshape(-1), grids)
            if parts is not None:
                # each level is reshaped to [-1] or [-1, 1] (the array's rank), then Concat joins them on axis 0
                kept.append(numpy_helper.from_array(np.array([-1] + [1] * (len(dims) - 1), dtype=np.int64),
                                                    level_shape))
                flat = [_grid_nodes(f"{name}__grid{lvl}", grid, part, level_shape, kept, nodes)
                        for lvl, (grid, part) in enumerate(zip(grids, parts))]
                nodes.append(helper.make_node("Concat", flat, [name], axis=0, name=name + "__concat"))
                replaced += 1
                continue
        elif len(dims) == 2 and dims[1] == 4 and dims[0] in by_rows and init.data_type == TensorProto.FLOAT:
            grid = by_rows[dims[0]]
            part = _factor_level(numpy_helper.to_array(init).reshape(*grid, 4))
            if part is not None:
                kept.append(numpy_helper.from_array(np.array([-1, 4], dtype=np.int64), level_shape))
                flat = _grid_nodes(f"{name}__grid", grid, part, level_shape, kept, nodes)
                nodes.append(helper.make_node("Identity", [flat], [name], name=name + "__rebuilt"))
                replaced += 1
                continue
        kept.append(init)
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
