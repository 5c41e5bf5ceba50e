"""Fixtures for the runtime tests: tiny ONNX models that honour the artifact contract without torch.

``make_model`` writes a graph whose outputs are constants (the detections a test asks for), so the
runtime's whole path -- metadata, preprocessing, ONNX Runtime, postprocessing -- runs in milliseconds.
With ``phase_stride=S`` it also has the optional ``phase`` output: a constant map (``phase=array``) or one
computed from the input (``phase="input"``: each ``S x S`` cell's mean grey level / 255, the letterbox padding
included), so that a test knows every value the runtime must cut out and resize.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maskrt.artifact import ArtifactMeta


def disc_mask(m: int = 28) -> np.ndarray:
    """An ``m x m`` probability map of a disc filling the box (what a round bubble's mask head gives)."""
    yy, xx = np.mgrid[0:m, 0:m] + 0.5
    r = np.hypot(xx - m / 2, yy - m / 2) / (m / 2)
    return np.clip(1.5 - r, 0.0, 1.0).astype(np.float32) ** 2


def write_model(
    path: Path,
    dets: list[tuple[tuple[float, float, float, float], float, int]],
    input_size: tuple[int, int] = (128, 128),
    class_names: tuple[str, ...] = ("bubble", "droplet"),
    max_det: int = 10,
    mask_size: int = 28,
    props: dict[str, str] | None = None,
    drop_props: bool = False,
    batch: int = 1,
    phase_stride: int = 0,
    phase: np.ndarray | str = "input",
) -> Path:
    """Write an ONNX model with constant outputs: ``dets`` = [(box xyxy in input pixels, score, label 1-based)].

    With ``batch > 1``, batch item ``b`` holds the first ``len(dets) - b`` detections (so items differ).
    With ``phase_stride`` S > 0 the model has a ``phase`` output ``[batch, H / S, W / S]`` and its metadata
    says so: ``phase="input"`` computes it from the input image (each cell's mean grey level / 255), an array is the
    constant map (``[H / S, W / S]`` for every item, or one per item).
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    d = max_det
    boxes = np.zeros((1, d, 4), np.float32)
    scores = np.zeros((1, d), np.float32)
    labels = np.zeros((1, d), np.int32)
    masks = np.zeros((1, d, mask_size, mask_size), np.float32)
    for k, (box, score, label) in enumerate(dets):
        boxes[0, k] = box
        scores[0, k] = score
        labels[0, k] = label
        masks[0, k] = disc_mask(mask_size)
    num = np.array([len(dets)], np.int32)
    if batch > 1:
        boxes, scores, labels, masks = (np.repeat(a, batch, axis=0) for a in (boxes, scores, labels, masks))
        num = np.array([max(len(dets) - b, 0) for b in range(batch)], np.int32)
    outs = {"boxes": boxes, "scores": scores, "labels": labels, "masks": masks, "num_dets": num}
    shapes = {name: list(arr.shape) for name, arr in outs.items()}
    if phase_stride and not isinstance(phase, str):
        grid = np.asarray(phase, np.float32)
        outs["phase"] = np.ascontiguousarray(np.broadcast_to(grid, (batch, *grid.shape[-2:])))
        shapes["phase"] = list(outs["phase"].shape)
    nodes = [
        helper.make_node("Constant", [], [name], value=numpy_helper.from_array(arr, name + "_value"))
        for name, arr in outs.items()
    ]
    if phase_stride and isinstance(phase, str):
        assert phase == "input", phase
        s = phase_stride
        scale = numpy_helper.from_array(np.array(1 / 255, np.float32), "inv255")
        axes = numpy_helper.from_array(np.array([1], np.int64), "squeeze_axes")
        nodes += [
            helper.make_node("Constant", [], ["inv255"], value=scale),
            helper.make_node("Constant", [], ["squeeze_axes"], value=axes),
            helper.make_node("Cast", ["images"], ["images_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["images_f"], ["grey"], axes=[3], keepdims=1),  # [B, H, W, 1]
            helper.make_node("Transpose", ["grey"], ["grey_nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("Mul", ["grey_nchw", "inv255"], ["unit"]),
            helper.make_node("AveragePool", ["unit"], ["pooled"], kernel_shape=[s, s], strides=[s, s]),
            helper.make_node("Squeeze", ["pooled", "squeeze_axes"], ["phase"]),
        ]
        shapes["phase"] = [batch, input_size[0] // s, input_size[1] // s]
    dtypes = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32}
    out_types = {name: dtypes[arr.dtype] for name, arr in outs.items()} | (
        {"phase": TensorProto.FLOAT} if phase_stride else {})
    graph = helper.make_graph(
        nodes,
        "fake_maskrt",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [batch, input_size[0], input_size[1], 3])],
        [helper.make_tensor_value_info(n, t, shapes[n]) for n, t in out_types.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ArtifactMeta(
        arch="fake", class_names=list(class_names), input_size=input_size, mask_size=mask_size, max_det=max_det,
        score_threshold=0.5, mask_threshold=0.5, pad_value=114, batch_size=batch, phase_stride=phase_stride,
    )
    all_props = {} if drop_props else {**meta.to_props(), **(props or {})}
    helper.set_model_props(model, all_props)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def make_model(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_model(dets=..., name="m.onnx", **write_model kwargs)`` -> path of a fake artifact."""
    counter = iter(range(1000))

    def make(dets: list[Any] | None = None, name: str | None = None, **kwargs: Any) -> Path:
        if dets is None:
            dets = [((10, 10, 50, 50), 0.9, 1), ((60, 20, 100, 60), 0.8, 2), ((20, 70, 40, 90), 0.3, 1)]
        return write_model(tmp_path / (name or f"model{next(counter)}.onnx"), dets, **kwargs)

    return make
