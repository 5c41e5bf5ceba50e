"""TensorRT backend: build-environment checks everywhere; real engines only where a GPU and TensorRT exist."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from maskrt.artifact import ArtifactMeta, engine_sidecar
from maskrt.errors import MaskrtError
from maskrt.runtime import Segmenter
from maskrt.runtime.backends.tensorrt_backend import (
    check_build_env,
    read_sidecar,
    sidecar_props,
    tensorrt_available,
)

SIDECAR = {  # what export/tensorrt_build.py writes: flat maskrt.* props plus the build environment
    **ArtifactMeta(arch="lite", class_names=["bubble"], input_size=(256, 256)).to_props(),
    "tensorrt_version": "10.13.0.35",
    "gpu_name": "NVIDIA H100 80GB HBM3",
    "compute_capability": "9.0",
}


def test_sidecar_props_decode_to_the_artifact_metadata(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    engine_sidecar(engine).write_text(json.dumps(SIDECAR))
    meta = ArtifactMeta.from_props(sidecar_props(read_sidecar(engine)), engine)
    assert meta.class_names == ["bubble"] and meta.input_size == (256, 256)


def test_missing_or_broken_sidecar(tmp_path: Path) -> None:
    engine = tmp_path / "m.engine"
    with pytest.raises(MaskrtError, match=r"no metadata file m\.engine\.json"):
        read_sidecar(engine)
    engine_sidecar(engine).write_text("{not json")
    with pytest.raises(MaskrtError, match="rebuild the engine"):
        read_sidecar(engine)


def test_engines_from_another_gpu_or_tensorrt_are_refused() -> None:
    path = Path("m.engine")
    check_build_env(SIDECAR, "NVIDIA H100 80GB HBM3", "9.0", "10.13.0.35", path)  # same: accepted
    check_build_env(SIDECAR, "NVIDIA H100 PCIe", "9.0", "10.13.0.35.post1", path)  # same arch and release
    with pytest.raises(MaskrtError, match=r"compute capability 9\.0.*this GPU is Orin \(8\.7\); rebuild it on this"):
        check_build_env(SIDECAR, "Orin", "8.7", "10.13.0.35", path)
    with pytest.raises(MaskrtError, match=r"TensorRT 10\.13\.0\.35, this is TensorRT 10\.3\.0; rebuild it on this"):
        check_build_env(SIDECAR, "NVIDIA H100 80GB HBM3", "9.0", "10.3.0", path)


def test_engine_without_tensorrt_says_how_to_install(tmp_path: Path) -> None:
    if tensorrt_available() is None:
        pytest.skip("TensorRT is usable here; this test covers machines without it")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"\0" * 16)
    engine_sidecar(engine).write_text(json.dumps(SIDECAR))
    with pytest.raises(MaskrtError, match="TensorRT|tensorrt|cuda-python|CUDA"):
        Segmenter(engine)


@pytest.fixture(scope="module")
def engine_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    reason = tensorrt_available()
    if reason is not None:
        print(f"skipping TensorRT engine tests: {reason}")
        pytest.skip(f"TensorRT backend unavailable: {reason}")
    pytest.importorskip("torch")
    import torch

    from maskrt.export.metadata import make_meta
    from maskrt.export.onnx_export import export_onnx
    from maskrt.export.tensorrt_build import build_engine
    from maskrt.export.wrapper import ExportWrapper
    from maskrt.train.models import ModelRecipe, build_model

    torch.manual_seed(0)
    recipe = ModelRecipe(arch="lite", classes=["bubble", "droplet"], image_size=256)
    model = build_model(recipe)
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.weight.mul_(30.0)
        model.roi_heads.mask_predictor.mask_fcn_logits.weight.mul_(30.0)
    folder = tmp_path_factory.mktemp("trt")
    onnx_path = folder / "lite.onnx"
    export_onnx(ExportWrapper(model, (256, 256), 50, recipe.mean, recipe.std),
                make_meta(recipe, (256, 256), 50, "fp32", {}, 0.3, 0.5), onnx_path)
    engine = folder / "lite.engine"
    build_engine(onnx_path, engine)
    return onnx_path, engine


@pytest.mark.gpu
def test_engine_matches_onnx_runtime(engine_pair: tuple[Path, Path]) -> None:
    from maskrt.export.parity import ParityRules, compare
    from maskrt.runtime.bench.scenes import render_scene

    onnx_path, engine = engine_pair
    trt_seg = Segmenter(engine)
    ort_seg = Segmenter(onnx_path, device="cpu")
    assert trt_seg.backend.name.startswith("tensorrt:")
    rules = ParityRules(box_iou=0.98, mask_iou=0.95, score_tol=1e-2, score_floor=ort_seg.conf)
    for hw in ((300, 400), (256, 256)):
        frame = render_scene(hw, 30, seed=hw[0])
        a, b = ort_seg(frame), trt_seg(frame)
        dets = [{"boxes": i.boxes, "scores": i.scores, "labels": i.class_ids, "masks": i.masks} for i in (a, b)]
        result = compare(dets[0], dets[1], rules, 50)
        assert result.missing == 0 and result.extra == 0 and result.min_mask_iou >= rules.mask_iou, result
    # buffers are reused: a second call on another frame must not change the first result's arrays
    first = trt_seg(render_scene((256, 256), 10, seed=1))
    boxes = first.boxes.copy()
    trt_seg(render_scene((256, 256), 40, seed=2))
    np.testing.assert_array_equal(first.boxes, boxes)
    trt_seg.close()
    trt_seg.close()  # idempotent


@pytest.mark.gpu
def test_engine_built_elsewhere_is_refused(engine_pair: tuple[Path, Path], tmp_path: Path) -> None:
    _, engine = engine_pair
    moved = tmp_path / engine.name
    moved.write_bytes(engine.read_bytes())
    side = json.loads(engine_sidecar(engine).read_text())
    side["compute_capability"] = "1.0"
    engine_sidecar(moved).write_text(json.dumps(side))
    with pytest.raises(MaskrtError, match="rebuild it on this device"):
        Segmenter(moved)
