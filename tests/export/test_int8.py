"""INT8 export: Q/DQ on the backbone/heads' weights, FP32 tail, int8 metadata, runtime loads it, detections hold."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.export.check import check_model
from maskrt.export.compact import write_compact
from maskrt.export.fp16 import write_fp16
from maskrt.export.int8 import (
    QUANT_PREFIXES,
    calib_files,
    calibration_images,
    fold_weight_casts,
    quantizable_nodes,
    write_int8,
)
from maskrt.export.int8_report import match_report
from maskrt.export.metadata import read_meta
from maskrt.export.parity import Int8Parity, ParityReport

from .conftest import SIZE

TAIL_PREFIXES = ("/rpn/head/cls_logits", "/rpn/head/bbox_pred", "/roi_heads/box_predictor/",
                 "/roi_heads/mask_predictor/mask_fcn_logits")
MIN_MATCH_RATE = 0.8
"""Of the FP32 model's detections scoring >= 0.5, at least this share must be found by the INT8 model at box
IoU 0.5 (random-weight test model, 4 calibration images; the bundled model matches far more, see
benchmarks/README.md)."""


@pytest.fixture(scope="module")
def int8_path(lite_export, tmp_path_factory):
    images, source = calibration_images((SIZE, SIZE), 4)
    return write_int8(lite_export.path, tmp_path_factory.mktemp("int8") / "lite.int8.onnx", images, source).path


def _graph(path):
    model = onnx.load(str(path))
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {t.name: t for t in model.graph.initializer}
    return model, producers, inits


def test_conv_weights_are_per_channel_symmetric_int8(int8_path):
    model, producers, inits = _graph(int8_path)
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm") and n.name.startswith(QUANT_PREFIXES)]
    assert len(convs) > 50
    for node in convs:
        dq = producers[node.input[1]]
        assert dq.op_type == "DequantizeLinear", node.name
        weight, scale, zero = (inits[i] for i in dq.input)
        assert weight.data_type == TensorProto.INT8
        out_channels = weight.dims[0]
        assert numpy_helper.to_array(scale).shape == (out_channels,), node.name  # per output channel
        assert next(a.i for a in dq.attribute if a.name == "axis") == 0
        assert not numpy_helper.to_array(zero).any()  # symmetric: TensorRT takes zero points of 0 only
        assert producers[node.input[0]].op_type == "DequantizeLinear"  # INT8 input activation
        if len(node.input) > 2:
            assert inits[node.input[2]].data_type == TensorProto.FLOAT  # TensorRT rejects INT32 bias DQ
    (up,) = (n for n in model.graph.node if n.op_type == "ConvTranspose")  # the mask predictor's 2x2 upsampling
    dq = producers[up.input[1]]
    weight, scale, zero = (inits[i] for i in dq.input)
    assert dq.op_type == "DequantizeLinear" and weight.data_type == TensorProto.INT8
    assert np.abs(numpy_helper.to_array(weight)).max() <= 64  # 7-bit weights, the default
    assert next(a.i for a in dq.attribute if a.name == "axis") == 1  # [I, O, kh, kw]: per output channel
    assert numpy_helper.to_array(scale).shape == (weight.dims[1],) and not numpy_helper.to_array(zero).any()
    assert producers[up.input[0]].op_type == "DequantizeLinear"
    assert not [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == up.output[0]]
    for q in (n for n in model.graph.node if n.op_type == "QuantizeLinear"):
        assert inits[q.input[2]].data_type == TensorProto.INT8 and not numpy_helper.to_array(inits[q.input[2]]).any()


def test_tail_stays_floating_point(int8_path):
    model, producers, inits = _graph(int8_path)
    tail = [n for n in model.graph.node if n.name.startswith(TAIL_PREFIXES) and n.op_type in ("Conv", "Gemm",
                                                                                            "ConvTranspose")]
    assert {p for p in TAIL_PREFIXES if any(n.name.startswith(p) for n in tail)} == set(TAIL_PREFIXES)
    for node in tail:
        assert inits[node.input[1]].data_type == TensorProto.FLOAT, node.name
    consumers = {i for n in model.graph.node if n.op_type == "QuantizeLinear" for i in n.input[:1]}
    assert not consumers & {o for n in tail for o in n.output}  # logits, deltas: never quantized
    for op in ("NonMaxSuppression", "TopK"):
        nodes = [n for n in model.graph.node if n.op_type == op]
        assert nodes and all(producers.get(i) is None or producers[i].op_type != "DequantizeLinear"
                             for n in nodes for i in n.input)
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == \
        [TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.INT32, TensorProto.FLOAT, TensorProto.INT32]


def test_metadata_says_int8_and_tensorrt_check_passes(lite_export, int8_path):
    meta = read_meta(int8_path)
    assert meta.precision == "int8" and meta.int8_weight_bits == 7 and not meta.full_range_int8
    assert meta.class_names == lite_export.meta.class_names and meta.input_size == (SIZE, SIZE)
    assert check_model(int8_path) == []
    assert int8_path.stat().st_size < 0.45 * lite_export.path.stat().st_size  # INT8 weights


def test_runtime_loads_it_and_detections_match_fp32(lite_export, int8_path, scene_images):
    from maskrt.runtime import Segmenter

    seg = Segmenter(int8_path, backend="onnxruntime", device="cpu", threads=2)
    assert seg.meta.precision == "int8"
    fp32 = Segmenter(lite_export.path, backend="onnxruntime", device="cpu", threads=2)
    assert len(seg(scene_images[0])) > 0 and abs(len(seg(scene_images[0])) - len(fp32(scene_images[0]))) <= 3
    report = match_report(lite_export.path, int8_path, scene_images[:3])
    s = report.summary()
    assert s["detections"] > 10
    assert s["matched"] >= MIN_MATCH_RATE * s["detections"], s
    assert s["min_box_iou"] >= 0.5


def test_openvino_reads_it_when_installed(int8_path):
    ov = pytest.importorskip("openvino")
    compiled = ov.Core().compile_model(str(int8_path), "CPU")
    assert [o.get_any_name() for o in compiled.outputs][:2] == ["boxes", "scores"]


def test_openvino_runs_the_same_file_within_the_int8_rules(lite_export, int8_path, scene_images):
    pytest.importorskip("openvino")
    report = match_report(lite_export.path, int8_path, scene_images[:3], backend="openvino")
    s = report.summary()
    assert s["detections"] > 10
    assert s["matched"] >= MIN_MATCH_RATE * s["detections"], s
    assert s["min_box_iou"] >= 0.5


def test_fold_weight_casts_restores_fp32_weights(lite_export, tmp_path):
    compact = write_compact(lite_export.path, tmp_path / "compact.onnx")
    folded, n = fold_weight_casts(onnx.load(str(compact)))
    assert n > 20
    assert not any(n.op_type == "Cast" and n.input[0].endswith("__fp16") for n in folded.graph.node)
    inits = {t.name: t.data_type for t in folded.graph.initializer}
    weights = [n.input[1] for n in folded.graph.node if n.name in set(quantizable_nodes(folded))]
    assert weights and all(inits.get(w) == TensorProto.FLOAT for w in weights)


def test_compact_artifact_quantizes_like_the_plain_one(lite_export, tmp_path, scene_images):
    compact = write_compact(lite_export.path, tmp_path / "compact.onnx")
    images, _ = calibration_images((SIZE, SIZE), 2)
    out = write_int8(compact, tmp_path / "c.int8.onnx", images)
    assert out.quantized_nodes == len(quantizable_nodes(onnx.load(str(lite_export.path))))
    assert out.qdq_nodes > 2 * out.quantized_nodes


def test_fp16_model_and_unknown_calibration_are_refused(lite_export, tmp_path):
    half = write_fp16(lite_export.path, tmp_path / "h.onnx")
    images = calibration_images((SIZE, SIZE), 1)[0]
    with pytest.raises(MaskrtError, match="fp16.*FP32"):
        write_int8(half, tmp_path / "h.int8.onnx", images)
    with pytest.raises(MaskrtError, match="calibration method 'entropy'.*minmax"):
        write_int8(lite_export.path, tmp_path / "e.int8.onnx", images, calibrate="entropy")
    assert not (tmp_path / "h.int8.onnx").exists() and not (tmp_path / "e.int8.onnx").exists()


def test_calibration_sources(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((40, 60, 3), 50 * i, np.uint8))
    assert len(calib_files(tmp_path)) == 3
    assert len(calib_files(str(tmp_path / "f*.png"))) == 3
    images, source = calibration_images((64, 64), 2, tmp_path)
    assert len(images) == 2 and images[0].shape == (64, 64, 3) and str(tmp_path) in source
    assert (images[1][43:] == 114).all() and (images[1][:43] == 100).all()  # runtime letterbox: 60x40 -> 64x43
    with pytest.raises(MaskrtError, match="--calib: not found"):
        calib_files(tmp_path / "nothing")
    with pytest.raises(MaskrtError, match="matches no image"):
        calib_files(str(tmp_path / "*.jpg"))
    synth, what = calibration_images((64, 64), 2)
    assert len(synth) == 2 and "synthetic" in what and not np.array_equal(synth[0], synth[1])


def test_int8_gate_is_the_ap50_drop():
    ok = Int8Parity(ParityReport(rules=None), ap50_fp32=0.90, ap50_int8=0.895)  # type: ignore[arg-type]
    assert ok.passed and ok.failures() == []
    bad = Int8Parity(ParityReport(rules=None), ap50_fp32=0.90, ap50_int8=0.87)  # type: ignore[arg-type]
    assert not bad.passed and "3.0 points below" in bad.failures()[0]
    assert Int8Parity(ParityReport(rules=None)).passed  # type: ignore[arg-type]  # not measured: no gate


def test_cli_int8_from_an_onnx_artifact(lite_export, tmp_path, capsys):
    src = tmp_path / "m.onnx"
    src.write_bytes(lite_export.path.read_bytes())
    code = main(["export", str(src), "--int8", "--calib-images", "2", "--int8-heldout", "0",
                 "--parity-images", "2"])
    text = capsys.readouterr().out
    assert code == 0, text
    out = tmp_path / "m.int8.onnx"
    assert read_meta(out).precision == "int8"
    assert "int8" in text and "synthetic" in text and "matched at box IoU 0.5" in text
    assert "not measured (--int8-heldout 0)" in text  # the reason is the one the user gave, not another
    assert "7-bit weights (exact on every CPU)" in text


def _weights(path) -> list[np.ndarray]:
    model = onnx.load(str(path))
    return [numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == TensorProto.INT8 and t.dims]


def test_weight_bits_set_the_int8_weight_range(lite_export, int8_path, tmp_path):
    """7 bits (default): every weight in [-64, 64], so x86 kernels without VNNI cannot saturate; 8: [-127, 127]."""
    images, source = calibration_images((SIZE, SIZE), 2)
    full = write_int8(lite_export.path, tmp_path / "full.onnx", images, source, weight_bits=8).path
    seven, eight = _weights(int8_path), _weights(full)
    assert len(seven) == len(eight) > 50
    assert max(np.abs(w).max() for w in seven) == 64 and max(np.abs(w).max() for w in eight) == 127
    assert read_meta(full).int8_weight_bits == 8 and read_meta(full).full_range_int8
    with pytest.raises(MaskrtError, match="weight bits 6"):
        write_int8(lite_export.path, tmp_path / "bad.onnx", images, source, weight_bits=6)
    assert not (tmp_path / "bad.onnx").exists()


def test_full_range_int8_warns_on_a_cpu_that_saturates(lite_export, int8_path, tmp_path, monkeypatch, caplog):
    from maskrt.runtime import Segmenter
    from maskrt.runtime.bench import sysinfo

    images, source = calibration_images((SIZE, SIZE), 2)
    full = write_int8(lite_export.path, tmp_path / "full.onnx", images, source, weight_bits=8).path
    for saturates, path, warned in ((True, full, True), (True, int8_path, False), (False, full, False)):
        monkeypatch.setattr(sysinfo, "int8_dot_saturates", lambda s=saturates: s)
        caplog.clear()
        with caplog.at_level("WARNING", logger="maskrt"):
            Segmenter(path, backend="onnxruntime", device="cpu", threads=1).close()
        assert any("no VNNI" in r.getMessage() for r in caplog.records) == warned, (saturates, path)


def test_cli_int8_errors_are_one_line_exit_2(lite_export, tmp_path, capsys):
    assert main(["export", str(lite_export.path)]) == 2
    assert "--int8" in capsys.readouterr().err
    assert main(["export", str(lite_export.path), "--int8", "--half"]) == 2
    assert "exclude each other" in capsys.readouterr().err
    assert main(["export", str(lite_export.path), "--int8", "--int8-weight-bits", "6"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--int8-weight-bits 6" in err
    assert main(["export", str(lite_export.path), "--int8", "--calib", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "none" in err


def test_demo_int8_copy_is_made_once_per_model_and_cached(lite_export, tmp_path, monkeypatch):
    from maskrt.demo import int8_cache_dir, int8_copy

    monkeypatch.setenv("MASKRT_CACHE", str(tmp_path / "cache"))
    assert int8_cache_dir() == tmp_path / "cache" / "int8"
    src = tmp_path / "m.onnx"
    src.write_bytes(lite_export.path.read_bytes())
    first, made = int8_copy(src, calib_images=2)
    assert made and first.parent == tmp_path / "cache" / "int8" and read_meta(first).precision == "int8"
    assert read_meta(first).graph_score_threshold == 0.3  # the mask head runs only on what the demo can show
    stamp = first.stat().st_mtime_ns
    again, made_again = int8_copy(src, calib_images=2)
    assert again == first and not made_again and first.stat().st_mtime_ns == stamp  # reused, not rewritten
    assert int8_copy(first) == (first, False)  # an INT8 artifact is used as it is
    assert src.read_bytes() == lite_export.path.read_bytes()  # the source is never touched

    other = tmp_path / "other.onnx"  # another model (different bytes) gets its own copy
    onnx_model = onnx.load(str(src))
    onnx_model.doc_string = "changed"
    onnx.save(onnx_model, str(other))
    third, made_third = int8_copy(other, calib_images=2)
    assert made_third and third != first and first.is_file()
    monkeypatch.setattr("maskrt.export.int8.QUANT_PREFIXES", ("/backbone/",))  # another quantizer recipe
    fourth, made_fourth = int8_copy(src, calib_images=2)
    assert made_fourth and fourth not in (first, third)  # a copy made by an older maskrt is not reused
    with pytest.raises(MaskrtError, match="not found"):
        int8_copy(tmp_path / "missing.onnx")


def test_cli_demo_int8_runs_the_cached_int8_copy(lite_export, tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.setenv("MASKRT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("maskrt.demo.INT8_CALIB_IMAGES", 2)
    out = tmp_path / "demo"
    code = main(["demo", "--model", str(lite_export.path), "--int8", "--out", str(out), "--frames", "3",
                 "--size", str(SIZE), "--bench-iters", "0"])
    text = capsys.readouterr().out
    assert code == 0, text
    summary = json.loads((out / "summary.json").read_text())
    used = Path(summary["model"])
    assert used.parent == tmp_path / "cache" / "int8" and read_meta(used).precision == "int8"
    assert summary["stream"]["processed"] == 3
    assert "INT8 copy" in text and "made in" in text
