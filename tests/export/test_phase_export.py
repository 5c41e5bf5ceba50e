"""A model with a phase head exports a sixth, static ``phase`` output that ONNX Runtime computes as PyTorch does."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from maskrt.artifact import ArtifactMeta
from maskrt.export.check import check_model
from maskrt.export.metadata import make_meta, read_meta
from maskrt.export.onnx_export import export_onnx
from maskrt.export.parity import ParityRules
from maskrt.export.scenes import synthetic_scenes
from maskrt.export.triton import check_config, model_config
from maskrt.export.verify import check_parity, run_wrapper
from maskrt.export.wrapper import ExportWrapper
from maskrt.train.models import ModelRecipe

from .conftest import MAX_DET, SIZE, detecting_model


def _phase_export(tmp_path: Path, stride: int = 4) -> tuple[Path, ExportWrapper]:
    recipe = ModelRecipe(arch="lite", classes=["bubble", "drop"], image_size=SIZE, phase=True, phase_stride=stride)
    model = detecting_model(recipe)
    wrapper = ExportWrapper(model, (SIZE, SIZE), MAX_DET, recipe.mean, recipe.std)
    with torch.no_grad():  # a map with structure (random weights give a near-constant one): sharpen, centre
        last = model.phase_head.block[-1]
        last.weight.mul_(100)
        last.bias.zero_()
        if stride == 2:  # a refinement that does something: a correction from the image
            torch.nn.init.normal_(model.phase_head.refine.fuse[-1].weight, std=0.5)
        p = run_wrapper(wrapper, synthetic_scenes(1, (SIZE, SIZE), seed=5)[0].image)[5].clip(1e-6, 1 - 1e-6)
        last.bias.sub_(float(np.median(np.log(p / (1 - p)))))

    meta = make_meta(recipe, (SIZE, SIZE), MAX_DET, phase_stride=wrapper.phase_stride)
    path = tmp_path / "phase.onnx"
    export_onnx(wrapper, meta, path)
    return path, wrapper


@pytest.mark.parametrize("stride", [4, 2])
def test_phase_output_is_static_described_and_equal_to_pytorch(tmp_path: Path, stride: int) -> None:
    import onnxruntime as ort

    path, wrapper = _phase_export(tmp_path, stride)
    meta = read_meta(path)
    assert meta.phase_stride == stride and meta.output_names[-1] == "phase"
    graph = onnx.load(str(path)).graph
    out = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.output}
    assert out["phase"] == [1, SIZE // stride, SIZE // stride]
    assert check_model(path) == []  # static and TensorRT-friendly, like the rest of the graph

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(meta.output_names)
    images = [s.image for s in synthetic_scenes(2, (SIZE, SIZE), seed=5)]
    for image in images:
        got = session.run(["phase"], {"images": image[None]})[0]
        ref = run_wrapper(wrapper, image)[5]
        assert got.dtype == np.float32 and 0.0 <= got.min() and got.max() <= 1.0
        assert np.abs(got - ref).max() < 1e-4
        assert 0.0 < (got > 0.5).mean() < 1.0  # not a constant map
    gate, _ = check_parity(path, wrapper, images, ParityRules(), eager=False)
    assert gate.passed and gate.summary()["min_phase_iou"] > 0.99

    from maskrt.runtime import Segmenter  # the runtime reads the stride from the metadata

    frame = images[0][: SIZE // 2]  # a frame of half the input's height: the map comes back at its size
    with Segmenter(path, backend="onnxruntime") as seg:
        phase = seg(frame).phase
    assert phase is not None and phase.shape == frame.shape[:2]
    ref = run_wrapper(wrapper, np.pad(frame, ((0, SIZE // 2), (0, 0), (0, 0)), constant_values=114))[5][0]
    ref_up = cv2.resize(ref[: SIZE // (2 * stride)], None, fx=stride, fy=stride, interpolation=cv2.INTER_LINEAR)
    assert np.abs(phase - ref_up).max() < 1e-3


def test_phase_metadata_round_trips_and_old_artifacts_have_no_phase() -> None:
    with_phase = ArtifactMeta(arch="lite", class_names=["b"], input_size=(64, 64), phase_stride=4)
    assert ArtifactMeta.from_props(with_phase.to_props()).output_names[-1] == "phase"
    plain = ArtifactMeta(arch="lite", class_names=["b"], input_size=(64, 64))
    assert "maskrt.phase_stride" not in plain.to_props()  # files stay byte-identical for models without it
    assert ArtifactMeta.from_props(plain.to_props()).output_names == (
        "boxes", "scores", "labels", "masks", "num_dets")


def test_triton_config_carries_the_phase_output() -> None:
    meta = ArtifactMeta(arch="lite", class_names=["b"], input_size=(64, 64), phase_stride=4)
    config = model_config("m", meta, "onnxruntime_onnx").as_dict()
    phase = [o for o in config["output"] if o["name"] == "phase"]
    assert phase and phase[0]["dims"] == [1, 16, 16]
    assert check_config(config, meta) == []
    config["output"] = [o for o in config["output"] if o["name"] != "phase"]
    assert any("phase" in p for p in check_config(config, meta))


def test_int8_quantizes_the_phase_head_but_its_logits_and_keeps_the_map(tmp_path: Path) -> None:
    """INT8 export of a stride-2 phase model: every phase-head convolution INT8 but the two logit layers
    (FP32 weights, outputs never quantized), and the INT8 map agrees with the FP32 one."""
    import onnxruntime as ort
    from onnx import TensorProto

    from maskrt.export.int8 import FLOAT_LAYERS, calibration_images, write_int8

    path, _ = _phase_export(tmp_path, 2)
    int8 = write_int8(path, tmp_path / "phase.int8.onnx", calibration_images((SIZE, SIZE), 2)[0]).path
    model = onnx.load(str(int8))
    inits = {t.name: t for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv" and n.name.startswith("/phase_head/")]
    logits = [n for n in convs if n.name.startswith(FLOAT_LAYERS)]
    assert len(convs) == 13 and len(logits) == 2
    for node in convs:
        if node in logits:
            assert inits[node.input[1]].data_type == TensorProto.FLOAT, node.name
        else:
            dq = producers[node.input[1]]
            assert dq.op_type == "DequantizeLinear" and inits[dq.input[0]].data_type == TensorProto.INT8, node.name
    quantized = {n.input[0] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    assert not quantized & {o for n in logits for o in n.output}

    images = [s.image for s in synthetic_scenes(2, (SIZE, SIZE), seed=5)]
    maps = []
    for f in (path, int8):
        session = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
        maps.append([session.run(["phase"], {"images": im[None]})[0] > 0.5 for im in images])
    for fp32, q in zip(*maps):
        assert 0.0 < fp32.mean() < 1.0
        # random weights, sharpened around the median logit, 2 calibration images: many pixels sit at the
        # threshold (the bundled model's real-block phase-map union moved 0.794 -> 0.793, benchmarks/README.md)
        assert (fp32 & q).sum() / (fp32 | q).sum() > 0.8
