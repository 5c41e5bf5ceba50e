"""One backend vocabulary: every command and ``Segmenter`` accept the same names, and ``auto`` picks by device.

The names are :data:`maskrt.runtime.backends.BACKEND_NAMES`: ``auto``, ``onnxruntime``, ``openvino``,
``tensorrt`` and the deprecated bench names ``ort-cpu``, ``ort-cuda``, ``ort-trt``, ``trt``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.runtime import Segmenter, backends
from maskrt.runtime.backends import BACKEND_NAMES, BACKENDS, DEPRECATED_ALIASES, parse_backend, resolve
from maskrt.runtime.bench.backends import default_rows, row_names

UNKNOWN = "unknown backend"


@pytest.fixture
def frames_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(2):
        cv2.imwrite(str(folder / f"f{k}.png"), np.full((120, 160, 3), 90 + k, np.uint8))
    return folder


def _accepted_by_segmenter(model: Path, name: str) -> bool:
    try:
        Segmenter(model, backend=name, threads=1).close()
    except MaskrtError as exc:  # installed or not, a known name never fails as unknown
        return UNKNOWN not in str(exc)
    return True


def _accepted_by_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> bool:
    code = main(args)
    err = capsys.readouterr().err
    assert code in (0, 2), err  # a missing backend is a user error (one line, exit 2), never a crash
    return UNKNOWN not in err


def test_every_command_accepts_the_same_backend_names(make_model, frames_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    model = make_model()
    image = str(frames_dir / "f0.png")
    commands = {
        "Segmenter": lambda name: _accepted_by_segmenter(model, name),
        "predict": lambda name: _accepted_by_cli(
            ["predict", str(model), image, "-o", str(tmp_path / "p"), "--backend", name, "--threads", "1"], capsys),
        "run": lambda name: _accepted_by_cli(
            ["run", str(model), str(frames_dir), "--backend", name, "--threads", "1", "--max-frames", "1",
             "--csv", str(tmp_path / "r.csv")], capsys),
        "bench": lambda name: _accepted_by_cli(
            ["-q", "bench", str(model), "-b", name, "--iters", "1", "--warmup", "0", "--frames", "1",
             "--threads", "1", "--json", str(tmp_path / "b.json")], capsys),
    }
    accepted = {cmd: {n for n in (*BACKEND_NAMES, "bogus", "ort-gpu") if check(n)} for cmd, check in commands.items()}
    assert accepted["Segmenter"] == set(BACKEND_NAMES)
    assert accepted == {cmd: set(BACKEND_NAMES) for cmd in commands}


def test_help_of_every_command_lists_the_names(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # a narrow terminal would cut the help text short
    for cmd in ("predict", "run", "bench", "serve"):
        assert main([cmd, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        for name in (*BACKENDS, *DEPRECATED_ALIASES):
            assert name in text, (cmd, name)
        assert "Deprecated" in text


def test_serve_refuses_an_unknown_backend_before_starting(make_model, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(make_model()), "--backend", "ort-gpu"]) == 2
    assert UNKNOWN in capsys.readouterr().err


def test_aliases_name_a_backend_and_a_device() -> None:
    assert parse_backend("ort-cuda") == ("onnxruntime", "cuda")
    assert parse_backend("ort-trt") == ("onnxruntime", "tensorrt")
    assert parse_backend("trt") == ("tensorrt", "auto")
    assert parse_backend("ort-cpu", "cuda:1") == ("onnxruntime", "cuda:1")  # an explicit --device wins
    assert parse_backend("OpenVINO", "NPU") == ("openvino", "npu")
    with pytest.raises(MaskrtError, match="backend openvino cannot use device 'cuda'"):
        parse_backend("openvino", "cuda")
    with pytest.raises(MaskrtError, match="unknown device 'tpu'"):
        parse_backend("auto", "tpu")


def _machine(monkeypatch: pytest.MonkeyPatch, openvino: bool, cuda: bool) -> None:
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    monkeypatch.setattr(backends, "ort_providers", lambda: providers)
    monkeypatch.setattr(backends, "openvino_devices", lambda: ["CPU", "GPU"] if openvino else [])
    monkeypatch.setattr(backends, "has_nvidia_gpu", lambda: cuda)


@pytest.mark.parametrize(("openvino", "cuda", "device", "expected"), [
    (True, False, "auto", ("openvino", "cpu")),  # a CPU: OpenVINO when installed
    (False, False, "auto", ("onnxruntime", "cpu")),  # else ONNX Runtime
    (True, False, "cpu", ("openvino", "cpu")),
    (True, True, "auto", ("onnxruntime", "cuda")),  # an NVIDIA GPU: ONNX Runtime's CUDA provider for .onnx
    (True, True, "cpu", ("openvino", "cpu")),
    (True, False, "gpu", ("openvino", "gpu")),  # no NVIDIA GPU: Intel graphics through OpenVINO
    (True, True, "gpu:1", ("onnxruntime", "gpu:1")),
    (True, False, "npu", ("openvino", "npu")),
    (True, True, "tensorrt", ("onnxruntime", "tensorrt")),
])
def test_auto_picks_the_fastest_installed_backend_for_the_device(
    monkeypatch: pytest.MonkeyPatch, openvino: bool, cuda: bool, device: str, expected: tuple[str, str]
) -> None:
    _machine(monkeypatch, openvino, cuda)
    assert resolve("m.onnx", "auto", device) == expected
    assert resolve("m.engine", "auto", device if device != "tensorrt" else "auto")[0] == "tensorrt"


def test_explicit_backends_resolve_their_own_auto_device(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, openvino=True, cuda=False)
    assert resolve("m.onnx", "onnxruntime") == ("onnxruntime", "cpu")
    assert resolve("m.onnx", "openvino") == ("openvino", "auto")  # OpenVINO's AUTO device
    assert resolve("m.engine", "tensorrt") == ("tensorrt", "cuda")
    _machine(monkeypatch, openvino=True, cuda=True)
    assert resolve("m.onnx", "onnxruntime") == ("onnxruntime", "cuda")


def test_bench_rows_default_to_every_cpu_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, openvino=True, cuda=False)
    assert default_rows("m.onnx") == ["openvino:cpu", "onnxruntime:cpu"]
    assert default_rows("m.onnx", "gpu") == ["openvino:gpu"]
    assert row_names(["ort-cpu", "openvino", "auto", "onnxruntime:cpu"], "m.onnx") == [
        "onnxruntime:cpu", "openvino:auto", "auto", "onnxruntime:cpu"]
    _machine(monkeypatch, openvino=False, cuda=False)
    assert default_rows("m.onnx") == ["onnxruntime:cpu"]
    _machine(monkeypatch, openvino=True, cuda=True)
    assert default_rows("m.onnx") == ["openvino:cpu", "onnxruntime:cpu", "onnxruntime:cuda"]


def test_bench_shows_openvino_and_onnxruntime_in_one_table(make_model, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "b.json"
    code = main(["-q", "bench", str(make_model()), "--iters", "2", "--warmup", "0", "--frames", "1", "--threads", "1",
                 "--json", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["backend"] for r in rows] == ["openvino:cpu", "onnxruntime:cpu"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["device"] == "openvino:CPU" and rows[1]["device"] == "onnxruntime:CPUExecutionProvider"
    assert rows[0]["instances_mean"] == rows[1]["instances_mean"] == 2  # the same model, the same detections
