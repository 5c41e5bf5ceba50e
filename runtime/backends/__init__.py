"""Inference backends behind one small interface: ONNX Runtime for ``.onnx``, TensorRT for ``.engine``."""

from __future__ import annotations

from pathlib import Path

from maskrt.errors import MaskrtError
from maskrt.runtime.backends.base import Backend

BACKENDS = ("auto", "onnxruntime", "tensorrt")


def open_backend(
    path: Path, backend: str = "auto", device: str = "auto", threads: int | None = None, spin: bool = True
) -> Backend:
    """Open a model artifact with the backend its suffix (or ``backend``) calls for.

    Args:
        path: ``.onnx`` or ``.engine`` file.
        backend: ``auto`` (from the suffix), ``onnxruntime`` or ``tensorrt``.
        device: for ONNX Runtime, the execution provider: ``auto``, ``cpu``, ``cuda`` or ``tensorrt``;
            for TensorRT, ``auto`` or ``cuda[:N]``.
        threads: CPU threads for ONNX Runtime (``None``: its default).
        spin: ONNX Runtime's idle workers busy-wait between runs (see ``OnnxRuntimeBackend``).
    """
    if backend not in BACKENDS:
        raise MaskrtError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if backend == "auto":
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            backend = "onnxruntime"
        elif suffix in (".engine", ".trt", ".plan"):
            backend = "tensorrt"
        else:
            raise MaskrtError(
                f"cannot tell the backend from the suffix {suffix!r}; use a .onnx or .engine file or pass backend=",
                path=path,
            )
    if backend == "onnxruntime":
        from maskrt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, device=device, threads=threads, spin=spin)
    from maskrt.runtime.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(path, device=device)


__all__ = ["BACKENDS", "Backend", "open_backend"]
