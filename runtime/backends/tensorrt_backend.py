"""Native TensorRT backend for ``.engine`` files: tensorrt + cuda-python, no torch, no pycuda.

Device buffers and pinned host buffers are allocated once per tensor when the engine loads; each
frame is one host->device copy, ``execute_async_v3`` on one CUDA stream, and the device->host copies
of the outputs. Tensors are bound by name (``get_tensor_name`` / ``set_tensor_address``), never by
binding index.

An engine only runs on the GPU architecture and TensorRT version it was built with. The exporter
writes a sidecar JSON next to it (:func:`maskrt.artifact.engine_sidecar`): one flat object with the
ONNX model's ``maskrt.*`` props and the build environment (:data:`maskrt.artifact.ENGINE_KEYS`:
``tensorrt_version``, ``gpu_name``, ``compute_capability``). Engines from another GPU architecture or
TensorRT version are refused with a message to rebuild them on this device.
"""

from __future__ import annotations

import ctypes
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from maskrt.artifact import INPUT_NAME, engine_sidecar, sidecar_props
from maskrt.errors import MaskrtError
from maskrt.runtime.backends.base import outputs_text, wanted_outputs

if TYPE_CHECKING:
    import tensorrt as trt

log = logging.getLogger(__name__)


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or a :class:`MaskrtError` saying how to install it.

    A type-stub-only install (``tensorrt-stubs``) makes ``import tensorrt`` succeed with an empty
    namespace package, so the check looks for ``tensorrt.Runtime``.
    """
    try:
        import tensorrt as trt_mod
    except ImportError as exc:
        raise MaskrtError("TensorRT is not installed; `pip install maskrt[trt]` on a machine with an NVIDIA GPU") from exc
    if not hasattr(trt_mod, "Runtime"):
        raise MaskrtError("the `tensorrt` package here has no runtime (stubs only?); `pip install tensorrt`")
    return trt_mod


def import_cudart() -> Any:
    """``cuda.bindings.runtime`` (cuda-python >= 12.6), or the older ``cuda.cudart`` location."""
    try:
        from cuda.bindings import runtime as cudart  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[import-untyped, import-not-found, attr-defined, no-redef, unused-ignore]
        except ImportError as exc:
            raise MaskrtError("cuda-python is not installed; `pip install maskrt[trt]`") from exc
    return cudart


def tensorrt_available() -> str | None:
    """``None`` when the TensorRT backend can run here, else the reason it cannot (for skips and logs)."""
    try:
        import_tensorrt()
        cudart = import_cudart()
        err, count = cudart.cudaGetDeviceCount()
    except MaskrtError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001  (a broken CUDA install shows up as anything)
        return f"CUDA runtime unusable: {exc}"
    if int(err) != 0 or count < 1:
        return "no CUDA GPU visible"
    return None


class _Cuda:
    """Thin error-checked wrapper over the cuda-python runtime calls this backend needs."""

    def __init__(self) -> None:
        self.rt = import_cudart()

    def call(self, result: Any, what: str) -> Any:
        """Unpack ``(err, *values)`` from a cuda-python call, raising on an error code."""
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, text = self.rt.cudaGetErrorString(err)
            name = text.decode() if isinstance(text, bytes) else str(text)
            raise MaskrtError(f"CUDA error in {what}: {name}; check the GPU and driver (nvidia-smi)")
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else tuple(rest)


def read_sidecar(path: Path) -> dict[str, Any]:
    """The engine's sidecar JSON (metadata and build environment), or a :class:`MaskrtError`."""
    side = engine_sidecar(path)
    if not side.is_file():
        raise MaskrtError(
            f"no metadata file {side.name} beside the engine; build engines with `maskrt export CHECKPOINT --format engine` "
            "(it writes both)",
            path=path,
        )
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MaskrtError(f"unreadable engine metadata ({exc}); rebuild the engine with `maskrt export CHECKPOINT --format engine`",
                          path=side) from exc
    if not isinstance(data, dict):
        raise MaskrtError("engine metadata is not a JSON object; rebuild the engine", path=side)
    return data


