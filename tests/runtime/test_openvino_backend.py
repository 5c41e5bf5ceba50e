"""The OpenVINO backend: the same artifact and metadata as ONNX Runtime, the same detections, a model cache.

Parity is checked on the bundled model with the export check's FP32 rules (:mod:`maskrt.export.parity`):
every ONNX Runtime detection matched one to one, box IoU >= 0.99, pasted-mask IoU >= 0.98, scores within
1e-3. The frames are synthetic scenes of 20, 30 and 80 bubbles. (On some dense scenes a proposal sits on
the pre-NMS cut-off; there ONNX Runtime with its graph optimisations off differs from itself with them on
exactly as much as OpenVINO does, so such frames test the model, not the backend.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")

from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.export.parity import ParityRules, artifact_dets, compare
from maskrt.runtime import Segmenter
from maskrt.runtime.backends.openvino_backend import OpenVINOBackend, default_cache_dir, ov_device
from maskrt.runtime.bench.scenes import render_scene
from maskrt.runtime.segmenter import BUNDLED_MODEL

SCENES = ((5, 20), (3, 30), (4, 80))  # (seed, bubbles)


@pytest.fixture(scope="module")
def bundled() -> tuple[Segmenter, Segmenter]:
    if not BUNDLED_MODEL.is_file():
        pytest.skip("no bundled model in this checkout")
    ov = Segmenter(backend="openvino", device="cpu", threads=2)
    ort = Segmenter(backend="onnxruntime", device="cpu", threads=2)
    yield ov, ort
    ov.close()
    ort.close()


def test_bundled_model_gives_onnxruntime_detections(bundled: tuple[Segmenter, Segmenter]) -> None:
    ov, ort = bundled
    assert ov.backend.name == "openvino:CPU" and ov.meta == ort.meta  # metadata read from the ONNX file itself
    rules = ParityRules()
    names = ("boxes", "scores", "labels", "masks", "num_dets")
    total = 0
    for seed, bubbles in SCENES:
        frame = render_scene((480, 640), bubbles, seed=seed)
        images, scale = ort.preprocess(frame)
        hw = ort.input_hw
        ref_out, test_out = ort.infer(images), ov.infer(images)
        ref = artifact_dets([ref_out[n] for n in names], hw)
        test = artifact_dets([test_out[n] for n in names], hw)
        report = compare(ref, test, rules, max_det=ort.meta.max_det)
        assert report.missing == 0 and report.extra == 0, (seed, report)
        assert report.matched == report.ref_count > 10
        assert report.min_box_iou >= rules.box_iou and report.min_mask_iou >= rules.mask_iou, (seed, report)
        assert report.max_score_diff <= rules.score_tol, (seed, report)
        total += report.matched
        frame_hw = (frame.shape[0], frame.shape[1])  # and in the frame, after the runtime's postprocess
        a, b = ov.postprocess(test_out, scale, frame_hw), ort.postprocess(ref_out, scale, frame_hw)
        assert len(a) == len(b) and np.allclose(a.boxes, b.boxes, atol=0.5)
    assert total > 60


def test_fp32_artifact_runs_in_fp32_with_the_threads_asked_for(make_model) -> None:
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    backend = OpenVINOBackend(make_model(), device="cpu", threads=1)
    assert backend.compiled.get_property(props.inference_num_threads) == 1
    assert backend.compiled.get_property(hints.inference_precision) == ov.Type.f32
    assert str(backend.compiled.get_property(hints.performance_mode)) == "LATENCY"
    assert backend.input_shape == (1, 128, 128, 3)


def test_same_instances_as_onnxruntime_on_a_constant_model(make_model) -> None:
    path = make_model()
    frame = np.zeros((256, 512, 3), np.uint8)
    a = Segmenter(path, backend="openvino", device="cpu")(frame)
    b = Segmenter(path, backend="onnxruntime", device="cpu")(frame)
    assert len(a) == len(b) == 2
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert [m.sum() for m in a.crops] == [m.sum() for m in b.crops]


def test_compiled_model_cache_is_written_once_and_reused(make_model, tmp_path: Path) -> None:
    path = make_model()
    cache = tmp_path / "ov-cache"
    OpenVINOBackend(path, device="cpu", cache_dir=cache).close()
    blobs = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert len(blobs) == 1
    second = OpenVINOBackend(path, device="cpu", cache_dir=cache)
    assert second.cache_dir == cache
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == blobs  # read back, not compiled again
    off = OpenVINOBackend(path, device="cpu", cache_dir=None)
    assert off.cache_dir is None


def test_cache_folder_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MASKRT_OPENVINO_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.setenv("MASKRT_OPENVINO_CACHE", "off")
    assert default_cache_dir() is None
    monkeypatch.delenv("MASKRT_OPENVINO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "maskrt" / "openvino"


def test_devices_and_their_errors(make_model) -> None:
    assert [ov_device(d) for d in ("cpu", "gpu", "gpu:1", "GPU.1", "npu", "auto")] == [
        "CPU", "GPU", "GPU.1", "GPU.1", "NPU", "AUTO"]
    with pytest.raises(MaskrtError, match="NVIDIA"):
        ov_device("cuda:0")
    with pytest.raises(MaskrtError, match="unknown device 'tpu'"):
        ov_device("tpu")
    import openvino as ov

    if "NPU" not in ov.Core().available_devices:
        with pytest.raises(MaskrtError, match="not NPU; install its driver"):
            Segmenter(make_model(), backend="openvino", device="npu")
    assert Segmenter(make_model(), backend="openvino", device="auto").backend.name.startswith("openvino:")


def test_broken_or_foreign_model_is_one_user_error(make_model, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx protobuf")
    with pytest.raises(MaskrtError, match="broken.onnx: OpenVINO cannot load this model"):
        Segmenter(bad, backend="openvino")
    with pytest.raises(MaskrtError, match="no maskrt metadata"):
        Segmenter(make_model(drop_props=True), backend="openvino")
    image = tmp_path / "a.png"
    import cv2

    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    assert main(["predict", str(bad), str(image), "--backend", "openvino", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "OpenVINO cannot load" in err[0]


SIGNAL_AFTER_BACKENDS = """
import gc, signal, sys
from maskrt.runtime.backends.openvino_backend import OpenVINOBackend

first = OpenVINOBackend(sys.argv[1], device="cpu", cache_dir=sys.argv[2])
first.close()
second = OpenVINOBackend(sys.argv[1], device="cpu", cache_dir=sys.argv[2])
third = OpenVINOBackend(sys.argv[1], device="cpu", cache_dir=None)
del first, second, third
gc.collect()
signal.signal(signal.SIGTERM, lambda *a: print("stopped cleanly"))
signal.raise_signal(signal.SIGTERM)
"""


def test_a_signal_after_backends_come_and_go_does_not_crash(make_model, tmp_path: Path) -> None:
    """A Ctrl-C or SIGTERM must stop `maskrt run` cleanly after OpenVINO models were loaded and released.

    OpenVINO's CPU plugin swaps the signal stack per ``Core`` and restores it when the Core goes; Cores
    released out of order left a freed signal stack behind and the next signal crashed the process.
    """
    import subprocess
    import sys

    script = tmp_path / "signal_after_backends.py"
    script.write_text(SIGNAL_AFTER_BACKENDS)
    proc = subprocess.run([sys.executable, str(script), str(make_model()), str(tmp_path / "cache")], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "stopped cleanly"
