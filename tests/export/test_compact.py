"""FP16-stored weights and factored anchor constants: smaller files, same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto

from maskrt.export.compact import _factor, anchor_grids, compact_weights, factor_grid_constants, write_compact
from maskrt.export.verify import ort_session, run_ort

from .conftest import SIZE


def _per_anchor(model: onnx.ModelProto, total: int) -> list[str]:
    return [i.name for i in model.graph.initializer if int(np.prod(i.dims)) == total]


def test_factored_anchors_give_identical_outputs(lite_export, scene_images, tmp_path):
    grids = anchor_grids(lite_export.wrapper.model, (SIZE, SIZE))
    assert grids == [(32, 32, 6), (16, 16, 6), (8, 8, 6), (4, 4, 6), (2, 2, 6)]  # strides 4..64, 2 sizes x 3 ratios
    total = sum(h * w * a for h, w, a in grids)
    original = onnx.load(str(lite_export.path))
    before = _per_anchor(original, total)
    assert len(before) >= 4  # the exporter folded the anchors' widths, heights, centres and level indices

    factored, n = factor_grid_constants(original, grids)
    assert n == len(before) and _per_anchor(factored, total) == []
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