def check_build_env(data: dict[str, Any], gpu_name: str, capability: str, trt_version: str, path: Path) -> None:
    """Refuse an engine built for another GPU architecture or TensorRT version; warn on another GPU model."""
    built_cc = data.get("compute_capability")
    if isinstance(built_cc, (list, tuple)):
        built_cc = ".".join(str(v) for v in built_cc)
    built_trt = str(data.get("tensorrt_version", data.get("tensorrt", "")))
    built_gpu = str(data.get("gpu_name", data.get("gpu", "")))
    if built_cc is not None and str(built_cc) != capability:
        raise MaskrtError(
            f"engine was built for compute capability {built_cc} ({built_gpu or 'unknown GPU'}), this GPU is "
            f"{gpu_name} ({capability}); rebuild it on this device with `maskrt export CHECKPOINT --format engine`",
            path=path,
        )
    if built_trt and built_trt.split(".")[:3] != trt_version.split(".")[:3]:
        raise MaskrtError(
            f"engine was built with TensorRT {built_trt}, this is TensorRT {trt_version}; rebuild it on this "
            "device with `maskrt export CHECKPOINT --format engine`",
            path=path,
        )
    if built_gpu and built_gpu != gpu_name:
        log.warning("%s: engine built on %s, running on %s (same architecture)", path.name, built_gpu, gpu_name)


