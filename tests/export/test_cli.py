"""`maskrt export` from the command line: files, report, one-line errors with exit code 2."""

from __future__ import annotations

import pytest

from maskrt.artifact import ArtifactMeta
from maskrt.cli import main
from maskrt.export.metadata import read_meta
from maskrt.export.tensorrt_build import tensorrt_available
from maskrt.train.checkpoint import save_checkpoint
from maskrt.train.models import ModelRecipe


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, make_model):
    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=64)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, make_model(recipe), recipe, metrics={"mask_mAP": 0.3})
    return path


def test_export_writes_checked_onnx_and_reports(checkpoint, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    code = main(["export", str(checkpoint), "--imgsz", "64", "--max-det", "20", "--out", str(out),
                 "--parity-images", "2"])
    text = capsys.readouterr().out
    assert code == 0, text
    meta = read_meta(out)
    assert isinstance(meta, ArtifactMeta) and meta.input_size == (64, 64) and meta.max_det == 20
    assert meta.metrics == {"mask_mAP": 0.3}
    assert "TensorRT  compatible" in text and "parity    PASS" in text and "MB" in text
    assert main(["export", "--check", str(out)]) == 0


def test_missing_checkpoint_is_one_line_exit_2(tmp_path, capsys):
    code = main(["export", str(tmp_path / "missing.pt")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "missing.pt" in err and "checkpoint not found" in err


def test_not_a_checkpoint_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", str(bad)]) == 2
    assert "bad.pt" in capsys.readouterr().err


def test_bad_options_are_exit_2(checkpoint, capsys):
    assert main(["export", str(checkpoint), "--imgsz", "100"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
    assert main(["export", str(checkpoint), "--format", "tflite"]) == 2


@pytest.mark.skipif(tensorrt_available(), reason="tensorrt is installed here")
def test_engine_without_tensorrt_says_so(checkpoint, capsys):
    code = main(["export", str(checkpoint), "--format", "engine", "--imgsz", "64"])
    err = capsys.readouterr().err
    assert code == 2 and "TensorRT" in err and "--format onnx" in err


def test_check_reports_problems_with_exit_2(tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Unique", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])])
    path = tmp_path / "u.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert main(["export", "--check", str(path)]) == 2
    captured = capsys.readouterr()
    assert "Unique" in captured.out and "dynamic-shape" in captured.out
    assert "2 TensorRT-compatibility problems" in captured.err


def test_option_defaults_are_export_options() -> None:
    """Every option that is an ExportOptions field (some by another name) has the field's default."""
    from dataclasses import fields

    import typer.main

    from maskrt.cli import app
    from maskrt.export.pipeline import ExportOptions

    command = typer.main.get_command(app).commands["export"]  # type: ignore[attr-defined]
    renamed = {"name": "triton_name", "instances": "triton_instances", "heldout": "heldout_images",
               "workspace": "workspace_gb", "graph_conf": "graph_score_threshold"}
    by_field = {renamed.get(p.name, p.name): p.default for p in command.params if p.name not in ("checkpoint", "check")}
    defaults = ExportOptions()
    assert by_field == {name: getattr(defaults, name) for name in by_field}
    assert {f.name for f in fields(ExportOptions)} - set(by_field) == {"mask_threshold", "threads", "calib_method"}
