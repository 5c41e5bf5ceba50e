"""INT8 engines: the builder sets the INT8 flag on TensorRT 10 and no precision flag on TensorRT 11 (a stand-in
``tensorrt`` module records the calls; a real INT8 build needs an NVIDIA GPU and is unverified here)."""

from __future__ import annotations

import json
import sys
import types

import pytest

from maskrt.artifact import engine_sidecar
from maskrt.export.int8 import calibration_images, write_int8
from maskrt.export.tensorrt_build import build_engine

from .conftest import SIZE


def fake_tensorrt(version: str, calls: list) -> types.ModuleType:
    """The part of the TensorRT API that build_engine uses, recording network flags and builder flags."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    enum = types.SimpleNamespace
    trt.Logger = type("Logger", (), {"WARNING": 2, "ERROR": 1, "__init__": lambda self, level: None})
    trt.NetworkDefinitionCreationFlag = enum(STRONGLY_TYPED=5)
    trt.MemoryPoolType = enum(WORKSPACE=0)
    flags = {"FP16": "FP16", "INT8": "INT8"} if version.startswith("10") else {}
    trt.BuilderFlag = enum(**flags)

    class Cache:
        def serialize(self) -> bytes:
            return b"cache"

    class Config:
        def set_memory_pool_limit(self, pool, size):
            pass

        def set_flag(self, flag):
            calls.append(("flag", flag))

        def create_timing_cache(self, data):
            return Cache()

        def set_timing_cache(self, cache, ignore):
            return True

        def get_timing_cache(self):
            return Cache()

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls.append(("network_flags", flags))
            return object()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            return b"engine"

    class OnnxParser:
        def __init__(self, network, logger):
            self.num_errors = 0

        def parse_from_file(self, path):
            calls.append(("parse", path))
            return True

    trt.Builder, trt.OnnxParser = Builder, OnnxParser
    return trt


@pytest.fixture(scope="module")
def int8_model(lite_export, tmp_path_factory):
    images, _ = calibration_images((SIZE, SIZE), 2)
    return write_int8(lite_export.path, tmp_path_factory.mktemp("trt8") / "m.int8.onnx", images).path


@pytest.mark.parametrize(("version", "flags", "network_flags"), [("10.13.0", [("flag", "INT8")], 0),
                                                                  ("11.0.0", [], 0)])
def test_int8_onnx_builds_with_the_right_flags(int8_model, tmp_path, monkeypatch, version, flags, network_flags):
    calls: list = []
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(version, calls))
    info = build_engine(int8_model, tmp_path / "m.engine")
    assert [c for c in calls if c[0] == "flag"] == flags
    assert ("network_flags", network_flags) in calls  # weakly typed on 10 (INT8 flag), strongly typed by default on 11
    assert info["maskrt.precision"] == "int8" and json.loads(info["int8_flag"]) == bool(flags)
    assert json.loads(engine_sidecar(tmp_path / "m.engine").read_text())["maskrt.precision"] == "int8"
    assert (tmp_path / "m.engine").read_bytes() == b"engine"
