"""Inference backends behind one small interface, and the one vocabulary every command names them with.

Backend names (``--backend`` of ``predict``, ``run`` and ``bench``; ``Segmenter(backend=...)``):

- ``auto``: the fastest backend installed for the device (see :func:`resolve`)
- ``onnxruntime``: ONNX Runtime, for ``.onnx`` files (execution provider chosen by the device)
- ``openvino``: OpenVINO, for the same ``.onnx`` files (Intel and AMD CPUs, Intel GPUs and NPUs)
- ``tensorrt``: native TensorRT, for ``.engine`` files built on this device by ``maskrt export --format engine``
- ``triton``: a model on a Triton Inference Server, named by a URL ``triton://host:8001/model`` in place of a
  file (``auto`` picks it for such a URL; the device is the server's business)

Devices (``--device``): ``auto``, ``cpu``, ``cuda[:N]`` (an NVIDIA GPU), ``gpu[:N]`` (any GPU: CUDA for
ONNX Runtime and TensorRT, Intel graphics for OpenVINO), ``npu`` (OpenVINO) and ``tensorrt[:N]`` (ONNX
Runtime's TensorRT execution provider, which builds an engine when the session opens).

The first names of ``maskrt bench`` (``ort-cpu``, ``ort-cuda``, ``ort-trt``, ``trt``) still work
everywhere as deprecated aliases of a backend and device (:data:`DEPRECATED_ALIASES`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from pathlib import Path

from maskrt.errors import MaskrtError
from maskrt.runtime.backends.base import Backend
from maskrt.runtime.backends.formats import ENGINE_SUFFIXES
from maskrt.runtime.backends.triton_backend import is_triton_url

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnxruntime", "openvino", "tensorrt", "triton")
"""The backend names every command and ``Segmenter`` accepts (plus :data:`DEPRECATED_ALIASES`)."""

DEVICES = ("auto", "cpu", "cuda", "gpu", "npu", "tensorrt")
"""Device names of ``--device``; ``cuda``, ``gpu`` and ``tensorrt`` take a GPU index (``cuda:1``)."""

DEPRECATED_ALIASES = {
    "ort-cpu": ("onnxruntime", "cpu"),
    "ort-cuda": ("onnxruntime", "cuda"),
    "ort-trt": ("onnxruntime", "tensorrt"),
    "trt": ("tensorrt", "auto"),
}
"""The first ``maskrt bench`` names -> ``(backend, device)``; kept so that users' scripts go on working."""

BACKEND_NAMES = (*BACKENDS, *DEPRECATED_ALIASES)
"""Every name a ``--backend`` option accepts."""

_CONCRETE = BACKENDS[1:]
_DEVICE_BACKENDS = {"npu": ("openvino",), "tensorrt": ("onnxruntime",), "cuda": ("onnxruntime", "tensorrt")}

BACKEND_HELP = (
    "auto (the fastest installed for the device), onnxruntime, openvino, tensorrt (.engine files) or triton "
    "(a triton://host:8001/model URL as the model). "
    "Deprecated aliases: ort-cpu, ort-cuda, ort-trt, trt."
)
DEVICE_HELP = "auto, cpu, cuda[:N], gpu[:N] (Intel graphics for openvino), npu (openvino) or tensorrt (ONNX Runtime)."


def parse_backend(backend: str, device: str = "auto") -> tuple[str, str]:
    """Check a backend name (an alias included) and a device; return the canonical ``(backend, device)``.

    An alias brings its own device (``ort-cuda`` is ``onnxruntime`` on ``cuda``) unless ``device``
    names one explicitly.
    """
    name = backend.strip().lower()
    dev = (device or "auto").strip().lower()
    if name in DEPRECATED_ALIASES:
        name, alias_device = DEPRECATED_ALIASES[name]
        dev = alias_device if dev == "auto" else dev
    if name not in BACKENDS:
        raise MaskrtError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)} "
                          f"(or the deprecated {', '.join(DEPRECATED_ALIASES)})")
    base = dev.split(":")[0]
    if base not in DEVICES and not base.startswith("gpu."):
        raise MaskrtError(f"unknown device {device!r}; use one of auto, cpu, cuda[:N], gpu[:N], npu, tensorrt")
    allowed = _DEVICE_BACKENDS.get(base)
    if name != "auto" and allowed is not None and name not in allowed:
        raise MaskrtError(f"backend {name} cannot use device {device!r}; that device is for "
                          f"{' or '.join(allowed)} (pass --backend {allowed[0]})")
    return name, dev


