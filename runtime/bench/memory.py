"""Peak host memory (RSS) of this process and device memory on NVIDIA GPUs, without psutil.

The peak RSS is reset before each benchmark row (Linux ``/proc/self/clear_refs``) so that every
row reports its own peak, not the largest since the process started. Where the reset is not
possible the peak is the process-wide one and :func:`reset_peak_rss` returns ``False``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

log = logging.getLogger(__name__)


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS; ``False`` where the OS does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MiB (since the last reset where one was possible)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024.0
    try:
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    except (ImportError, OSError):
        return None
    return maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0


def current_rss_mb() -> float | None:
    """Current resident memory of this process in MiB."""
    kb = _status_kb("VmRSS")
    return kb / 1024.0 if kb is not None else None


def gpu_memory_mb(pid: int | None = None) -> float | None:
    """GPU memory used by process ``pid`` (default: this one) in MiB, from ``nvidia-smi``; ``None`` without one.

    On Jetson (unified memory, no per-process query in ``nvidia-smi``) this returns ``None``; the host
    RSS then includes the model's memory.
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    pid = os.getpid() if pid is None else pid
    try:
        out = subprocess.run(
            [exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    total = 0.0
    found = False
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            try:
                total += float(parts[1])
                found = True
            except ValueError:
                continue
    return total if found else None