class TensorRTBackend:
    """Run a serialized TensorRT engine that follows the maskrt artifact contract.

    Args:
        path: the ``.engine`` file (its sidecar ``.engine.json`` must sit beside it).
        device: ``auto`` (GPU 0) or ``cuda:N``.
    """

    def __init__(self, path: str | Path, device: str = "auto") -> None:
        self.path = Path(path)
        self._closed = True
        trt_mod = import_tensorrt()
        self.cuda = _Cuda()
        rt = self.cuda.rt
        dev = device.lower()
        if dev not in ("auto", "cuda", "gpu") and not dev.startswith("cuda:"):
            raise MaskrtError(f"unknown device {device!r} for TensorRT; use auto or cuda:N")
        self.device_id = int(dev.split(":")[1]) if ":" in dev else 0
        self.cuda.call(rt.cudaSetDevice(self.device_id), "cudaSetDevice")
        prop = self.cuda.call(rt.cudaGetDeviceProperties(self.device_id), "cudaGetDeviceProperties")
        gpu_name = prop.name.decode(errors="replace").strip("\x00") if isinstance(prop.name, bytes) else str(prop.name)
        capability = f"{prop.major}.{prop.minor}"
        data = read_sidecar(self.path)
        check_build_env(data, gpu_name, capability, str(trt_mod.__version__), self.path)
        self.props = sidecar_props(data)  # decoded and checked by ArtifactMeta.from_props (the Segmenter)

        self._logger = trt_mod.Logger(trt_mod.Logger.WARNING)
        self._runtime = trt_mod.Runtime(self._logger)
        engine: trt.ICudaEngine | None = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise MaskrtError(
                f"TensorRT {trt_mod.__version__} cannot deserialize this engine; rebuild it on this device with "
                "`maskrt export CHECKPOINT --format engine`",
                path=self.path,
            )
        self.engine: trt.ICudaEngine = engine
        context = engine.create_execution_context()
        if context is None:
            raise MaskrtError("TensorRT could not create an execution context (GPU memory?)", path=self.path)
        self.context: trt.IExecutionContext = context
        self.stream = self.cuda.call(rt.cudaStreamCreate(), "cudaStreamCreate")
        self._closed = False
        self.host: dict[str, np.ndarray] = {}
        self._host_ptr: dict[str, int] = {}
        self._dev_ptr: dict[str, int] = {}
        self._nbytes: dict[str, int] = {}
        self.outputs: list[str] = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dims = engine.get_tensor_shape(name)
            shape = tuple(int(dims[k]) for k in range(len(dims)))
            if any(v < 0 for v in shape):
                raise MaskrtError(f"tensor {name} has a dynamic shape {shape}; export a static engine", path=self.path)
            dtype = np.dtype(trt_mod.nptype(engine.get_tensor_dtype(name)))
            self._alloc(name, shape, dtype)
            if engine.get_tensor_mode(name) == trt_mod.TensorIOMode.OUTPUT:
                self.outputs.append(name)
            elif name != INPUT_NAME:
                raise MaskrtError(f"engine input {name!r} is not {INPUT_NAME!r}; rebuild it with maskrt", path=self.path)
        wanted = wanted_outputs(self.props, self.path)
        missing = [n for n in wanted if n not in self.outputs]
        if INPUT_NAME not in self.host or missing:
            raise MaskrtError(
                f"engine tensors {sorted(self.host)} do not follow the maskrt contract (missing "
                f"{outputs_text(missing) if missing else INPUT_NAME}); rebuild it with `maskrt export CHECKPOINT --format engine`",
                path=self.path,
            )
        # copied back per frame: the contract's outputs (any other output stays bound but is not read)
        self.fetch = [n for n in self.outputs if n in wanted]
        in_shape = self.host[INPUT_NAME].shape
        self.input_shape = (int(in_shape[0]), int(in_shape[1]), int(in_shape[2]), int(in_shape[3]))
        self.name = f"tensorrt:{trt_mod.__version__}:{gpu_name}"
        log.info("%s: TensorRT %s on %s (cc %s)", self.path.name, trt_mod.__version__, gpu_name, capability)

    def _alloc(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        """Pinned host buffer viewed as a numpy array, and a device buffer bound to the context by name."""
        rt = self.cuda.rt
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        host_ptr = int(self.cuda.call(rt.cudaMallocHost(nbytes), "cudaMallocHost"))
        self._host_ptr[name] = host_ptr
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(host_ptr))
        self.host[name] = raw[: int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)
        dev_ptr = int(self.cuda.call(rt.cudaMalloc(nbytes), "cudaMalloc"))
        self._dev_ptr[name] = dev_ptr
        self._nbytes[name] = nbytes
        if not self.context.set_tensor_address(name, dev_ptr):
            raise MaskrtError(f"TensorRT refused the address of tensor {name}", path=self.path)

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Copy ``images`` in, run the engine on the stream, copy the outputs out (host copies returned)."""
        rt = self.cuda.rt
        h2d = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        np.copyto(self.host[INPUT_NAME], images, casting="no")
        self.cuda.call(
            rt.cudaMemcpyAsync(self._dev_ptr[INPUT_NAME], self._host_ptr[INPUT_NAME], self._nbytes[INPUT_NAME], h2d,
                               self.stream),
            "cudaMemcpyAsync",
        )
        if not self.context.execute_async_v3(int(self.stream)):
            raise MaskrtError("TensorRT execution failed (see the TensorRT log above)", path=self.path)
        for name in self.fetch:
            self.cuda.call(
                rt.cudaMemcpyAsync(self._host_ptr[name], self._dev_ptr[name], self._nbytes[name], d2h, self.stream),
                "cudaMemcpyAsync",
            )
        self.cuda.call(rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")
        # copies: the pinned buffers are overwritten by the next frame while this one is still in use
        return {name: self.host[name].copy() for name in self.fetch}

    def close(self) -> None:
        """Free device and pinned buffers and the stream (idempotent)."""
        if self._closed:
            return
        self._closed = True
        rt = self.cuda.rt
        self.host.clear()
        for ptr in self._dev_ptr.values():
            rt.cudaFree(ptr)
        for ptr in self._host_ptr.values():
            rt.cudaFreeHost(ptr)
        self._dev_ptr.clear()
        self._host_ptr.clear()
        rt.cudaStreamDestroy(self.stream)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception as exc:  # noqa: BLE001  (interpreter shutdown: the CUDA module may be gone)
            log.debug("closing %s at exit: %s", self.path.name, exc)
