"""The whole pipeline in the default run: synth -> train a few iterations -> export -> runtime -> stream.

Tiny on purpose (96 px images, a handful of iterations): it proves the stages fit together through
their real interfaces and files, not that the model is good (the benchmarks and the model card do that).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def test_synth_train_export_runtime_stream(tmp_path: Path) -> None:
    from maskrt.artifact import OUTPUT_NAMES
    from maskrt.export.pipeline import ExportOptions, export_checkpoint
    from maskrt.runtime import Segmenter
    from maskrt.runtime.stream import Stream, StreamOptions
    from maskrt.runtime.stream.outputs import OutputOptions, Outputs
    from maskrt.train.synth import generate_dataset, render_video
    from maskrt.train.trainer import TrainConfig, train

    data = generate_dataset(tmp_path / "synth", images=6, size=128, scene="boiling-side", seed=1)
    result = train(TrainConfig(
        data=[str(data.parent)], val_split=0.0, arch="lite", imgsz=128, iters=3, batch=2, workers=0,
        out=str(tmp_path / "run"), augment="none", progress=False, save_every=3, device="cpu",
    ))  # fmt: skip
    assert result.iterations == 3
    assert result.last.is_file()
    ckpt = torch.load(result.last, map_location="cpu", weights_only=False)
    assert ckpt["recipe"]["classes"] == ["bubble", "droplet"]

    exported = export_checkpoint(
        result.last, ExportOptions(imgsz=128, out=tmp_path / "model.onnx", parity_images=1)
    )
    assert exported.violations == []
    assert exported.onnx_path.is_file()

    seg = Segmenter(exported.onnx_path, conf=0.0)
    assert seg.class_names == ["bubble", "droplet"]
    assert tuple(seg.meta.input_size) == (128, 128)
    frame = cv2.imread(str(next((tmp_path / "synth").glob("*.jpg"))))
    inst = seg(frame)
    assert len(inst) <= seg.meta.max_det
    assert inst.boxes.shape == (len(inst), 4)
    if len(inst):  # boxes are in frame pixels, inside the frame
        assert inst.boxes[:, 2].max() <= frame.shape[1] + 1 and inst.boxes[:, 3].max() <= frame.shape[0] + 1
    assert set(seg.timings) >= {"preprocess", "infer", "postprocess"}
    assert len(OUTPUT_NAMES) == 5

    video = tmp_path / "clip.mp4"
    gt = json.loads(Path(render_video(video, frames=5, size=128, scene="boiling-side", seed=2)).read_text())
    stream = Stream(seg, str(video), StreamOptions(track=True))
    outs = Outputs(OutputOptions(save=tmp_path / "out.mp4", csv=tmp_path / "frames.csv"), fps=stream.source_fps)
    indices = []
    try:
        for res in stream:
            outs.write(res)
            indices.append(res.index)
            assert 0.0 <= res.stats["void_fraction"] <= 1.0
    finally:
        outs.close()
    assert indices == list(range(len(gt["frames"])))
    with open(tmp_path / "frames.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(indices)
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    assert n == len(indices)
    assert np.isfinite(stream.summary["fps"]) and stream.summary["processed"] == len(indices)
