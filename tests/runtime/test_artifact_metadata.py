"""The artifact contract checks every metadata key's type and range, in one place, for every reader.

A wrong value gives one :class:`MaskrtError` naming the model file, the key and what it should be: through
``ArtifactMeta.from_props`` itself, the Segmenter (ONNX Runtime), an engine's sidecar, ``maskrt bench``'s
reader, the exporter's ``read_meta`` and ``maskrt predict``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.artifact import KEY_PREFIX, REQUIRED_KEYS, ArtifactMeta, engine_sidecar, sidecar_props
from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.runtime import Segmenter
from maskrt.runtime.bench.artifacts import read_artifact_meta

VALID = ArtifactMeta(arch="lite", class_names=["bubble", "droplet"], input_size=(128, 128)).to_props()

# key, raw metadata value (what an ONNX file stores: text), what the message must say
WRONG = [
    ("class_names", '"bubble"', "maskrt.class_names is 'bubble' (str), expected a non-empty JSON list"),
    ("class_names", "bubble", "maskrt.class_names is not valid JSON ('bubble')"),
    ("class_names", "7", "maskrt.class_names is 7 (int), expected a non-empty JSON list"),
    ("class_names", "[]", "maskrt.class_names is [] (list)"),
    ("class_names", '["bubble", ""]', "maskrt.class_names is"),
    ("class_names", '["bubble", 3]', "maskrt.class_names is"),
    ("class_names", '["bubble", "bubble"]', "expected a non-empty JSON list of distinct"),
    ("input_size", '"big"', "maskrt.input_size is 'big' (str), expected a JSON list [H, W] of two integers"),
    ("input_size", "[128]", "maskrt.input_size is [128] (list)"),
    ("input_size", "[128, 0]", "maskrt.input_size is [128, 0] (list)"),
    ("input_size", "[128.5, 128]", "maskrt.input_size"),
    ("input_size", "[true, true]", "maskrt.input_size"),
    ("input_size", "[1, 99999999]", "maskrt.input_size"),
    ("mean", "abc", "maskrt.mean is not valid JSON ('abc'), expected a JSON list of three numbers in [0, 1]"),
    ("mean", '"abc"', "maskrt.mean is 'abc' (str), expected a JSON list of three numbers in [0, 1]"),
    ("mean", "[0.5, 0.5]", "maskrt.mean is [0.5, 0.5] (list)"),
    ("mean", "[0.5, 0.5, 200]", "maskrt.mean"),
    ("std", "[0.2, 0.2, 0]", "maskrt.std is [0.2, 0.2, 0] (list), expected a JSON list of three positive numbers"),
    ("std", "[0.2, NaN, 0.2]", "maskrt.std"),
    ("score_threshold", '"0.5"', "maskrt.score_threshold is '0.5' (str), expected a number in [0, 1]"),
    ("score_threshold", "1.5", "maskrt.score_threshold is 1.5 (float), expected a number in [0, 1]"),
    ("score_threshold", "NaN", "maskrt.score_threshold is NaN (float)"),
    ("mask_threshold", "-0.1", "maskrt.mask_threshold is -0.1 (float)"),
    ("mask_threshold", "true", "maskrt.mask_threshold is true (bool)"),
    ("max_det", "0", "maskrt.max_det is 0 (int), expected an integer in 1..100000"),
    ("max_det", "10.5", "maskrt.max_det is 10.5 (float)"),
    ("max_det", '"100"', "maskrt.max_det is '100' (str)"),
    ("mask_size", "-28", "maskrt.mask_size is -28 (int)"),
    ("batch_size", "0", "maskrt.batch_size is 0 (int)"),
    ("pad_value", "256", "maskrt.pad_value is 256 (int), expected an integer in 0..255"),
    ("metrics", "[1, 2]", "maskrt.metrics is [1, 2] (list), expected a JSON object"),
    ("metrics", "{bad", "maskrt.metrics is not valid JSON"),
    ("arch", "", "maskrt.arch is '' (str), expected a non-empty string"),
    ("precision", "fp8", "maskrt.precision is 'fp8' (str), expected \"fp32\""),
    ("input_layout", "NCHW", "maskrt.input_layout is 'NCHW' (str), expected \"NHWC\""),
    ("channel_order", "RGB", "maskrt.channel_order is 'RGB' (str), expected \"BGR\""),
    ("resize", "stretch", "maskrt.resize is 'stretch' (str)"),
    ("letterbox_align", "center", "maskrt.letterbox_align is 'center' (str)"),
    ("int8_weight_bits", "6", "maskrt.int8_weight_bits is 6 (int), expected 7 or 8"),
]


def _with(key: str, raw: str) -> dict[str, str]:
    return {**VALID, KEY_PREFIX + key: raw}


@pytest.mark.parametrize(("key", "raw", "expected"), WRONG, ids=[f"{k}={r}" for k, r, _ in WRONG])
def test_wrong_value_is_one_error_naming_file_and_key(key: str, raw: str, expected: str) -> None:
    with pytest.raises(MaskrtError) as info:
        ArtifactMeta.from_props(_with(key, raw), "models/m.onnx")
    text = str(info.value)
    assert text.startswith(f"models/m.onnx: metadata key {KEY_PREFIX}{key} ")
    assert expected in text and "re-export" in text and "\n" not in text


def test_valid_metadata_round_trips_with_its_types() -> None:
    meta = ArtifactMeta.from_props(VALID, "m.onnx")
    assert meta.class_names == ["bubble", "droplet"] and meta.input_size == (128, 128)
    assert meta.mean == (0.485, 0.456, 0.406) and isinstance(meta.score_threshold, float)
    assert ArtifactMeta.from_props(meta.to_props()) == meta
    # integers where a number is expected are numbers; a threshold of exactly 0 or 1 is in range
    meta2 = ArtifactMeta.from_props({**VALID, "maskrt.score_threshold": "1", "maskrt.mask_threshold": "0"})
    assert meta2.score_threshold == 1.0 and meta2.mask_threshold == 0.0


def test_int8_weight_range_is_recorded_and_older_int8_files_count_as_full_range() -> None:
    int8 = {**VALID, "maskrt.precision": "int8"}
    assert ArtifactMeta.from_props(int8).full_range_int8  # written before the key: 8-bit weights
    seven = ArtifactMeta.from_props({**int8, "maskrt.int8_weight_bits": "7"})
    assert seven.int8_weight_bits == 7 and not seven.full_range_int8
    assert ArtifactMeta.from_props(seven.to_props()) == seven
    assert not ArtifactMeta.from_props(VALID).full_range_int8  # FP32: no INT8 kernels
    assert "maskrt.int8_weight_bits" not in ArtifactMeta.from_props(VALID).to_props()


def test_values_that_are_not_text_and_props_that_are_not_a_map() -> None:
    with pytest.raises(MaskrtError, match=r"m\.onnx: metadata key maskrt\.max_det is not a string"):
        ArtifactMeta.from_props({**VALID, "maskrt.max_det": 100}, "m.onnx")  # type: ignore[dict-item]
    with pytest.raises(MaskrtError, match=r"m\.onnx: model metadata is not a set of key/value pairs"):
        ArtifactMeta.from_props(["maskrt.arch"], "m.onnx")  # type: ignore[arg-type]


def test_constructor_checks_the_same_rules() -> None:
    with pytest.raises(MaskrtError, match=r"maskrt\.class_names is 'bubble' \(str\)"):
        ArtifactMeta(arch="lite", class_names="bubble", input_size=(64, 64))  # type: ignore[arg-type]
    with pytest.raises(MaskrtError, match=r"maskrt\.score_threshold is 2"):
        replace(ArtifactMeta(arch="lite", class_names=["a"], input_size=(64, 64)), score_threshold=2.0)
    meta = ArtifactMeta(arch="lite", class_names=("a", "b"), input_size=[64, 96])  # type: ignore[arg-type]
    assert meta.class_names == ["a", "b"] and meta.input_size == (64, 96)


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("class_names", '"bubble"', "maskrt.class_names is 'bubble' (str)"),
        ("input_size", '"big"', "maskrt.input_size is 'big' (str)"),
        ("mean", "abc", "maskrt.mean is not valid JSON"),
        ("score_threshold", '"high"', "maskrt.score_threshold is 'high' (str)"),
    ],
)
def test_segmenter_refuses_wrong_metadata_of_an_onnx_file(make_model, key: str, raw: str, expected: str) -> None:
    path = make_model(props={KEY_PREFIX + key: raw})
    with pytest.raises(MaskrtError) as info:
        Segmenter(path, backend="onnxruntime")
    assert str(info.value).startswith(f"{path}: metadata key") and expected in str(info.value)


def test_string_class_names_never_become_per_letter_classes(make_model, tmp_path: Path, capsys) -> None:
    path = make_model(props={"maskrt.class_names": json.dumps("bubble")})
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 90, np.uint8))
    code = main(["predict", str(path), str(img), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert str(path) in err[0] and "maskrt.class_names is 'bubble' (str)" in err[0]
    assert "['b', 'u'" not in err[0]


def test_engine_sidecar_goes_through_the_same_checks(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    side = {**VALID, "tensorrt_version": "10.13.0.35", "compute_capability": "9.0"}
    # a sidecar may hold JSON values rather than JSON text: they are checked the same way
    engine_sidecar(engine).write_text(json.dumps({**side, "maskrt.input_size": [128, 128]}))
    assert ArtifactMeta.from_props(sidecar_props(json.loads(engine_sidecar(engine).read_text())),
                                   engine).input_size == (128, 128)
    for key, value, expected in [("class_names", "bubble", "maskrt.class_names is 'bubble' (str)"),
                                 ("input_size", "big", "maskrt.input_size is 'big' (str)"),
                                 ("max_det", 0, "maskrt.max_det is 0 (int)")]:
        engine_sidecar(engine).write_text(json.dumps({**side, KEY_PREFIX + key: json.dumps(value)}))
        with pytest.raises(MaskrtError, match="^" + str(engine).replace(".", r"\.")) as info:
            ArtifactMeta.from_props(sidecar_props(json.loads(engine_sidecar(engine).read_text())), engine)
        assert expected in str(info.value)
        assert read_artifact_meta(engine) is None  # bench's reader: the row fails later, with this reason


def test_exporter_read_meta_checks_too(make_model) -> None:
    pytest.importorskip("onnx")
    from maskrt.export.metadata import read_meta

    assert read_meta(make_model()).class_names == ["bubble", "droplet"]
    path = make_model(props={"maskrt.mask_threshold": '"0.5"'})
    with pytest.raises(MaskrtError, match=r"maskrt\.mask_threshold is '0\.5' \(str\), expected a number in \[0, 1\]"):
        read_meta(path)


def test_every_key_has_a_rule() -> None:
    from maskrt.artifact import FIELD_RULES, OPTIONAL_KEYS

    assert set(FIELD_RULES) == set(REQUIRED_KEYS) | set(OPTIONAL_KEYS)
