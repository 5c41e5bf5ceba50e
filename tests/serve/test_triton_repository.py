"""`maskrt export --format triton`: a model repository whose config.pbtxt matches the artifact contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maskrt.artifact import ArtifactMeta
from maskrt.cli import main
from maskrt.export.metadata import read_meta
from maskrt.export.triton import check_config, model_config, parameters_of, parse_pbtxt, to_pbtxt
from maskrt.runtime.segmenter import BUNDLED_MODEL


def test_repository_of_the_bundled_model_matches_the_contract(tmp_path: Path) -> None:
    repo = tmp_path / "model_repository"
    assert main(["export", str(BUNDLED_MODEL), "--format", "triton", "--out", str(repo), "--instances", "2"]) == 0
    folder = repo / "bubbles-lite"
    model = folder / "1" / "model.onnx"
    assert model.read_bytes() == BUNDLED_MODEL.read_bytes()
    config = parse_pbtxt((folder / "config.pbtxt").read_text(encoding="utf-8"))
    meta = read_meta(BUNDLED_MODEL)
    assert check_config(config, meta) == []
    assert config["name"] == "bubbles-lite" and config["platform"] == "onnxruntime_onnx"
    assert config["max_batch_size"] == 0  # a static-batch artifact: Triton must not batch it
    assert {t["name"]: t["dims"] for t in config["input"]} == {"images": [1, 640, 640, 3]}
    dims = {t["name"]: (t["data_type"], t["dims"]) for t in config["output"]}
    d = meta.max_det  # the bundled artifact's detection rows
    assert dims == {"boxes": ("TYPE_FP32", [1, d, 4]), "scores": ("TYPE_FP32", [1, d]),
                    "labels": ("TYPE_INT32", [1, d]), "masks": ("TYPE_FP32", [1, d, 28, 28]),
                    "num_dets": ("TYPE_INT32", [1]),
                    # the bundled model's phase map: half the input per side (a stride-2 head)
                    **({"phase": ("TYPE_FP32", [1, 320, 320])} if meta.phase_stride else {})}
    assert meta.phase_stride == 2  # the bundled model has a stride-2 phase head
    assert config["instance_group"] == [{"count": 2, "kind": "KIND_AUTO"}]
    # a client reads the model's metadata back from the configuration, as the runtime's triton:// backend does
    served = ArtifactMeta.from_props(parameters_of(config), "config.pbtxt")
    assert served == meta and served.class_names == ["bubble", "droplet"]


def test_config_is_valid_for_tritons_own_model_config_proto(tmp_path: Path) -> None:
    model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    text_format = pytest.importorskip("google.protobuf.text_format")
    meta = read_meta(BUNDLED_MODEL)
    for max_batch in (0, 8):
        text = to_pbtxt(model_config("bubbles-lite", meta, max_batch_size=max_batch))
        parsed = text_format.Parse(text, model_config_pb2.ModelConfig())
        assert parsed.max_batch_size == max_batch
        assert json.loads(parsed.parameters["maskrt.class_names"].string_value) == ["bubble", "droplet"]
        num_dets = parsed.output[4]
        assert list(num_dets.dims) == [1]
        assert num_dets.HasField("reshape") == (max_batch > 0)  # [B] scalars are dims [1] reshaped to []
        assert parsed.HasField("dynamic_batching") == (max_batch > 0)
        assert list(parsed.input[0].dims) == ([1, 640, 640, 3] if max_batch == 0 else [640, 640, 3])


def test_pbtxt_round_trip_keeps_quotes_and_non_ascii_class_names() -> None:
    meta = ArtifactMeta(arch="lite", class_names=['bulle "d\'air"', "gouttelette é", "back\\slash"],
                        input_size=(320, 320), batch_size=2)
    parsed = parse_pbtxt(to_pbtxt(model_config("m.1_x-y", meta)))
    assert check_config(parsed, meta) == []
    assert ArtifactMeta.from_props(parameters_of(parsed)).class_names == meta.class_names
    assert parsed["input"][0]["dims"] == [2, 320, 320, 3]


def test_repository_refusals_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", str(BUNDLED_MODEL), "--format", "triton", "--out", str(tmp_path / "x.onnx")]) == 2
    assert "writes a model repository folder" in capsys.readouterr().err
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 64)
    assert main(["export", str(engine), "--format", "triton", "--out", str(tmp_path / "repo")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "m.engine.json" in err and "--format engine" in err
    assert main(["export", str(BUNDLED_MODEL), "--format", "triton", "--name", "bad/name", "--out",
                 str(tmp_path / "repo")]) == 2
    assert "--name" in capsys.readouterr().err
