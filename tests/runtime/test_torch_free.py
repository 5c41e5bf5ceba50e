"""The runtime must import and segment with torch made unimportable (the lab-instrument rule)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision"):
                raise ImportError(f"torch is blocked in this test: {name}")
            return None

    sys.meta_path.insert(0, BlockTorch())
    import numpy as np
    from maskrt.runtime import Segmenter, draw_overlay, frame_stats, measure_instances

    seg = Segmenter(sys.argv[1], device="cpu", threads=1)
    frame = np.full((200, 300, 3), 90, np.uint8)
    inst = seg(frame)
    rows = measure_instances(inst, um_per_px=2.0)
    stats = frame_stats(inst, inst.frame_hw)
    draw_overlay(frame, inst, status="ok")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision")
                    or m.startswith(("maskrt.train", "maskrt.export")))
    print(json.dumps({"n": len(inst), "area": rows[0]["area_px"], "count": stats["count"], "loaded": loaded}))
    """
)


def test_runtime_segments_with_torch_blocked(make_model, tmp_path: Path) -> None:
    model = make_model(dets=[((10, 10, 50, 50), 0.9, 1)])
    script = tmp_path / "torch_free.py"
    script.write_text(SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(model)], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["n"] == 1
    assert result["count"] == 1
    assert result["area"] > 0
    assert result["loaded"] == []


def test_blocker_really_blocks_torch(tmp_path: Path) -> None:
    """Guard against a blocker that blocks nothing: the same finder must make `import torch` fail."""
    script = tmp_path / "probe.py"
    script.write_text(SCRIPT.split("import numpy")[0] + "import torch\n")
    proc = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "torch is blocked" in proc.stderr


def test_predict_cli_runs_with_torch_blocked(make_model, tmp_path: Path) -> None:
    """The whole CLI start-up (every command module is imported) and `maskrt predict` need no torch."""
    import cv2
    import numpy as np

    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.full((120, 160, 3), 90, np.uint8))
    script = tmp_path / "cli_torch_free.py"
    script.write_text(
        SCRIPT.split("import numpy")[0]
        + "from maskrt.cli import main\n"
        + "sys.exit(main(['predict', sys.argv[1], sys.argv[2], '-o', sys.argv[3], '--csv', '--threads', '1']))\n"
    )
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(script), str(make_model()), str(image), str(out)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1 image(s), 2 instance(s)" in proc.stdout
    assert len((out / "instances.csv").read_text().strip().splitlines()) == 3  # header + 2 instances
