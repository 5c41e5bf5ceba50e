"""OpenVINO backend: the same ``.onnx`` artifact on Intel/AMD CPUs, Intel GPUs and NPUs.

OpenVINO reads the ONNX file directly (no conversion step) and keeps its ``metadata_props`` in the
model's ``framework`` runtime info, so the artifact contract is read from the file itself as with
ONNX Runtime. Compiled models are cached on disk (OpenVINO's ``CACHE_DIR``), so the second start of
the same model on the same device skips most of the compilation. The cache folder is
``$MASKRT_OPENVINO_CACHE``, else ``$XDG_CACHE_HOME/maskrt/openvino`` (``~/.cache/maskrt/openvino``);
``MASKRT_OPENVINO_CACHE=off`` turns it off.

On a CPU an FP32 artifact runs in FP32: OpenVINO's default on CPUs with bfloat16 units (AVX-512 BF16,
AMX) is bf16, which is faster but moves boxes and scores outside the parity rules of the export check.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from maskrt.artifact import INPUT_NAME, KEY_PREFIX
from maskrt.errors import MaskrtError
from maskrt.runtime.backends.base import outputs_text, wanted_outputs

log = logging.getLogger(__name__)

CACHE_ENV = "MASKRT_OPENVINO_CACHE"
"""Environment variable naming the compiled-model cache folder (``off`` disables the cache)."""

OV_DEVICES = {"cpu": "CPU", "gpu": "GPU", "npu": "NPU", "auto": "AUTO"}
"""maskrt device names -> OpenVINO device names (``gpu:1`` -> ``GPU.1``)."""


def import_openvino() -> Any:
    """The ``openvino`` module, or a :class:`MaskrtError` saying how to install it."""
    try:
        import openvino as ov
    except ImportError as exc:
        raise MaskrtError("openvino is not installed; `pip install maskrt[openvino]`") from exc
    return ov


@functools.lru_cache(maxsize=1)
def core() -> Any:
    """The process's one ``openvino.Core``, kept for the life of the process.

    OpenVINO recommends one Core per application, and on Linux its CPU plugin swaps the thread's
    signal stack (``sigaltstack``) per Core and puts the previous one back when that Core goes: Cores
    released out of order leave a freed signal stack behind, and the next signal (Ctrl-C, SIGTERM)
    crashes the process. One Core that is never released avoids that.
    """
    return import_openvino().Core()


def available_devices() -> list[str]:
    """OpenVINO's devices on this machine (e.g. ``['CPU', 'GPU']``), empty when it is not installed."""
    try:
        return list(core().available_devices)
    except Exception as exc:  # noqa: BLE001  (a broken plugin install shows up as anything)
        log.debug("OpenVINO devices unreadable: %s", exc)
        return []