def label(backend: str, device: str) -> str:
    """How a concrete ``(backend, device)`` pair is written in logs and benchmark rows: ``openvino:cpu``."""
    return f"{backend}:{device}"


def has_nvidia_gpu() -> bool:
    """True when an NVIDIA GPU is visible (a device node, ``nvidia-smi``, or a Jetson's integrated GPU)."""
    return (
        Path("/dev/nvidia0").exists()
        or Path("/dev/nvhost-gpu").exists()
        or Path("/etc/nv_tegra_release").exists()
        or (shutil.which("nvidia-smi") is not None and os.environ.get("CUDA_VISIBLE_DEVICES", "0") != "-1")
    )


def ort_providers() -> list[str]:
    """ONNX Runtime's execution providers here (empty when it is not installed)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    return list(ort.get_available_providers())


def openvino_devices() -> list[str]:
    """OpenVINO's devices here (``CPU``, ``GPU.0``, ``NPU``...; empty when it is not installed)."""
    if importlib.util.find_spec("openvino") is None:
        return []
    from maskrt.runtime.backends.openvino_backend import available_devices

    return available_devices()


def availability(backend: str, device: str, model: str | Path) -> str | None:
    """``None`` when the concrete ``backend`` can run ``model`` on ``device`` here, else why not (with the fix)."""
    if backend == "triton" or is_triton_url(model):
        if backend != "triton" or not is_triton_url(model):
            return ("a triton://host:port/model URL runs with --backend triton (or auto), and only it"
                    if is_triton_url(model) else "--backend triton takes a triton://host:8001/model URL as the model")
        if importlib.util.find_spec("tritonclient") is None:
            return "tritonclient is not installed; pip install 'maskrt[triton]'"
        return None
    suffix = Path(model).suffix.lower()
    base = device.split(":")[0]
    if backend == "tensorrt":
        if suffix not in ENGINE_SUFFIXES:
            return ("native TensorRT runs .engine files; build one on this device with `maskrt export --format "
                    "engine`, or run the .onnx with --backend onnxruntime --device tensorrt")
        if importlib.util.find_spec("tensorrt") is None:
            return "tensorrt is not installed; pip install 'maskrt[trt]' (JetPack ships it on Jetson)"
        from maskrt.runtime.backends.tensorrt_backend import tensorrt_available

        return tensorrt_available()  # also catches a stubs-only `tensorrt` and a missing CUDA runtime
    if suffix in ENGINE_SUFFIXES:
        return f"{backend} runs .onnx files; pass the .onnx model or use --backend tensorrt for an engine"
    if backend == "openvino":
        devices = openvino_devices()
        if not devices:
            return "openvino is not installed; pip install 'maskrt[openvino]'"
        if base in ("cpu", "auto"):
            return None
        want = "GPU" if base.startswith("gpu") else base.upper()
        if not any(d.split(".")[0] == want for d in devices):
            return f"OpenVINO here sees {', '.join(devices)}, no {want}; install the device's driver or use --device cpu"
        return None
    providers = ort_providers()
    if not providers:
        return "onnxruntime is not installed; pip install 'maskrt[cpu]' (or 'maskrt[gpu]')"
    if base == "cpu":
        return None
    if base == "auto":
        return None  # CUDA when it can run, else CPU
    wanted = "TensorrtExecutionProvider" if base == "tensorrt" else "CUDAExecutionProvider"
    if wanted not in providers:
        return f"{wanted} not in this ONNX Runtime ({', '.join(providers)}); install onnxruntime-gpu"
    if not has_nvidia_gpu():
        return f"{wanted} is installed but no NVIDIA GPU is visible"
    return None


def _cuda_ready(model: str | Path) -> bool:
    return has_nvidia_gpu() and availability("onnxruntime", "cuda", model) is None


