"""System description and memory measurements."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from maskrt.runtime.bench import memory
from maskrt.runtime.bench.sysinfo import describe, system_info


def test_system_info_names_cpu_cores_and_versions() -> None:
    info = system_info(threads=1)
    assert info["cpu"] and info["cpu_cores_available"] >= 1 and info["cpu_threads_used"] == 1
    v = info["versions"]
    assert v["numpy"] == np.__version__ and v["python"].startswith(f"{sys.version_info[0]}.")
    line = describe(info)
    assert "(1 of " in line and f"numpy {np.__version__}" in line and "maskrt" in line


def test_peak_rss_is_reset_per_row() -> None:
    if not memory.reset_peak_rss():
        pytest.skip("this OS cannot reset the peak RSS (/proc/self/clear_refs)")
    before = memory.peak_rss_mb()
    block = np.ones(40 * 2**20 // 8)  # 40 MiB touched
    peak = memory.peak_rss_mb()
    assert before is not None and peak is not None and peak >= before + 30
    del block
    memory.reset_peak_rss()
    after = memory.peak_rss_mb()
    assert after is not None and after < peak - 30


def test_no_gpu_memory_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory.shutil, "which", lambda name: None)
    assert memory.gpu_memory_mb() is None
