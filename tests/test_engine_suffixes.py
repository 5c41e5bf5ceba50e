"""One engine-ending vocabulary: predict, run, bench, export --out, serve and the Triton repository take the same set.

The list is :data:`maskrt.runtime.backends.formats.ENGINE_SUFFIXES` (``.engine``, ``.trt``, ``.plan``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maskrt.runtime.backends import resolve
from maskrt.runtime.backends.formats import ENGINE_SUFFIXES, MODEL_SUFFIXES


@pytest.mark.parametrize("suffix", ENGINE_SUFFIXES)
def test_predict_run_and_bench_take_an_engine_by_its_ending(suffix: str) -> None:
    """predict, run, bench and Segmenter pick TensorRT for the ending; predict also reads it as the model."""
    from maskrt.cli.predict import split_model_arg

    assert resolve(f"m{suffix}", "auto", "cuda") == ("tensorrt", "cuda")
    assert split_model_arg([f"m{suffix}", "img.png"], None) == (Path(f"m{suffix}"), ["img.png"])


@pytest.mark.parametrize("suffix", ENGINE_SUFFIXES)
def test_export_out_and_triton_take_every_engine_ending(suffix: str) -> None:
    pytest.importorskip("onnx")
    from maskrt.export.pipeline import ExportOptions, output_paths
    from maskrt.export.triton import PLATFORMS

    onnx_path, engine_path = output_paths(Path("ckpt.pt"), ExportOptions(out=f"out/m{suffix}"))
    assert (onnx_path, engine_path) == (Path("out/m.onnx"), Path(f"out/m{suffix}"))
    assert PLATFORMS[suffix] == ("tensorrt_plan", "model.plan")


def test_serve_takes_every_model_ending() -> None:
    from maskrt.cli import serve

    assert MODEL_SUFFIXES == (".onnx", *ENGINE_SUFFIXES)
    assert "MODEL_SUFFIXES" in vars(serve) and serve.MODEL_SUFFIXES is MODEL_SUFFIXES
