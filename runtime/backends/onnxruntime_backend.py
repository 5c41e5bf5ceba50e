"""ONNX Runtime backend: CPU, CUDA or TensorRT execution providers behind the :class:`Backend` interface."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from maskrt.artifact import INPUT_NAME
from maskrt.errors import MaskrtError
from maskrt.runtime.backends.base import outputs_text, wanted_outputs

log = logging.getLogger(__name__)

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def _import_ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise MaskrtError(
            "onnxruntime is not installed; `pip install maskrt[cpu]` (or maskrt[gpu] for CUDA)"
        ) from exc
    return ort


def choose_providers(device: str, available: list[str], model_dir: Path) -> list[Any]:
    """Execution providers for ``device`` (auto|cpu|cuda|gpu|tensorrt), best first, always ending on CPU.

    ``auto`` takes CUDA when available, else CPU. TensorRT is used only when asked for, because
    ONNX Runtime builds an engine when the session opens (minutes the first time); its engines are
    cached in ``<model folder>/.trt-cache``.
    """
    dev = device.lower().split(":")[0]
    device_id = int(device.split(":")[1]) if ":" in device else 0
    dev = "cuda" if dev == "gpu" else dev  # the NVIDIA GPU, for ONNX Runtime
    if dev not in ("auto", *PROVIDERS):
        raise MaskrtError(f"unknown device {device!r} for ONNX Runtime; use auto, cpu, cuda[:N] or tensorrt[:N] "
                          "(an NPU or Intel GPU runs with --backend openvino)")
    if dev == "auto":
        dev = "cuda" if PROVIDERS["cuda"] in available else "cpu"
    if dev == "cpu":
        return ["CPUExecutionProvider"]
    name = PROVIDERS[dev]
    if name not in available:
        raise MaskrtError(
            f"ONNX Runtime here offers {', '.join(available)}, not {name}; install onnxruntime-gpu "
            "(`pip install maskrt[gpu]`) or use --device cpu"
        )
    providers: list[Any] = []
    if dev == "tensorrt":
        cache = model_dir / ".trt-cache"
        providers.append(
            (name, {"device_id": device_id, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)})
        )
        if PROVIDERS["cuda"] in available:
            providers.append((PROVIDERS["cuda"], {"device_id": device_id}))
    else:
        providers.append((name, {"device_id": device_id}))
    providers.append("CPUExecutionProvider")
    return providers


class OnnxRuntimeBackend:
    """Run a ``.onnx`` maskrt artifact with ONNX Runtime (graph optimisation on).

    Args:
        path: the ``.onnx`` file.
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``tensorrt[:N]`` (the execution provider).
        threads: intra-op CPU threads (``None``: ONNX Runtime's default, one per core).
        spin: let idle worker threads busy-wait for the next run (ONNX Runtime's default: lowest latency
            when this process owns the cores). Turn it off when other work shares the cores between
            runs (a second model, a PyTorch baseline timed in turns): spinning workers slow it down.
    """

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None, spin: bool = True) -> None:
        ort = _import_ort()
        self.path = Path(path)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        if not spin:
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        providers = choose_providers(device, list(ort.get_available_providers()), self.path.parent)
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise MaskrtError(
                f"ONNX Runtime cannot load this model ({str(exc).splitlines()[0][:160]}); re-export it with "
                "`maskrt export`",
                path=self.path,
            ) from exc
        used = self.session.get_providers()
        self.name = f"onnxruntime:{used[0]}"
        log.info("%s: ONNX Runtime %s on %s", self.path.name, ort.__version__, used[0])
        self.props: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        self._output_names = list(wanted_outputs(self.props, self.path))
        self.input_shape = self._check_io()

    def _check_io(self) -> tuple[int, int, int, int]:
        inputs = self.session.get_inputs()
        outputs = {o.name for o in self.session.get_outputs()}
        missing = [n for n in self._output_names if n not in outputs]
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or missing:
            raise MaskrtError(
                f"model inputs {[i.name for i in inputs]} / outputs {sorted(outputs)} do not follow the maskrt "
                f"contract (input {INPUT_NAME!r}, outputs {outputs_text(self._output_names)}); re-export with "
                "`maskrt export`",
                path=self.path,
            )
        shape = inputs[0].shape
        if len(shape) != 4 or not all(isinstance(v, int) for v in shape) or shape[3] != 3:
            raise MaskrtError(
                f"model input shape {shape} is not a static [B, H, W, 3]; re-export with `maskrt export`",
                path=self.path,
            )
        return (int(shape[0]), int(shape[1]), int(shape[2]), int(shape[3]))

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on uint8 ``images`` of :attr:`input_shape`; return the outputs by name."""
        values = self.session.run(self._output_names, {INPUT_NAME: images})
        return dict(zip(self._output_names, values))

    def close(self) -> None:
        """Drop the session."""
        self.__dict__.pop("session", None)
