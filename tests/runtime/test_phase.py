"""The optional ``phase`` output end to end: metadata, backends, the letterbox cut, Instances, statistics, drawing.

The models are ``make_model(phase_stride=S)``: a constant phase map, or one computed from the input image
(``phase="input"``: each cell's mean grey level), so every value the runtime must produce is known. The frames
are not square, so the letterbox pads the input and a wrong cut or scale moves the phase boundaries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from maskrt.artifact import OUTPUT_NAMES, ArtifactMeta
from maskrt.errors import MaskrtError
from maskrt.runtime import Instances, Segmenter, draw_overlay, frame_stats
from maskrt.runtime.backends.base import wanted_outputs
from maskrt.runtime.draw import PHASE_COLOUR
from maskrt.runtime.postprocess import phase_map

S = 4
INPUT = 128


def input_phase(images: np.ndarray, stride: int) -> np.ndarray:
    """What a ``phase="input"`` model outputs for uint8 ``images [B, H, W, 3]``: ``[B, H / S, W / S]``."""
    grey = images.astype(np.float32).mean(axis=3) / 255.0
    b, h, w = grey.shape
    return grey.reshape(b, h // stride, stride, w // stride, stride).mean(axis=(2, 4))


def pattern(h: int, w: int) -> np.ndarray:
    """White where ``x < w / 2`` or ``y < h / 4`` (a wide frame; transposed for a tall one), black elsewhere."""
    frame = np.zeros((h, w, 3), np.uint8)
    if w >= h:
        frame[:, : w // 2] = 255
        frame[: h // 4] = 255
    else:
        frame[: h // 2] = 255
        frame[:, : w // 4] = 255
    return frame


def reference(grid: np.ndarray, frame_hw: tuple[int, int], valid_hw: tuple[int, int], stride: int) -> np.ndarray:
    """The contract's cut, written out: frame pixel centre ``y + 0.5`` is input row ``(y + 0.5) * rows / h``, map
    coordinate that over ``S`` minus half a cell; bilinear between the cells the frame covers (edges clamped)."""
    h, w = frame_hw
    rows, cols = valid_hw
    last_y, last_x = int(np.ceil(rows / stride)) - 1, int(np.ceil(cols / stride)) - 1
    ys = np.clip((np.arange(h) + 0.5) * rows / (h * stride) - 0.5, 0, last_y)
    xs = np.clip((np.arange(w) + 0.5) * cols / (w * stride) - 0.5, 0, last_x)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, last_y), np.minimum(x0 + 1, last_x)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x1] * wx
    bottom = grid[y1][:, x0] * (1 - wx) + grid[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


# -- metadata -------------------------------------------------------------------------------------------------------


def test_phase_stride_round_trips_and_names_the_outputs() -> None:
    meta = ArtifactMeta(arch="fake", class_names=["bubble"], input_size=(INPUT, INPUT), phase_stride=S)
    props = meta.to_props()
    assert props["maskrt.phase_stride"] == "4"
    back = ArtifactMeta.from_props(props)
    assert back.phase_stride == S and back.output_names == (*OUTPUT_NAMES, "phase")
    old = {k: v for k, v in props.items() if k != "maskrt.phase_stride"}  # an artifact from before the key
    assert ArtifactMeta.from_props(old).phase_stride == 0
    assert ArtifactMeta.from_props(old).output_names == OUTPUT_NAMES
    assert "maskrt.phase_stride" not in ArtifactMeta.from_props(old).to_props()
    assert wanted_outputs(props) == (*OUTPUT_NAMES, "phase") and wanted_outputs(old) == OUTPUT_NAMES
    assert wanted_outputs({}) == OUTPUT_NAMES  # unreadable metadata: the five, the Segmenter says why
    for bad in ('"4"', "65", "-1", "4.5"):
        with pytest.raises(MaskrtError, match=r"maskrt\.phase_stride .*expected an integer in 0\.\.64"):
            ArtifactMeta.from_props({**props, "maskrt.phase_stride": bad})


# -- backends -------------------------------------------------------------------------------------------------------


def constant_grid() -> np.ndarray:
    """``[32, 32]``: 1 on the left half of a 100x200 frame's valid cells (16 x 32), and 1 all over the padding
    rows below it, so that padding which leaks into the frame shows."""
    grid = np.zeros((INPUT // S, INPUT // S), np.float32)
    grid[:16, :16] = 1.0
    grid[16:] = 1.0
    return grid


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_backends_return_phase_when_the_metadata_promises_it(make_model, backend: str) -> None:
    if backend == "openvino":
        pytest.importorskip("openvino")
    from maskrt.runtime.backends import open_backend

    be = open_backend(make_model(phase_stride=S, phase=constant_grid()), backend=backend, device="cpu", threads=1)
    try:
        out = be.infer(np.zeros((1, INPUT, INPUT, 3), np.uint8))
    finally:
        be.close()
    assert set(out) == {*OUTPUT_NAMES, "phase"}
    assert out["phase"].shape == (1, INPUT // S, INPUT // S) and out["phase"].dtype == np.float32
    np.testing.assert_array_equal(out["phase"][0], constant_grid())


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_old_artifacts_give_the_five_outputs(make_model, backend: str) -> None:
    if backend == "openvino":
        pytest.importorskip("openvino")
    from maskrt.runtime.backends import open_backend

    be = open_backend(make_model(), backend=backend, device="cpu", threads=1)
    try:
        assert set(be.infer(np.zeros((1, INPUT, INPUT, 3), np.uint8))) == set(OUTPUT_NAMES)
    finally:
        be.close()
    # a graph with a phase output whose metadata does not say so: the output is not fetched (as before)
    be = open_backend(make_model(phase_stride=S, props={"maskrt.phase_stride": "0"}), backend=backend, device="cpu")
    try:
        assert set(be.infer(np.zeros((1, INPUT, INPUT, 3), np.uint8))) == set(OUTPUT_NAMES)
    finally:
        be.close()


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_promised_phase_output_that_is_missing_is_one_line(make_model, backend: str) -> None:
    if backend == "openvino":
        pytest.importorskip("openvino")
    path = make_model(props={"maskrt.phase_stride": "4"})  # metadata says phase, the graph has none
    with pytest.raises(MaskrtError) as err:
        Segmenter(path, backend=backend, device="cpu")
    text = str(err.value)
    assert "\n" not in text and "do not follow the maskrt contract" in text
    assert "num_dets, phase, as its metadata sets maskrt.phase_stride)" in text


# -- the letterbox cut ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("frame_hw", [(100, 200), (200, 100)])
def test_constant_map_left_half_of_the_valid_region_is_the_left_half_of_the_frame(
    make_model, frame_hw: tuple[int, int]
) -> None:
    grid = constant_grid() if frame_hw[0] <= frame_hw[1] else constant_grid().T.copy()
    with Segmenter(make_model(phase_stride=S, phase=grid), threads=1) as seg:
        inst = seg(np.zeros((*frame_hw, 3), np.uint8))
    h, w = frame_hw
    phase = inst.phase
    assert phase is not None and phase.shape == (h, w) and phase.dtype == np.float32
    if h > w:  # the tall frame: the same map transposed, padding on the right
        phase = phase.T
        h, w = w, h
    assert phase[:, : w // 2 - 7].min() > 0.999  # left half, every row down to the bottom one
    assert phase[:, w // 2 + 7 :].max() < 1e-3  # right half: no padding leaks in at the bottom or the right
    assert (np.count_nonzero(phase > 0.5, axis=1) == w // 2).all()  # the boundary exactly in the middle
    assert inst.void_fraction() == pytest.approx(0.5)


@pytest.mark.parametrize("frame_hw", [(100, 200), (200, 100), (90, 200), (77, 131)])
def test_input_derived_map_is_cut_and_scaled_exactly(make_model, frame_hw: tuple[int, int]) -> None:
    """A map computed from the letterboxed input, cut and resized to the frame: equal to the contract's
    bilinear formula everywhere (fractional extents too), and the frame's pattern where the cells are whole."""
    frame = pattern(*frame_hw)
    with Segmenter(make_model(phase_stride=S), threads=1) as seg:
        images, scale = seg.preprocess(frame)
        inst = seg(frame)
    grid = input_phase(images, S)[0]
    rows, cols = round(frame_hw[0] * scale), round(frame_hw[1] * scale)
    assert inst.phase is not None and inst.phase.shape == frame_hw
    np.testing.assert_allclose(inst.phase, reference(grid, frame_hw, (rows, cols), S), atol=2e-5)
    if frame_hw in ((100, 200), (200, 100)):  # 64 x 128 input pixels: whole cells, crisp pattern
        wide = frame_hw[1] > frame_hw[0]
        phase = inst.phase if wide else inst.phase.T
        truth = (pattern(*frame_hw)[..., 0] > 0) if wide else (pattern(*frame_hw)[..., 0] > 0).T
        wrong = np.argwhere((phase > 0.5) != truth)  # only bilinear's rounding of the L's inner corner
        h, w = phase.shape
        assert len(wrong) <= 4 and (np.abs(wrong - [h // 4, w // 2]) <= 2).all(), wrong
        assert phase[:, :90].min() > 0.999 and phase[35:, 110:].max() < 1e-3 and phase[:18].min() > 0.999


def test_phase_map_rejects_nothing_odd_and_keeps_frame_size() -> None:
    grid = np.random.default_rng(0).random((1, 32, 32)).astype(np.float16)  # an FP16 engine's output
    for hw in ((1, 1), (3, 500), (640, 480), (128, 128), (1000, 7)):
        scale = min(INPUT / hw[0], INPUT / hw[1])
        out = phase_map(grid, scale, hw, S)
        assert out.shape == hw and out.dtype == np.float32 and out.flags.c_contiguous
        assert 0.0 <= out.min() and out.max() <= 1.0


def test_batch_gives_each_frame_its_own_map(make_model) -> None:
    frames = [pattern(100, 200), pattern(200, 100), pattern(90, 200)]
    with Segmenter(make_model(phase_stride=S, batch=2), threads=1) as seg:
        results = seg.batch(frames)
        single = [seg(f) for f in frames]
    for frame, res, one in zip(frames, results, single, strict=True):
        assert res.phase is not None and res.phase.shape == frame.shape[:2]
        np.testing.assert_allclose(res.phase, one.phase, atol=1e-6)
    assert not np.array_equal(results[0].phase.T, results[1].phase.T[:, :100])


# -- Instances, statistics ------------------------------------------------------------------------------------------


def test_filters_keep_the_phase_map(make_model) -> None:
    model = make_model(phase_stride=S, phase=constant_grid())
    frame = np.zeros((100, 200, 3), np.uint8)
    with Segmenter(model, threads=1) as seg:
        inst = seg(frame)
    assert len(inst) == 2 and inst.phase is not None
    for sub in (inst[0], inst[1:], inst[inst.scores > 0.85], inst[[1, 0]], inst[np.array([], np.int64)]):
        assert sub.phase is inst.phase  # the frame's map, unchanged
    with Segmenter(model, threads=1, classes=["droplet"]) as seg:
        droplets = seg(frame)
    with Segmenter(model, threads=1, conf=0.99) as seg:
        none = seg(frame)
    assert len(droplets) == 1 and len(none) == 0
    np.testing.assert_array_equal(droplets.phase, inst.phase)
    np.testing.assert_array_equal(none.phase, inst.phase)  # no detections, still the frame's dispersed phase
    assert "phase" in repr(inst) and "phase" not in repr(Instances.empty((4, 4)))
    with pytest.raises(ValueError, match="phase map of shape"):
        Instances.empty((100, 200), ["bubble"], phase=np.zeros((200, 100), np.float32))


def test_void_fraction_comes_from_the_phase_map(make_model) -> None:
    with Segmenter(make_model(phase_stride=S, phase=constant_grid()), threads=1) as seg:
        inst = seg(np.zeros((100, 200, 3), np.uint8))
    union = inst.masks.any(axis=0)
    stats = frame_stats(inst)
    assert stats["void_fraction"] == pytest.approx(0.5)
    assert stats["void_fraction_instances"] == pytest.approx(union.mean())
    assert stats["void_fraction_instances"] != pytest.approx(0.5)
    left, right = (0, 0, 50, 100), (150, 0, 200, 100)
    assert frame_stats(inst, roi=left)["void_fraction"] == 1.0 == inst.void_fraction(roi=left)
    assert frame_stats(inst, roi=right)["void_fraction"] == 0.0 == inst.void_fraction(roi=right)
    assert frame_stats(inst, roi=(90, 0, 110, 100))["void_fraction"] == pytest.approx(0.5)
    assert frame_stats(inst, roi=(300, 0, 400, 100))["void_fraction"] == 0.0  # outside the frame: empty ROI
    assert inst.void_fraction(threshold=0.999) < 0.5  # the soft edge cells fall below a higher threshold
    no_phase = Instances(inst.boxes, inst.scores, inst.class_ids, inst.class_names, inst.frame_hw, inst.regions,
                         inst.crops)
    assert no_phase.void_fraction() == pytest.approx(union.mean())  # without a map: the union of the masks
    assert no_phase.void_fraction(roi=(20, 20, 60, 60)) == pytest.approx(union[20:60, 20:60].mean())


def test_old_artifacts_have_no_phase_and_the_same_statistics(make_model) -> None:
    with Segmenter(make_model(), threads=1) as seg:
        inst = seg(np.zeros((100, 200, 3), np.uint8))
        assert seg.meta.phase_stride == 0
    assert inst.phase is None and inst[:1].phase is None
    stats = frame_stats(inst)
    union = inst.masks.any(axis=0)
    assert stats["void_fraction"] == stats["void_fraction_instances"] == pytest.approx(union.mean())
    roi = (0, 0, 60, 80)
    assert frame_stats(inst, roi=roi)["void_fraction"] == pytest.approx(union[:80, :60].mean())
    assert list(stats)[:4] == ["count", "count_per_class", "void_fraction", "void_fraction_instances"]


def test_predict_writes_both_void_fractions(make_model, tmp_path: Path) -> None:
    from maskrt.cli import main

    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((100, 200, 3), np.uint8))
    out = tmp_path / "out"
    assert main(["predict", str(make_model(phase_stride=S, phase=constant_grid())), str(folder), "-o", str(out),
                 "--csv", "--json", "--threads", "1"]) == 0
    stats = json.loads((out / "stats.json").read_text())[0]
    assert stats["void_fraction"] == pytest.approx(0.5)
    assert 0 < stats["void_fraction_instances"] < 0.5
    header = (out / "images.csv").read_text().splitlines()[0].split(",")
    assert header.index("void_fraction_instances") == header.index("void_fraction") + 1


# -- drawing --------------------------------------------------------------------------------------------------------


def test_phase_outline_only_when_asked(make_model) -> None:
    with Segmenter(make_model(dets=[], phase_stride=S, phase=constant_grid()), threads=1) as seg:
        inst = seg(np.zeros((100, 200, 3), np.uint8))
    frame = np.full((100, 200, 3), 40, np.uint8)
    plain = draw_overlay(frame, inst, labels="none")
    assert (plain == 40).all()  # off by default
    drawn = draw_overlay(frame, inst, labels="none", phase=True)
    outline = (drawn == PHASE_COLOUR).all(axis=2)
    assert outline.any() and ((drawn == 40).all(axis=2) | outline).all()
    assert outline[:, 95:105].any() and not outline[:, 105:].any()  # the boundary, and only the phase region's
    without = Instances.empty((100, 200), ["bubble"])
    assert (draw_overlay(frame, without, labels="none", phase=True) == 40).all()


# -- serving --------------------------------------------------------------------------------------------------------


class _ChunkBackend:
    """A backend of batch 2 whose outputs number each image (for the server's batching)."""

    def __init__(self, meta: ArtifactMeta) -> None:
        self.meta = meta
        self.input_shape = (2, *meta.input_size, 3)

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        b = images.shape[0]
        d, m = self.meta.max_det, self.meta.mask_size
        ids = images[:, 0, 0, 0].astype(np.float32)
        out = {"boxes": np.zeros((b, d, 4), np.float32), "scores": np.zeros((b, d), np.float32),
               "labels": np.zeros((b, d), np.int32), "masks": np.zeros((b, d, m, m), np.float32),
               "num_dets": np.zeros(b, np.int32)}
        if self.meta.phase_stride:
            h, w = self.meta.input_size
            out["phase"] = np.broadcast_to(ids[:, None, None], (b, h // S, w // S)).copy()
        return out


@pytest.mark.parametrize("stride", [0, S])
def test_the_server_batches_phase_like_the_other_outputs(stride: int) -> None:
    from maskrt.runtime.serve.server import make_infer, output_tensors

    meta = ArtifactMeta(arch="fake", class_names=["bubble"], input_size=(32, 48), max_det=3, mask_size=8,
                        phase_stride=stride)
    images = np.zeros((3, 32, 48, 3), np.uint8)
    images[:, 0, 0, 0] = [7, 8, 9]
    result = make_infer(_ChunkBackend(meta), meta)(images)
    tensors = {name: shape for name, _, shape in output_tensors(meta)}
    assert list(result) == list(meta.output_names) == list(tensors)
    for name, arr in result.items():
        assert arr.shape == (3, *tensors[name]), name
    if stride:
        assert tensors["phase"] == (8, 12) and result["phase"].dtype == np.float32
        np.testing.assert_array_equal(result["phase"][:, 0, 0], [7, 8, 9])  # two chunks, in order, padding cut


class _FakeGrpc:
    """Just enough of ``tritonclient.grpc`` for :class:`TritonBackend` (no server)."""

    def __init__(self, config: dict[str, Any], outputs: dict[str, np.ndarray]) -> None:
        self.config, self.outputs = config, outputs
        self.requested: list[list[str]] = []
        fake = self

        class Client:
            def __init__(self, address: str) -> None:
                self.address = address

            def get_model_config(self, model: str, version: str, as_json: bool, client_timeout: float) -> Any:
                return {"config": fake.config}

            def infer(self, model: str, inputs: list[Any], model_version: str, outputs: list[Any],
                      client_timeout: float) -> Any:
                names = [o.name for o in outputs]
                fake.requested.append(names)

                class Result:
                    def as_numpy(self, name: str) -> np.ndarray:
                        assert name in names
                        return fake.outputs[name]

                return Result()

            def close(self) -> None:
                pass

        class InferInput:
            def __init__(self, name: str, shape: list[int], dtype: str) -> None:
                self.name = name

            def set_data_from_numpy(self, data: np.ndarray) -> None:
                self.data = data

        class InferRequestedOutput:
            def __init__(self, name: str) -> None:
                self.name = name

        self.InferenceServerClient, self.InferInput, self.InferRequestedOutput = Client, InferInput, InferRequestedOutput


@pytest.mark.parametrize("served_phase", [True, False])
def test_triton_client_requests_phase_when_promised(monkeypatch: pytest.MonkeyPatch, served_phase: bool) -> None:
    from maskrt.runtime.backends import triton_backend

    meta = ArtifactMeta(arch="fake", class_names=["bubble"], input_size=(32, 32), max_det=2, mask_size=4,
                        phase_stride=S)
    names = list(meta.output_names if served_phase else OUTPUT_NAMES)
    config = {"max_batch_size": 0, "input": [{"name": "images", "dims": [1, 32, 32, 3]}],
              "output": [{"name": n} for n in names],
              "parameters": {k: {"string_value": v} for k, v in meta.to_props().items()}}
    outputs = {"boxes": np.zeros((1, 2, 4), np.float32), "scores": np.zeros((1, 2), np.float32),
               "labels": np.zeros((1, 2), np.int32), "masks": np.zeros((1, 2, 4, 4), np.float32),
               "num_dets": np.zeros((1, 1), np.int32), "phase": np.full((1, 8, 8), 0.25, np.float32)}
    fake = _FakeGrpc(config, outputs)
    monkeypatch.setattr(triton_backend, "_import_grpc", lambda: fake)
    monkeypatch.setattr(triton_backend.TritonBackend, "_grpc_exception", lambda self: RuntimeError)
    if not served_phase:
        with pytest.raises(MaskrtError, match=r"do not follow the maskrt contract .*num_dets, phase, as its "
                                              r"metadata sets maskrt\.phase_stride\); serve a maskrt artifact"):
            triton_backend.TritonBackend("triton://localhost:8001/m")
        return
    be = triton_backend.TritonBackend("triton://localhost:8001/m")
    out = be.infer(np.zeros((1, 32, 32, 3), np.uint8))
    assert fake.requested == [list(meta.output_names)]
    assert set(out) == {*OUTPUT_NAMES, "phase"} and out["num_dets"].shape == (1,)
    np.testing.assert_array_equal(out["phase"], outputs["phase"])
