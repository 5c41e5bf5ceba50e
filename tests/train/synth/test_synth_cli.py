"""`maskrt synth` on the command line, and the promise that synth works without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from maskrt.cli import main


def test_cli_writes_a_dataset(tmp_path: Path, capsys) -> None:
    code = main(["synth", str(tmp_path / "ds"), "--images", "3", "--size", "64", "--scene", "taylor", "--seed", "2"])
    assert code == 0
    raw = json.loads((tmp_path / "ds" / "annotations.json").read_text())
    assert len(raw["images"]) == 3 and raw["info"]["scene"] == "taylor" and raw["info"]["seed"] == 2
    assert "3 images" in capsys.readouterr().out


def test_cli_writes_a_video_and_frames(tmp_path: Path) -> None:
    code = main(["synth", "--video", str(tmp_path / "v.mp4"), "--frames", "4", "--size", "64", "--fps", "10",
                 "--frames-dir", str(tmp_path / "f")])
    assert code == 0
    assert (tmp_path / "v.mp4").stat().st_size > 0
    assert len(json.loads((tmp_path / "v.json").read_text())["frames"]) == 4
    assert len(list((tmp_path / "f").glob("*.png"))) == 4


def test_cli_user_errors_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    assert main(["synth", str(tmp_path), "--scene", "lava"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown scene" in err and "boiling-side" in err and len(err.splitlines()) == 1
    assert main(["synth"]) == 2
    assert main(["synth", str(tmp_path), "--video", str(tmp_path / "v.mp4")]) == 2


def test_synth_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from maskrt.train.synth import generate_dataset, render_video\n"
        f"generate_dataset(r'{tmp_path / 'd'}', images=2, size=64)\n"
        f"render_video(r'{tmp_path / 'v.mp4'}', frames=2, size=64)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
