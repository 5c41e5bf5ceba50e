"""TensorRT engine build: a clear error without TensorRT; real builds where a GPU and TensorRT exist."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskrt.artifact import ENGINE_KEYS, ArtifactMeta, engine_sidecar
from maskrt.errors import MaskrtError
from maskrt.export.tensorrt_build import BuildOptions, build_engine, require_tensorrt, tensorrt_available

HAS_TRT = tensorrt_available()


@pytest.mark.skipif(HAS_TRT, reason="tensorrt is installed here")
def test_without_tensorrt_a_clear_error(lite_export, tmp_path):
    with pytest.raises(MaskrtError, match="TensorRT.*not installed"):
        require_tensorrt()
    with pytest.raises(MaskrtError, match="TensorRT"):
        build_engine(lite_export.path, tmp_path / "m.engine")
    assert not (tmp_path / "m.engine").exists()


def test_missing_onnx_is_a_user_error(tmp_path):
    with pytest.raises(MaskrtError, match="not found"):
        build_engine(tmp_path / "none.onnx", tmp_path / "m.engine")


def _gpu_ready() -> str | None:
    if not HAS_TRT:
        return "tensorrt is not installed (pip install maskrt[trt] on a GPU machine)"
    import tensorrt as trt

    try:
        trt.Builder(trt.Logger(trt.Logger.ERROR))
    except Exception as exc:  # noqa: BLE001
        return f"no usable GPU for TensorRT: {exc}"
    return None


@pytest.mark.gpu
@pytest.mark.parametrize("half", [False, True])
def test_engine_builds_with_sidecar_and_matches_onnxruntime(lite_export, scene_images, tmp_path, half):
    reason = _gpu_ready()
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    import tensorrt as trt

    onnx_path = lite_export.path
    if half:
        from maskrt.export.fp16 import write_fp16

        onnx_path = write_fp16(onnx_path, tmp_path / "m.fp16.onnx")
    engine = tmp_path / "m.engine"
    side = build_engine(onnx_path, engine, BuildOptions(workspace_gb=1.0))
    assert engine.stat().st_size > 0 and (tmp_path / "m.engine.timing.cache").stat().st_size > 0
    on_disk = json.loads(engine_sidecar(engine).read_text())
    assert on_disk == side and all(k in on_disk for k in ENGINE_KEYS)
    meta = ArtifactMeta.from_props(on_disk)
    assert meta.class_names == lite_export.meta.class_names and meta.precision == ("fp16" if half else "fp32")
    # rebuilding reuses the timing cache
    build_engine(onnx_path, tmp_path / "m2.engine", BuildOptions(workspace_gb=1.0,
                 timing_cache=tmp_path / "m.engine.timing.cache"))
    # the engine's I/O follows the contract
    rt = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    eng = rt.deserialize_cuda_engine(engine.read_bytes())
    names = [eng.get_tensor_name(i) for i in range(eng.num_io_tensors)]
    assert names[0] == "images" and set(names[1:]) == {"boxes", "scores", "labels", "masks", "num_dets"}
    assert tuple(eng.get_tensor_shape("masks")) == (1, lite_export.meta.max_det, 28, 28)
    assert np.dtype(trt.nptype(eng.get_tensor_dtype("labels"))) == np.int32
