"""The TensorRT-compatibility check: silent on our export, specific on everything else."""

from __future__ import annotations

import warnings

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from maskrt.errors import MaskrtError
from maskrt.export.check import TRT_SUPPORTED_OPS, check_model
from maskrt.train.models import ModelRecipe, build_model


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


@pytest.fixture(scope="module")
def torchvision_plain_export(tmp_path_factory):
    """torchvision's own legacy export of Mask R-CNN (it pastes masks inside a Loop)."""
    model = build_model(ModelRecipe(arch="lite", classes=["bubble"], image_size=64)).eval()
    path = tmp_path_factory.mktemp("tv") / "plain.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, ([torch.rand(3, 64, 64)],), str(path), dynamo=False, opset_version=17)
    return path


def test_fails_on_torchvision_plain_export_listing_reasons(torchvision_plain_export):
    problems = check_model(torchvision_plain_export)
    kinds = {p.kind for p in problems}
    assert {"control-flow", "dynamic-shape"} <= kinds
    text = "\n".join(str(p) for p in problems)
    assert "Loop" in text and "If" in text  # the mask paste loop and the NMS empty-input branch
    dynamic = [p for p in problems if p.kind == "dynamic-shape"]
    assert any("output" in p.detail for p in dynamic)


def test_unsupported_operator_and_custom_domain():
    nodes = [helper.make_node("Unique", ["x"], ["u"]), helper.make_node("Relu", ["u"], ["y"]),
             helper.make_node("MyPlugin", ["y"], ["z"], domain="com.example")]
    model = _model(nodes, [_vi("x", [4])], [_vi("z", [4])])
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    problems = check_model(model)
    assert [p.kind for p in problems if p.kind == "operator"] == ["operator", "operator"]
    assert "Unique" in str(problems[0]) and "com.example" in str(problems[1])
    assert "Unique" not in TRT_SUPPORTED_OPS and "NonMaxSuppression" in TRT_SUPPORTED_OPS


def test_topk_and_resize_attribute_limits():
    k = helper.make_tensor("k", TensorProto.INT64, [1], [4000])
    nodes = [
        helper.make_node("TopK", ["x", "k"], ["v", "i"]),
        helper.make_node("Resize", ["img", "", "scales"], ["r"], mode="cubic"),
    ]
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    model = _model(nodes, [_vi("x", [5000]), _vi("img", [1, 1, 4, 4])],
                   [_vi("v", [4000]), _vi("i", [4000], TensorProto.INT64), _vi("r", [1, 1, 8, 8])], [k, scales])
    details = [p.detail for p in check_model(model)]
    assert any("K=4000" in d for d in details)
    assert any("cubic" in d for d in details)


def test_dynamic_output_dimension_is_reported():
    model = _model([helper.make_node("NonZero", ["x"], ["y"])], [_vi("x", [8])], [_vi("y", [1, "n"], TensorProto.INT64)])
    problems = check_model(model)
    assert [p.kind for p in problems] == ["dynamic-shape"] and problems[0].where == "y"


def test_internal_uint8_tensor_is_reported():
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0]),
             helper.make_node("Cast", ["t"], ["y"], to=TensorProto.FLOAT)]
    model = _model(nodes, [_vi("x", [2, 3], TensorProto.UINT8)], [_vi("y", [3, 2])])
    assert [p.kind for p in check_model(model)] == ["dtype"]


def test_missing_or_corrupt_file_is_a_user_error(tmp_path):
    with pytest.raises(MaskrtError, match="not found"):
        check_model(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(MaskrtError, match="cannot read"):
        check_model(bad)


def test_valid_small_model_passes():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [1, 3])], [_vi("y", [1, 3])])
    onnx.checker.check_model(model)
    assert check_model(model) == []
