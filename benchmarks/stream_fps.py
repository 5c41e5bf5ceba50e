"""End-to-end frame rate of `maskrt run` on a synthetic video, as a ratio to the model's inference-only rate.

The pipeline overlaps capture, inference and analysis/output in threads, so its end-to-end rate should
approach the rate of back-to-back inference of the same model, backend and thread count (target: at
least 0.9x for ``lite`` at 512x512 on 2 CPU cores). Both rates are measured in the same run; the
inference-only rate is measured before and after the ``maskrt run`` runs and averaged, because the
machine may be shared.

Usage:
    python benchmarks/stream_fps.py                      # random-weight lite export at 512 (needs torch once)
    python benchmarks/stream_fps.py --model bubbles.onnx --frames 200 --threads 2

Writes ``benchmarks/results/stream_fps.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


def export_random_lite(size: int, out: Path) -> Path:
    """A random-weight ``lite`` model exported at ``size`` (speed does not depend on the weights much)."""
    if out.exists():
        return out
    import torch

    from maskrt.export.metadata import make_meta
    from maskrt.export.onnx_export import export_onnx
    from maskrt.export.wrapper import ExportWrapper
    from maskrt.train.models import ModelRecipe, build_model

    torch.manual_seed(0)
    recipe = ModelRecipe(arch="lite", classes=["bubble"], image_size=size, max_det=100)
    model = build_model(recipe).eval()
    wrapper = ExportWrapper(model, (size, size), max_det=100, mean=recipe.mean, std=recipe.std)
    export_onnx(wrapper, make_meta(recipe, (size, size), 100), out, simplify=True)
    return out


def render_video(path: Path, frames: int, size: int) -> Path:
    """The project's synthetic boiling video (maskrt synth --video), or moving discs if it is unavailable."""
    try:
        from maskrt.train.synth.video import render_video as synth_video

        synth_video(path, frames=frames, size=size, scene="boiling-side", fps=30.0, seed=0)
        return path
    except ImportError:
        pass
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (size, size))
    rng = np.random.default_rng(0)
    pts = rng.uniform(40, size - 40, (25, 2))
    for f in range(frames):
        img = np.full((size, size, 3), 90, np.uint8)
        for k, (x, y) in enumerate(pts):
            cv2.circle(img, (int(x), int(y - 2 * f) % size), 8 + k % 12, (230, 230, 230), -1)
        writer.write(img)
    writer.release()
    return path


def inference_rate(model: Path, video: Path, threads: int, backend: str, device: str) -> dict[str, float]:
    """Back-to-back ``Segmenter.infer`` on the video's preprocessed frames: frames per second."""
    from maskrt.runtime import Segmenter

    seg = Segmenter(model, backend=backend, device=device, threads=threads)
    cap = cv2.VideoCapture(str(video))
    inputs = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        inputs.append(seg.preprocess(frame)[0])
    cap.release()
    seg.warmup(3)
    t0 = time.perf_counter()
    for x in inputs:
        seg.infer(x)
    wall = time.perf_counter() - t0
    seg.close()
    return {"frames": len(inputs), "wall_s": wall, "fps": len(inputs) / wall, "ms": 1000 * wall / len(inputs)}


def run_cli(
    model: Path, video: Path, threads: int, backend: str, device: str, extra: list[str], tmp: Path
) -> dict:
    """`maskrt run` in a subprocess, as a user runs it; returns its summary JSON."""
    summary = tmp / f"summary-{len(extra)}.json"
    cmd = [
        sys.executable, "-m", "maskrt", "-q", "run", str(model), str(video), "--threads", str(threads),
        "--backend", backend, "--device", device, "--summary", str(summary), *extra,
    ]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads(summary.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="model .onnx/.engine (default: random-weight lite export)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--conf", type=float, help="score threshold for maskrt run (low: many instances, host stress)"
    )
    ap.add_argument("--out", type=Path, default=RESULTS / "stream_fps.json")
    args = ap.parse_args()

    RESULTS.mkdir(parents=True, exist_ok=True)
    model = args.model or export_random_lite(args.size, RESULTS / f"lite{args.size}-random.onnx")
    configs = {
        "csv": lambda d: ["--csv", str(d / "frames.csv")],
        "csv+instances+save+track": lambda d: [
            "--csv",
            str(d / "frames.csv"),
            "--instances",
            str(d / "inst.csv"),
            "--save",
            str(d / "out.mp4"),
            "--track",
        ],
    }
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        video = render_video(tmp / "bench.mp4", args.frames, args.size)
        before = inference_rate(model, video, args.threads, args.backend, args.device)
        runs: dict[str, Any] = {}
        for label, extra in configs.items():
            conf = ["--conf", str(args.conf)] if args.conf is not None else []
            runs[label] = run_cli(
                model, video, args.threads, args.backend, args.device, extra(tmp) + conf, tmp
            )
        after = inference_rate(model, video, args.threads, args.backend, args.device)
    infer_fps = (before["fps"] + after["fps"]) / 2
    result = {
        "benchmark": "stream_fps",
        "model": str(model),
        "size": args.size,
        "frames": args.frames,
        "threads": args.threads,
        "backend": args.backend,
        "conf": args.conf,
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "inference_only": {"before": before, "after": after, "fps": infer_fps},
        "runs": {
            label: {
                "fps": s["fps"],
                "ratio_to_inference": s["fps"] / infer_fps,
                "processed": s["processed"],
                "mean_instances": s.get("mean_instances"),
                "stages_ms": {k: round(v["mean_ms"], 3) for k, v in s["stages_ms"].items()},
                "p99_ms": {k: round(v["p99_ms"], 3) for k, v in s["stages_ms"].items()},
            }
            for label, s in runs.items()
        },
        "target_ratio": 0.9,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"inference only: {infer_fps:.2f} FPS ({before['fps']:.2f} before, {after['fps']:.2f} after)")
    for label, r in result["runs"].items():
        print(f"maskrt run [{label}]: {r['fps']:.2f} FPS = {r['ratio_to_inference']:.2f}x inference-only")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
