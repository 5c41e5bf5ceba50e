"""One run of `maskrt run` with a real exported Mask R-CNN (random-weight ``lite``): the plumbing end to end.

Slow (the export takes ~15 s on a shared core): run with ``pytest -m slow tests/stream``. The default run
covers the same runtime path (ONNX Runtime Segmenter) with a constant-output artifact.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import pytest

from maskrt.cli import main

SIZE = 128


@pytest.mark.slow
def test_maskrt_run_with_an_exported_lite_model(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from maskrt.export.metadata import make_meta
    from maskrt.export.onnx_export import export_onnx
    from maskrt.export.wrapper import ExportWrapper
    from maskrt.train.models import ModelRecipe, build_model
    from maskrt.train.synth.video import render_video

    torch.manual_seed(0)
    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=SIZE, max_det=20)
    model = build_model(recipe).eval()
    wrapper = ExportWrapper(model, (SIZE, SIZE), max_det=20, mean=recipe.mean, std=recipe.std)
    onnx_path = tmp_path / "lite.onnx"
    export_onnx(wrapper, make_meta(recipe, (SIZE, SIZE), 20), onnx_path, simplify=False)
    gt = json.loads(Path(render_video(tmp_path / "syn.mp4", frames=8, size=256, seed=2)).read_text())

    out = tmp_path / "out"
    argv = [
        "run", str(onnx_path), str(tmp_path / "syn.mp4"), "--threads", "1", "--conf", "0.05", "--track",
        "--csv", str(out / "f.csv"), "--instances", str(out / "i.csv"), "--save", str(out / "v.mp4"),
        "--summary", str(out / "s.json"),
    ]  # fmt: skip
    assert main(argv) == 0
    with open(out / "f.csv", newline="") as f:
        frames = list(csv.DictReader(f))
    with open(out / "i.csv", newline="") as f:
        instances = list(csv.DictReader(f))
    assert [int(r["frame"]) for r in frames] == list(range(gt["num_frames"]))
    per_frame = [
        sum(1 for r in instances if int(r["frame"]) == i and r["in_roi"] == "True")
        for i in range(len(frames))
    ]
    assert [int(r["count"]) for r in frames] == per_frame
    cap = cv2.VideoCapture(str(out / "v.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == gt["num_frames"]
    summary = json.loads((out / "s.json").read_text())
    assert summary["processed"] == gt["num_frames"] and summary["stages_ms"]["infer"]["mean_ms"] > 0
