"""Describe the machine a benchmark ran on: CPU, cores used, GPU and driver, Jetson mode, library versions.

Everything here is best effort and torch-free: a missing tool or library becomes ``None``, never an error.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any


def _run(cmd: list[str], timeout: float = 10.0) -> str | None:
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        res = subprocess.run([exe, *cmd[1:]], check=False, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def _cpuinfo(*keys: str) -> str | None:
    """The first ``/proc/cpuinfo`` value under one of ``keys`` (lower-case names), or None (no such file or key)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.split(":", 1)[0].strip().lower() in keys:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), or what ``platform`` knows."""
    return _cpuinfo("model name", "hardware", "cpu model") or platform.processor() or platform.machine()


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags (``/proc/cpuinfo``, lower case), or None where the system does not list them."""
    flags = _cpuinfo("flags", "features")
    return None if flags is None else set(flags.lower().split())


def int8_dot_saturates() -> bool | None:
    """Whether this CPU's INT8 kernels (ONNX Runtime, OpenVINO) can saturate on full-range 8-bit weights.

    An x86 CPU without VNNI (AVX2 only, or AVX-512 before Cascade Lake) multiplies uint8 activations by int8
    weights with ``vpmaddubsw``, whose pairwise sums are clamped to int16: 2 x 255 x 127 = 64770 overflows,
    detections and scores shift (see :mod:`maskrt.export.int8`, whose default 7-bit weights fit). VNNI
    (``avx512_vnni``, ``avx_vnni``) sums in int32, and ARM's dot products do not saturate. True / False where
    that is known, None where it is not (another OS, whose flags only numpy's baseline list describes).
    """
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False
    flags = cpu_flags()
    if flags is not None:
        return not any("vnni" in f for f in flags)
    try:  # numpy knows AVX-512 VNNI but not AVX-VNNI (Alder Lake and later): only a yes is certain
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:
        return None
    return False if features.get("AVX512VNNI") else None


def cpu_count_available() -> int:
    """Cores this process may run on (its affinity mask), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def gpus() -> list[dict[str, str]]:
    """NVIDIA GPUs from ``nvidia-smi`` (name, driver, memory); empty without a GPU or driver."""
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                "--format=csv,noheader"])
    if not out:
        return []
    rows = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) >= 3:
            rows.append({"name": parts[0], "driver": parts[1], "memory": parts[2],
                         "compute_capability": parts[3] if len(parts) > 3 else ""})
    return rows


def jetson() -> dict[str, str] | None:
    """Jetson board model, L4T release and power mode (``nvpmodel -q``), or ``None`` elsewhere."""
    release = Path("/etc/nv_tegra_release")
    model_file = Path("/proc/device-tree/model")
    if not release.exists() and not model_file.exists():
        return None
    info: dict[str, str] = {}
    try:
        info["model"] = model_file.read_text(errors="replace").strip("\x00\n ")
    except OSError:
        pass
    try:
        info["l4t"] = release.read_text(errors="replace").splitlines()[0].strip("# ")
    except (OSError, IndexError):
        pass
    mode = _run(["nvpmodel", "-q"])
    if mode:
        info["power_mode"] = " ".join(mode.split())
    return info


def package_version(*names: str) -> str | None:
    """Installed version of the first of ``names`` that is installed (e.g. onnxruntime-gpu or onnxruntime)."""
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def versions() -> dict[str, str | None]:
    """Versions of the libraries whose speed a benchmark depends on."""
    import cv2
    import numpy as np

    from maskrt import __version__

    return {
        "maskrt": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "onnxruntime": package_version("onnxruntime-gpu", "onnxruntime", "onnxruntime-directml"),
        "openvino": package_version("openvino"),
        "tensorrt": package_version("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt_libs")
        or _module_version("tensorrt"),
        "cuda_python": package_version("cuda-python", "cuda-bindings"),
        "torch": package_version("torch"),  # read from metadata: never imported here
        "torchvision": package_version("torchvision"),
    }


def _module_version(name: str) -> str | None:
    """Version of a module installed outside pip (JetPack installs TensorRT from apt), without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        return None
    for parent in Path(spec.origin).parents[:2]:
        for dist in parent.glob(f"{name}*.dist-info"):
            return dist.name.split("-")[1]
        for egg in parent.glob(f"{name}*.egg-info"):
            return egg.name.split("-")[1]
    return "installed"


def system_info(threads: int | None = None) -> dict[str, Any]:
    """Everything a benchmark header shows: host, CPU and cores used, GPUs, Jetson, OS and versions."""
    avail = cpu_count_available()
    return {
        "host": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_cores_available": avail,
        "cpu_threads_used": threads if threads else avail,
        "cpu_int8_saturates": int8_dot_saturates(),
        "gpus": gpus(),
        "jetson": jetson(),
        "versions": versions(),
        "python_executable": sys.executable,
    }


def describe(info: dict[str, Any]) -> str:
    """One line for a table caption: CPU and cores, GPU and driver, key versions."""
    vnni = ", x86 without VNNI" if info.get("cpu_int8_saturates") else ""  # INT8 speed and accuracy differ there
    parts = [f"{info['cpu']} ({info['cpu_threads_used']} of {info['cpu_cores_available']} cores{vnni})"]
    for g in info.get("gpus") or []:
        parts.append(f"{g['name']} (driver {g['driver']})")
    if info.get("jetson"):
        j = info["jetson"]
        parts.append(f"{j.get('model', 'Jetson')} {j.get('power_mode', '')}".strip())
    v = info.get("versions", {})
    keys = ("maskrt", "onnxruntime", "openvino", "tensorrt", "opencv", "numpy", "python")
    libs = [f"{k} {v[k]}" for k in keys if v.get(k)]
    if v.get("torch"):
        libs.append(f"torch {v['torch']}")
    return "; ".join(parts) + " | " + ", ".join(libs)
