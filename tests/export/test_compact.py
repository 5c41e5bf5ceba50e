"""FP16-stored weights and factored anchor constants: smaller files, same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from maskrt.export.compact import _factor, anchor_grids, compact_weights, factor_grid_constants, write_compact
from maskrt.export.verify import ort_session, run_ort

from .conftest import SIZE


def _per_anchor(model: onnx.ModelProto, total: int, grids=()) -> list[str]:
    """Initializers with one value per anchor of every level, or one box per anchor of one level."""
    level_boxes = [[h * w * a, 4] for h, w, a in grids]
    return [i.name for i in model.graph.initializer if int(np.prod(i.dims)) == total or list(i.dims) in level_boxes]


def test_factored_anchors_give_identical_outputs(lite_export, scene_images, tmp_path):
    grids = anchor_grids(lite_export.wrapper.model, (SIZE, SIZE))
    assert grids == [(32, 32, 6), (16, 16, 6), (8, 8, 6), (4, 4, 6), (2, 2, 6)]  # strides 4..64, 2 sizes x 3 ratios
    total = sum(h * w * a for h, w, a in grids)
    original = onnx.load(str(lite_export.path))
    before = _per_anchor(original, total, grids)
    assert len(before) == len(grids)  # the exporter folded each level's anchor boxes (the RPN decodes its top-k)

    factored, n = factor_grid_constants(original, grids)
    assert n == len(before) and _per_anchor(factored, total, grids) == []
    onnx.checker.check_model(factored)
    path = tmp_path / "factored.onnx"
    onnx.save(factored, str(path))
    ref, new = ort_session(lite_export.path), ort_session(path)
    for img in scene_images:
        for a, b in zip(run_ort(ref, img), run_ort(new, img)):
            assert np.array_equal(a, b)  # bit for bit: the rebuild is exact
    assert path.stat().st_size < lite_export.path.stat().st_size


def test_factor_refuses_arrays_that_are_not_grids():
    grids = [(2, 3, 2), (1, 1, 2)]
    y, x, c = np.array([0.0, 8.0]), np.array([0.0, 4.0, 8.0]), np.array([1.5, -1.5])
    level0 = (y[:, None, None] + x[None, :, None] + c[None, None, :]).ravel()
    arr = np.concatenate([level0, [7.0, 9.0]]).astype(np.float32)
    parts = _factor(arr, grids)
    assert parts is not None and np.array_equal(parts[0][1], x.astype(np.float32))
    noisy = arr.copy()
    noisy[5] += 0.25  # one value off the grid: keep the array as it is
    assert _factor(noisy, grids) is None
    model = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["k"], ["out"])], "g", [],
        [onnx.helper.make_tensor_value_info("out", TensorProto.FLOAT, [arr.size])],
        [onnx.numpy_helper.from_array(noisy, "k")]))
    same, n = factor_grid_constants(model, grids)
    assert n == 0 and [i.name for i in same.graph.initializer] == ["k"]


def test_write_compact_halves_the_file_and_keeps_detections(lite_export, scene_images, tmp_path):
    grids = anchor_grids(lite_export.wrapper.model, (SIZE, SIZE))
    dst = write_compact(lite_export.path, tmp_path / "compact.onnx", grids=grids)
    assert dst.stat().st_size < 0.55 * lite_export.path.stat().st_size
    _, converted = compact_weights(onnx.load(str(lite_export.path)))
    assert converted > 50  # every conv / linear weight
    ref, small = ort_session(lite_export.path), ort_session(dst)
    for img in scene_images:
        b0, s0, _, m0, n0 = run_ort(ref, img)
        b1, s1, _, m1, n1 = run_ort(small, img)
        n = int(n0[0])
        assert int(n1[0]) == n
        # FP16 weights move values slightly (and may swap near-tied scores): match rows by box
        for k in range(n):
            j = int(np.abs(b0[0, :n] - b1[0, k]).max(axis=1).argmin())
            assert np.abs(b0[0, j] - b1[0, k]).max() < 0.5
            assert abs(float(s0[0, j]) - float(s1[0, k])) < 5e-3
            assert np.abs(m0[0, j] - m1[0, k]).max() < 5e-2


def test_bundled_model_fits_the_size_budget():
    root = Path(__file__).resolve().parents[2]
    onnx_path, ckpt = root / "runtime" / "models" / "bubbles-lite.onnx", root / "train" / "models" / "bubbles-lite.pt"
    total = onnx_path.stat().st_size + ckpt.stat().st_size
    assert total <= 25e6, f"bundled model files are {total / 1e6:.1f} MB together; the budget is 25 MB"


def test_both_anchor_layouts_are_rebuilt_exactly():
    """Per-anchor arrays of every level (exports before the RPN decoded only its top-k) and one level's
    ``[anchors, 4]`` boxes (exports since) are both replaced by factors that rebuild them bit for bit."""
    from onnx.reference import ReferenceEvaluator

    grids = [(3, 4, 2), (2, 2, 2)]
    rng = np.random.default_rng(0)

    def level(h, w, a, k):
        y, x, c = (rng.integers(0, 64, (n, k)).astype(np.float32) / 4 for n in (h, w, a))
        return (y[:, None, None] + x[None, :, None] + c[None, None]).reshape(h * w * a, k)

    every = np.concatenate([level(*g, 1) for g in grids])  # [N, 1]
    boxes = level(*grids[0], 4)  # [h * w * a, 4]
    inits = [onnx.numpy_helper.from_array(every, "every"), onnx.numpy_helper.from_array(boxes, "boxes")]
    outs = [onnx.helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape))
            for n, a in (("e", every), ("b", boxes))]
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["every"], ["e"]),
                                    onnx.helper.make_node("Identity", ["boxes"], ["b"])], "g", [], outs, inits)
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    factored, n = factor_grid_constants(model, grids)
    assert n == 2 and {i.name for i in factored.graph.initializer}.isdisjoint({"every", "boxes"})
    onnx.checker.check_model(factored)
    e, b = ReferenceEvaluator(factored).run(None, {})
    assert np.array_equal(e, every) and np.array_equal(b, boxes)
    assert sum(int(np.prod(i.dims)) for i in factored.graph.initializer) < every.size + boxes.size
