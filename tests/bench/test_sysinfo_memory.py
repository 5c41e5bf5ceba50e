"""System description and memory measurements."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from maskrt.runtime.bench import memory, sysinfo
from maskrt.runtime.bench.sysinfo import describe, system_info


def test_system_info_names_cpu_cores_and_versions() -> None:
    info = system_info(threads=1)
    assert info["cpu"] and info["cpu_cores_available"] >= 1 and info["cpu_threads_used"] == 1
    v = info["versions"]
    assert v["numpy"] == np.__version__ and v["python"].startswith(f"{sys.version_info[0]}.")
    line = describe(info)
    assert "(1 of " in line and f"numpy {np.__version__}" in line and "maskrt" in line


@pytest.mark.parametrize(("machine", "flags", "saturates"), [
    ("x86_64", {"avx2", "fma"}, True),  # AVX2 only: vpmaddubsw's int16 sums
    ("x86_64", {"avx2", "avx512f", "avx512_vnni"}, False),
    ("x86_64", {"avx2", "avx_vnni"}, False),  # Alder Lake and later
    ("aarch64", {"asimd", "asimddp"}, False),  # ARM's dot products sum in int32
])
def test_int8_saturation_follows_the_cpu_flags(monkeypatch, machine, flags, saturates) -> None:
    monkeypatch.setattr(sysinfo.platform, "machine", lambda: machine)
    monkeypatch.setattr(sysinfo, "cpu_flags", lambda: flags)
    assert sysinfo.int8_dot_saturates() is saturates
    info = {"cpu": "Test CPU", "cpu_threads_used": 2, "cpu_cores_available": 2, "versions": {},
            "cpu_int8_saturates": saturates}
    assert ("without VNNI" in describe(info)) == saturates


def test_cpu_flags_come_from_proc_cpuinfo(monkeypatch, tmp_path) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Test\nflags\t\t: fpu SSE2 avx2\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda f, *a, **k: real_open(fake if f == "/proc/cpuinfo" else f, *a, **k))
    assert sysinfo.cpu_flags() == {"fpu", "sse2", "avx2"}


def test_peak_rss_is_reset_per_row() -> None:
    # in a fresh process: other tests' threads and allocator caches would blur a 40 MiB difference
    code = (
        "import json, numpy as np\n"
        "from maskrt.runtime.bench import memory\n"
        "ok = memory.reset_peak_rss(); before = memory.peak_rss_mb()\n"
        "block = np.ones(40 * 2**20 // 8); peak = memory.peak_rss_mb()\n"
        "del block; memory.reset_peak_rss(); after = memory.peak_rss_mb()\n"
        "print(json.dumps([ok, before, peak, after]))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    ok, before, peak, after = json.loads(res.stdout.strip().splitlines()[-1])
    if not ok:
        pytest.skip("this OS cannot reset the peak RSS (/proc/self/clear_refs)")
    assert peak >= before + 35  # the 40 MiB block counts while it lives
    assert after < peak - 35  # and no longer after the reset


def test_no_gpu_memory_without_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory.shutil, "which", lambda name: None)
    assert memory.gpu_memory_mb() is None