def default_cache_dir() -> Path | None:
    """Where compiled models are cached: ``$MASKRT_OPENVINO_CACHE`` or the user cache folder; ``None``: off."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "none", "false") else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "maskrt" / "openvino"


def ov_device(device: str) -> str:
    """OpenVINO device name for a maskrt device: ``cpu`` -> ``CPU``, ``gpu:1`` -> ``GPU.1``, ``auto`` -> ``AUTO``."""
    dev = device.strip().lower()
    base, _, index = dev.partition(":")
    if base in ("cuda", "tensorrt"):
        raise MaskrtError(
            f"OpenVINO does not run on device {device!r} (NVIDIA); use --backend onnxruntime or tensorrt there, "
            "or --device cpu, gpu (Intel graphics), npu or auto"
        )
    if base.startswith("gpu.") and not index:
        base, index = "gpu", base[4:]
    if base not in OV_DEVICES or (index and (base != "gpu" or not index.isdigit())):
        raise MaskrtError(f"unknown device {device!r} for OpenVINO; use cpu, gpu[:N], npu or auto")
    return f"GPU.{index}" if index else OV_DEVICES[base]


class OpenVINOBackend:
    """Run a ``.onnx`` maskrt artifact with OpenVINO (latency hint: one frame at a time, all cores on it).

    Args:
        path: the ``.onnx`` file.
        device: ``cpu``, ``gpu[:N]`` (Intel graphics), ``npu`` or ``auto`` (OpenVINO's AUTO device,
            which starts on the CPU and moves to a GPU once that has compiled the model).
        threads: CPU inference threads (``None``: OpenVINO's default, one per physical core).
        spin: pin the CPU inference threads to cores (OpenVINO's default for the latency hint). Turn
            it off when other work shares the cores (a second model timed in turns).
        cache_dir: compiled-model cache folder (default: :func:`default_cache_dir`; ``None`` there: off).
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        threads: int | None = None,
        spin: bool = True,
        cache_dir: str | Path | None = "default",
    ) -> None:
        ov = import_openvino()
        import openvino.properties as props
        import openvino.properties.hint as hints

        self.path = Path(path)
        self.device = ov_device(device)
        devices = list(core().available_devices)
        family = self.device.split(".")[0]
        if family != "AUTO" and not any(d == self.device or d.split(".")[0] == self.device for d in devices):
            raise MaskrtError(
                f"OpenVINO here sees {', '.join(devices) or 'no device'}, not {self.device}; install its driver "
                "(Intel GPU/NPU) or use --device cpu",
                path=self.path,
            )
        try:  # the ONNX reader itself: core.read_model would try every format's reader on a broken file
            onnx_frontend = ov.frontend.FrontEndManager().load_by_framework("onnx")
            self.model = onnx_frontend.convert(onnx_frontend.load(str(self.path)))
        except Exception as exc:  # openvino raises GeneralFailure/RuntimeError with a C++ trace
            raise MaskrtError(
                f"OpenVINO cannot load this model ({_first_line(exc)}); re-export it with `maskrt export`",
                path=self.path,
            ) from exc
        self.props = _metadata(self.model)
        self._output_names = wanted_outputs(self.props, self.path)
        self.input_shape = self._check_io()
        cache = default_cache_dir() if cache_dir == "default" else (Path(cache_dir) if cache_dir else None)
        self.cache_dir = _usable_cache(cache)
        cpu: dict[Any, Any] = {}
        # FP32 models, and an INT8 model's float parts (box decoding, NMS inputs, mask logits): f32, not the
        # bf16 OpenVINO picks on CPUs that have it (it fails the parity rules); quantized layers stay INT8
        if self.props.get(KEY_PREFIX + "precision", "fp32") in ("fp32", "int8"):
            cpu[hints.inference_precision] = ov.Type.f32
        if threads is not None:
            cpu[props.inference_num_threads] = int(threads)
        if not spin:
            cpu[hints.enable_cpu_pinning] = False
        config: dict[Any, Any] = {hints.performance_mode: hints.PerformanceMode.LATENCY}
        if self.cache_dir is not None:  # per model, not on the shared Core
            config[props.cache_dir] = str(self.cache_dir)
        if family == "CPU":
            config.update(cpu)
        elif family == "AUTO" and cpu:
            config[props.device.properties] = {"CPU": cpu}
        try:
            self.compiled = core().compile_model(self.model, self.device, config)
        except Exception as exc:  # a device that cannot take the model, a driver error...
            raise MaskrtError(
                f"OpenVINO cannot compile this model for {self.device} ({_first_line(exc)}); try --device cpu "
                "or --backend onnxruntime",
                path=self.path,
            ) from exc
        self.request = self.compiled.create_infer_request()
        used = ",".join(self.compiled.get_property(props.execution_devices))
        self.name = f"openvino:{used or self.device}"
        log.info("%s: OpenVINO %s on %s (cache %s)", self.path.name, ov.__version__, used, self.cache_dir or "off")

    def _check_io(self) -> tuple[int, int, int, int]:
        inputs = self.model.inputs
        outputs = {name for o in self.model.outputs for name in o.get_names()}
        missing = [n for n in self._output_names if n not in outputs]
        in_names = [i.get_any_name() for i in inputs]
        if len(inputs) != 1 or INPUT_NAME not in inputs[0].get_names() or missing:
            raise MaskrtError(
                f"model inputs {in_names} / outputs {sorted(outputs)} do not follow the maskrt contract (input "
                f"{INPUT_NAME!r}, outputs {outputs_text(self._output_names)}); re-export with `maskrt export`",
                path=self.path,
            )
        shape = inputs[0].get_partial_shape()
        if shape.is_dynamic or len(shape) != 4 or shape[3].get_length() != 3:
            raise MaskrtError(
                f"model input shape {shape} is not a static [B, H, W, 3]; re-export with `maskrt export`",
                path=self.path,
            )
        b, h, w, c = (int(d.get_length()) for d in shape)
        return (b, h, w, c)

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on uint8 ``images`` of :attr:`input_shape`; return the outputs by name (own copies)."""
        result = self.request.infer({INPUT_NAME: images})
        return {name: np.asarray(result[name]) for name in self._output_names}

    def close(self) -> None:
        """Drop the compiled model and its request."""
        for attr in ("request", "compiled", "model"):
            self.__dict__.pop(attr, None)


def _metadata(model: Any) -> dict[str, str]:
    """The ONNX ``metadata_props`` that OpenVINO's ONNX reader keeps under ``framework`` (empty if none)."""
    if not model.has_rt_info("framework"):
        return {}
    info = model.get_rt_info("framework").astype(dict)
    return {str(k): str(v.astype(str) if hasattr(v, "astype") else v) for k, v in info.items()}


def _usable_cache(folder: Path | None) -> Path | None:
    """``folder`` once it exists and is writable, else ``None`` (the model then compiles on every start)."""
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("OpenVINO model cache %s unusable (%s); compiling without it (set %s)", folder, exc, CACHE_ENV)
        return None
    if not os.access(folder, os.W_OK):
        log.warning("OpenVINO model cache %s is not writable; compiling without it (set %s)", folder, CACHE_ENV)
        return None
    return folder


def _first_line(exc: BaseException) -> str:
    """The useful line of an OpenVINO error (its messages open with a C++ source location)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception from ", "Check ", "FrontEnd API failed"))]
    return (useful or lines or [type(exc).__name__])[0][:160]
