"""Streaming must run where torch cannot be imported: the Python API and the `maskrt run` command."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = ("torch", "torchvision", "maskrt.train", "maskrt.export")

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.startswith(BLOCKED) and (name in BLOCKED or name.startswith(tuple(b + "." for b in BLOCKED))):
                raise ImportError(f"blocked in this test: {name}")
            return None

    sys.meta_path.insert(0, Block())

    def loaded():
        return sorted(m for m in sys.modules if m.startswith(BLOCKED))
    """
)

API = BLOCKER + textwrap.dedent(
    """
    from maskrt.runtime.stream import stream
    from maskrt.runtime.stream.outputs import OutputOptions, Outputs

    s = stream(sys.argv[1], sys.argv[2], threads=1, track=True)
    outs = Outputs(OutputOptions(csv=sys.argv[3], save=sys.argv[4]), fps=s.source_fps)
    counts = []
    try:
        for r in s:
            outs.write(r)
            counts.append(r.stats["count"])
    finally:
        outs.close()
    print(json.dumps({"counts": counts, "loaded": loaded()}))
    """
)

CLI = BLOCKER + textwrap.dedent(
    """
    from maskrt.cli import main

    code = main(["run", sys.argv[1], sys.argv[2], "--csv", sys.argv[3], "--threads", "1"])
    print(json.dumps({"code": code, "loaded": loaded()}))
    """
)


def _run(script: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    path = tmp_path / "probe.py"
    path.write_text(script)
    proc = subprocess.run(
        [sys.executable, str(path), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_stream_api_runs_without_torch(
    constant_model: Path, image_folder: tuple[Path, Any], tmp_path: Path
) -> None:
    folder, seq = image_folder
    out = _run(
        API, tmp_path, str(constant_model), str(folder), str(tmp_path / "f.csv"), str(tmp_path / "v.avi")
    )
    assert out["counts"] == [2] * len(seq.frames)
    assert out["loaded"] == []
    assert len((tmp_path / "f.csv").read_text().splitlines()) == len(seq.frames) + 1


def test_maskrt_run_command_runs_without_torch(
    constant_model: Path, image_folder: tuple[Path, Any], tmp_path: Path
) -> None:
    folder, seq = image_folder
    out = _run(CLI, tmp_path, str(constant_model), str(folder), str(tmp_path / "f.csv"))
    assert out["code"] == 0 and out["loaded"] == []
    assert len((tmp_path / "f.csv").read_text().splitlines()) == len(seq.frames) + 1


def test_the_blocker_blocks(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text(BLOCKER + "import maskrt.train\n")
    proc = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode != 0 and "blocked in this test: maskrt.train" in proc.stderr
