"""Which inference backends a benchmark row can use here, and why not when it cannot.

Backend names on the ``maskrt bench`` command line:

- ``ort-cpu``: ONNX Runtime, CPU execution provider (``.onnx``)
- ``ort-cuda``: ONNX Runtime, CUDA execution provider (``.onnx``; needs onnxruntime-gpu and a GPU)
- ``ort-trt``: ONNX Runtime, TensorRT execution provider (``.onnx``; needs onnxruntime-gpu with TensorRT)
- ``trt``: native TensorRT (``.engine`` built on this device by ``maskrt export --format engine``)
- ``auto``: what the runtime itself picks for the model file: ``trt`` for an engine, else ``ort-cuda``
  when it can run, else ``ort-cpu`` (the TensorRT provider only when asked for: it builds an engine
  when the session opens)
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

BACKENDS = ("auto", "ort-cpu", "ort-cuda", "ort-trt", "trt")
ENGINE_SUFFIXES = (".engine", ".trt", ".plan")
ORT_PROVIDERS = {
    "ort-cpu": "CPUExecutionProvider",
    "ort-cuda": "CUDAExecutionProvider",
    "ort-trt": "TensorrtExecutionProvider",
}


def _ort_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def has_nvidia_gpu() -> bool:
    """True when an NVIDIA GPU is visible (a device node, ``nvidia-smi``, or a Jetson's integrated GPU)."""
    return (
        Path("/dev/nvidia0").exists()
        or Path("/dev/nvhost-gpu").exists()
        or Path("/etc/nv_tegra_release").exists()
        or (shutil.which("nvidia-smi") is not None and os.environ.get("CUDA_VISIBLE_DEVICES", "0") != "-1")
    )


def availability(backend: str, model: str | Path) -> str | None:
    """``None`` when ``backend`` can run ``model`` here, else the reason it cannot (one line, with the fix)."""
    suffix = Path(model).suffix.lower()
    if backend not in BACKENDS:
        return f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}"
    if backend == "auto":
        if resolve_auto(model):
            return None
        return availability("trt" if suffix in ENGINE_SUFFIXES else "ort-cpu", model)
    if backend == "trt":
        if suffix not in ENGINE_SUFFIXES:
            return "native TensorRT runs .engine files; build one on this device with `maskrt export --format engine`"
        if importlib.util.find_spec("tensorrt") is None:
            return "tensorrt is not installed; pip install 'maskrt[trt]' (JetPack ships it on Jetson)"
        try:
            from maskrt.runtime.backends.tensorrt_backend import tensorrt_available
        except ImportError:  # the runtime's TensorRT backend is missing from this install
            return "this maskrt has no TensorRT backend"
        return tensorrt_available()  # also catches a stubs-only `tensorrt` and a missing CUDA runtime
    if suffix in ENGINE_SUFFIXES:
        return "ONNX Runtime runs .onnx files; pass the .onnx model or use --backend trt for an engine"
    providers = _ort_providers()
    if not providers:
        return "onnxruntime is not installed; pip install 'maskrt[cpu]' (or 'maskrt[gpu]')"
    wanted = ORT_PROVIDERS[backend]
    if wanted not in providers:
        extra = "onnxruntime-gpu" if backend != "ort-cpu" else "onnxruntime"
        return f"{wanted} not in this ONNX Runtime ({', '.join(providers)}); install {extra}"
    if backend != "ort-cpu" and not has_nvidia_gpu():
        return f"{wanted} is installed but no NVIDIA GPU is visible"
    return None


def resolve_auto(model: str | Path) -> str | None:
    """The backend ``auto`` means for this model file here, or ``None`` when nothing can run it."""
    if Path(model).suffix.lower() in ENGINE_SUFFIXES:
        return "trt" if availability("trt", model) is None else None
    for name in ("ort-cuda", "ort-cpu"):
        if availability(name, model) is None:
            return name
    return None


def available_backends(model: str | Path) -> list[str]:
    """Every concrete backend that can run ``model`` here (``auto`` excluded)."""
    return [b for b in BACKENDS[1:] if availability(b, model) is None]