def resolve(model: str | Path, backend: str = "auto", device: str = "auto") -> tuple[str, str]:
    """The concrete ``(backend, device)`` that runs ``model`` here for a backend name and device.

    ``auto`` picks the fastest backend installed for the device: an engine runs on TensorRT; an
    ``.onnx`` file on an NVIDIA GPU runs on ONNX Runtime's CUDA provider (its TensorRT provider only
    when asked for with ``--device tensorrt``: it builds an engine, minutes, when the session opens),
    and on a CPU on OpenVINO when it is installed, else on ONNX Runtime. A device of ``auto`` means an
    NVIDIA GPU when one can run the model, else the CPU (for ONNX Runtime and TensorRT too; for
    OpenVINO it is OpenVINO's own ``AUTO`` device). Other devices are kept as given.

    Raises:
        MaskrtError: an unknown name, or no installed backend can run the model on the device.
    """
    name, dev = parse_backend(backend, device)
    base = dev.split(":")[0]
    if is_triton_url(model) or name == "triton":
        why = availability("triton", dev, model) if name in ("auto", "triton") else availability(name, dev, model)
        if why is not None:
            raise MaskrtError(why, path=str(model))
        return "triton", "auto"  # the server decides where the model runs
    if name == "onnxruntime" and base == "auto":
        return name, "cuda" if _cuda_ready(model) else "cpu"
    if name == "tensorrt" and base == "auto":
        return name, "cuda"
    if name != "auto":
        return name, dev
    suffix = Path(model).suffix.lower()
    if suffix in ENGINE_SUFFIXES:
        return "tensorrt", dev
    if suffix != ".onnx":
        raise MaskrtError(
            f"cannot tell the backend from the suffix {suffix!r}; use a .onnx or .engine file or pass backend=",
            path=model,
        )
    if base == "tensorrt":
        return "onnxruntime", dev
    if base == "npu":
        return "openvino", dev
    if base == "cuda" or (base in ("auto", "gpu") and _cuda_ready(model)):
        return "onnxruntime", "cuda" if base == "auto" else dev
    if base.startswith("gpu"):
        return "openvino", dev
    ov_ok = availability("openvino", "cpu", model) is None
    return ("openvino" if ov_ok else "onnxruntime"), "cpu"


def cpu_backends(model: str | Path) -> list[str]:
    """Every concrete backend that can run ``model`` on the CPU here, fastest first."""
    return [b for b in ("openvino", "onnxruntime") if availability(b, "cpu", model) is None]


def open_backend(
    path: Path | str, backend: str = "auto", device: str = "auto", threads: int | None = None, spin: bool = True
) -> Backend:
    """Open a model artifact with a backend of :data:`BACKEND_NAMES` on a device of :data:`DEVICES`.

    Args:
        path: ``.onnx`` or ``.engine`` file, or a ``triton://host:port/model`` URL.
        backend: ``auto`` (see :func:`resolve`), ``onnxruntime``, ``openvino`` or ``tensorrt`` (or an alias).
        device: ``auto``, ``cpu``, ``cuda[:N]``, ``gpu[:N]``, ``npu`` or ``tensorrt[:N]`` (ONNX Runtime's
            TensorRT provider); which of them a backend runs on is in its class.
        threads: CPU inference threads for ONNX Runtime and OpenVINO (``None``: their default).
        spin: let idle CPU workers busy-wait or stay pinned between runs (see ``OnnxRuntimeBackend``).
    """
    name, dev = resolve(path, backend, device)
    if name == "auto" or name not in _CONCRETE:  # pragma: no cover - resolve returns a concrete name
        raise MaskrtError(f"no backend for {path}", path=path)
    log.debug("%s: backend %s", path, label(name, dev))
    if name == "onnxruntime":
        from maskrt.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, device=dev, threads=threads, spin=spin)
    if name == "openvino":
        from maskrt.runtime.backends.openvino_backend import OpenVINOBackend

        return OpenVINOBackend(path, device=dev, threads=threads, spin=spin)
    if name == "triton":
        from maskrt.runtime.backends.triton_backend import TritonBackend

        return TritonBackend(path)
    from maskrt.runtime.backends.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(path, device=dev)


__all__ = [
    "BACKENDS", "BACKEND_NAMES", "DEPRECATED_ALIASES", "DEVICES", "Backend", "availability", "cpu_backends",
    "is_triton_url", "label", "open_backend", "parse_backend", "resolve",
]
