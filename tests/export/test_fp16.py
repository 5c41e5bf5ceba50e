"""FP16 export: heavy layers in FP16, I/O and geometry unchanged, parity within the FP16 rules."""

from __future__ import annotations

import onnx
import pytest

from maskrt.export.check import check_model
from maskrt.export.fp16 import FP16_PREFIXES, write_fp16
from maskrt.export.metadata import read_meta
from maskrt.export.parity import FP16_RULES
from maskrt.export.verify import check_parity


@pytest.fixture(scope="module")
def fp16_path(lite_export, tmp_path_factory):
    return write_fp16(lite_export.path, tmp_path_factory.mktemp("fp16") / "lite.fp16.onnx")


def test_fp16_weights_and_unchanged_io(lite_export, fp16_path):
    half, full = onnx.load(str(fp16_path)), onnx.load(str(lite_export.path))
    assert [(i.name, i.type.tensor_type.elem_type) for i in half.graph.input] == \
        [(i.name, i.type.tensor_type.elem_type) for i in full.graph.input]
    assert [(o.name, o.type.tensor_type.elem_type) for o in half.graph.output] == \
        [(o.name, o.type.tensor_type.elem_type) for o in full.graph.output]
    conv_weights = {n.input[1] for n in half.graph.node if n.op_type == "Conv" and n.name.startswith(FP16_PREFIXES)}
    types = {t.name: t.data_type for t in half.graph.initializer}
    assert conv_weights and all(types[w] == onnx.TensorProto.FLOAT16 for w in conv_weights)
    fp32_ops = {n.op_type for n in half.graph.node if n.op_type in ("NonMaxSuppression", "RoiAlign", "TopK")}
    assert fp32_ops == {"NonMaxSuppression", "RoiAlign", "TopK"}
    assert fp16_path.stat().st_size < 0.6 * lite_export.path.stat().st_size
    assert read_meta(fp16_path).precision == "fp16"
    assert check_model(fp16_path) == []


def test_fp16_parity_in_onnxruntime(lite_export, fp16_path, scene_images):
    gate, _ = check_parity(fp16_path, lite_export.wrapper, scene_images[:2], FP16_RULES, eager=False)
    assert gate.passed, gate.failures()
    s = gate.summary()
    assert s["matched"] > 10
