"""Build a TensorRT engine from a maskrt ONNX model, with its metadata and build environment beside it.

Works with TensorRT 10.x (JetPack 6; weakly typed by default, FP16 via ``BuilderFlag.FP16``) and
11.x (strongly typed only: the FP16/INT8 builder flags and ``platform_has_fast_fp16`` are gone, so
FP16 comes from an FP16 ONNX, ``maskrt export --half``). Differences are guarded with ``hasattr``.
An FP16 ONNX is always built strongly typed, so the FP32 islands (box geometry, NMS) stay FP32.

An INT8 ONNX (``maskrt export --int8``: Q/DQ nodes, :mod:`maskrt.export.int8`) is TensorRT's explicit
quantization. TensorRT 10 builds it weakly typed with ``BuilderFlag.INT8`` set (Q/DQ layers need it
there; ``--half`` adds FP16 for the layers left in floating point); TensorRT 11 builds it strongly
typed, where the Q/DQ nodes alone decide the INT8 layers and no precision flag exists or may be set.

The sidecar ``<engine>.json`` (:func:`maskrt.artifact.engine_sidecar`) holds the ONNX model's
``maskrt.*`` metadata plus :data:`maskrt.artifact.ENGINE_KEYS` (TensorRT version, GPU name and
compute capability), so the runtime can refuse an engine built for another GPU or TensorRT.

``tensorrt`` is imported lazily: without it (or without a GPU) :class:`MaskrtError` says so.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from maskrt.artifact import engine_sidecar
from maskrt.atomic import atomic_path, write_text
from maskrt.errors import MaskrtError

log = logging.getLogger(__name__)


@dataclass
class BuildOptions:
    """Engine build settings."""

    fp16: bool = False
    """Allow FP16 kernels for an FP32 ONNX (TensorRT 10 only; TensorRT 11 needs an FP16 ONNX)."""
    workspace_gb: float = 4.0
    timing_cache: Path | None = None
    """Timing cache to load and update; default ``<engine>.timing.cache``."""
    optimization_level: int | None = None


def require_tensorrt() -> ModuleType:
    """Import ``tensorrt`` or raise a :class:`MaskrtError` that says how to get it.

    Callers then ``import tensorrt as trt`` themselves, so mypy checks every use against the stubs.
    """
    message = (
        "building an engine needs TensorRT, which is not installed here: install it on the GPU machine "
        "(`pip install maskrt[trt]`, or JetPack's python3-libnvinfer on Jetson), or use --format onnx"
    )
    try:
        import tensorrt
    except ImportError as exc:
        raise MaskrtError(message) from exc
    if not hasattr(tensorrt, "Builder"):  # e.g. only tensorrt-stubs' .pyi files: an empty namespace package
        raise MaskrtError(message)
    return tensorrt


def tensorrt_available() -> bool:
    """Whether a real ``tensorrt`` module can be imported (not just its type stubs)."""
    try:
        require_tensorrt()
    except MaskrtError:
        return False
    return True


def trt_major() -> int:
    """Major version of the installed TensorRT."""
    import tensorrt as trt

    try:
        return int(str(trt.__version__).split(".")[0])
    except ValueError:
        return 0


def gpu_info() -> dict[str, str]:
    """Name and compute capability of GPU 0, via cuda-python or nvidia-smi; empty when neither answers."""
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError:
            cudart = None
    if cudart is not None:
        err, props = cudart.cudaGetDeviceProperties(0)
        if int(err) == 0:
            name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
            return {"gpu_name": name.strip("\x00 "), "compute_capability": f"{props.major}.{props.minor}"}
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,compute_cap", "--format=csv,noheader", "-i", "0"],
                                 capture_output=True, text=True, timeout=20, check=True).stdout.strip()
            name, cap = (s.strip() for s in out.split(",")[:2])
            return {"gpu_name": name, "compute_capability": cap}
        except (subprocess.SubprocessError, ValueError):
            pass
    return {}


def _onnx_props(onnx_path: Path) -> dict[str, str]:
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def build_engine(onnx_path: str | Path, engine_path: str | Path, opts: BuildOptions | None = None) -> dict[str, Any]:
    """Build and write ``engine_path`` from ``onnx_path``; write its sidecar JSON; return the sidecar dict.

    Raises:
        MaskrtError: TensorRT missing, no GPU, the parser rejects the model, or the build fails.
    """
    opts = opts or BuildOptions()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    if not onnx_path.is_file():
        raise MaskrtError("ONNX model not found; export it first with `maskrt export CHECKPOINT`", path=onnx_path)
    require_tensorrt()
    import tensorrt as trt

    major = trt_major()
    props = _onnx_props(onnx_path)
    onnx_fp16 = props.get("maskrt.precision") == "fp16"
    onnx_int8 = props.get("maskrt.precision") == "int8"
    strongly_typed = onnx_fp16 or major >= 11

    logger = trt.Logger(trt.Logger.WARNING)
    try:
        builder = trt.Builder(logger)
    except (RuntimeError, TypeError) as exc:
        raise MaskrtError(f"TensorRT cannot create a builder ({exc}); is there an NVIDIA GPU and driver?") from exc
    if builder is None:
        raise MaskrtError("TensorRT cannot create a builder; is there an NVIDIA GPU and driver on this machine?")
    flags = 0
    if strongly_typed and major < 11 and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise MaskrtError(f"TensorRT's ONNX parser rejected the model: {errors}; run `maskrt export --check` on it",
                          path=onnx_path)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts.workspace_gb * (1 << 30)))
    if opts.optimization_level is not None:
        config.builder_optimization_level = int(opts.optimization_level)
    int8_flag = False
    if onnx_int8 and not strongly_typed:
        if not hasattr(trt.BuilderFlag, "INT8"):
            raise MaskrtError(f"TensorRT {trt.__version__} has no INT8 builder flag; build the INT8 ONNX with "
                              "TensorRT 10 or 11", path=onnx_path)
        config.set_flag(trt.BuilderFlag.INT8)
        int8_flag = True
    fp16_flag = False
    if opts.fp16 and not strongly_typed:
        if not hasattr(trt.BuilderFlag, "FP16"):
            raise MaskrtError(f"TensorRT {trt.__version__} is strongly typed and has no FP16 flag; "
                              "export the FP16 ONNX with `maskrt export --half` and build from it")
        if hasattr(builder, "platform_has_fast_fp16") and not builder.platform_has_fast_fp16:
            log.warning("this GPU has no fast FP16; building anyway")
        config.set_flag(trt.BuilderFlag.FP16)
        fp16_flag = True

    cache_path = opts.timing_cache or Path(str(engine_path) + ".timing.cache")
    cache_bytes = cache_path.read_bytes() if cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    if not config.set_timing_cache(cache, False):
        log.warning("timing cache %s does not match this GPU/TensorRT; starting a new one", cache_path)
        config.set_timing_cache(config.create_timing_cache(b""), False)

    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise MaskrtError("TensorRT failed to build the engine (see the TensorRT log above); "
                          "try a larger --workspace or run `maskrt export --check`", path=onnx_path)
    seconds = time.perf_counter() - t0
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(bytes(memoryview(serialized)))
    with atomic_path(cache_path) as tmp:
        tmp.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))

    sidecar: dict[str, Any] = dict(props)
    if fp16_flag and not onnx_int8:
        sidecar["maskrt.precision"] = "fp16"
    sidecar.update({
        "tensorrt_version": str(trt.__version__),
        **gpu_info(),
        "strongly_typed": json.dumps(strongly_typed),
        "int8_flag": json.dumps(int8_flag),
        "onnx_file": onnx_path.name,
        "build_seconds": f"{seconds:.1f}",
    })
    write_text(engine_sidecar(engine_path), json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    log.info("built %s in %.0f s (TensorRT %s, %s)", engine_path, seconds, trt.__version__,
             sidecar.get("gpu_name", "unknown GPU"))
    return sidecar
