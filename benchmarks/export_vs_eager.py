"""PyTorch eager Mask R-CNN versus our exported ONNX in ONNX Runtime plus the host-side paste.

Same weights, same 512x512 synthetic scenes, 2 threads on both sides (torch.set_num_threads(2),
ORT intra_op_num_threads=2). Eager is ``model([image])`` including torchvision's full-resolution
mask paste, at the export size (not resized to the checkpoint's training size); ours is
``session.run`` on the uint8 image plus ``maskrt.runtime.paste`` of every detection inside its box.
Speed is reported as the ratio eager / ours (target >= 1.5).

Two protocols:

* ``--mode isolated`` (default, for a quiet machine): every side runs alone in a fresh process
  (``--rounds`` times, eager and ours taking turns), so neither pays for the other's threads
  (ONNX Runtime's workers spin between runs; PyTorch's OpenMP workers too) nor inherits the
  other's heap. The ratio is median eager / median ours over all timed frames.
* ``--mode interleaved`` (for a shared machine): one process, eager and ours alternating frame by
  frame so that load from other processes hits both alike; ONNX Runtime's spinning is switched off
  there, or its idle workers would steal the cores from the eager frame that follows.

Without ``--checkpoint`` the weights are random, with the box classifier scaled so that every frame
has ``max_det`` detections (the eager paste cost grows with them; reported per row).

Usage:
    .venv/bin/python benchmarks/export_vs_eager.py --archs lite r50-fpn --frames 8
    .venv/bin/python benchmarks/export_vs_eager.py --checkpoint train/models/bubbles-lite.pt
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from maskrt.export.metadata import make_meta
from maskrt.export.onnx_export import export_onnx
from maskrt.export.scenes import synthetic_scenes
from maskrt.export.verify import ort_session
from maskrt.export.wrapper import ExportWrapper
from maskrt.runtime.bench.sysinfo import cpu_model
from maskrt.runtime.paste import paste_masks
from maskrt.train.checkpoint import load_model
from maskrt.train.models import ModelRecipe, build_model

RESULTS = Path(__file__).resolve().parent / "results"


def random_detecting_model(arch: str, size: int) -> tuple[torch.nn.Module, ModelRecipe]:
    torch.manual_seed(0)
    recipe = ModelRecipe(arch=arch, classes=["bubble"], image_size=size)
    model = build_model(recipe).eval()
    with torch.no_grad():
        cls = model.roi_heads.box_predictor.cls_score
        torch.nn.init.normal_(cls.weight, std=3.0)
        cls.bias.zero_()
        model.roi_heads.mask_predictor.mask_fcn_logits.weight.mul_(20)
    return model, recipe


def _wrapped_model(arch: str, size: int, max_det: int, checkpoint: Path | None) -> tuple[ExportWrapper, ModelRecipe]:
    """The model inside its export wrapper, which also sets what eager shares with the export: the
    transform's size (the export size, not the training size), max_det and the score threshold."""
    if checkpoint is not None:
        model, recipe, _ = load_model(checkpoint)
    else:
        model, recipe = random_detecting_model(arch, size)
    return ExportWrapper(model, (size, size), max_det, recipe.mean, recipe.std), recipe


def _images(size: int, frames: int) -> list[np.ndarray]:
    return [s.image for s in synthetic_scenes(frames + 1, (size, size), seed=11)]


def _eager(model: torch.nn.Module) -> Callable[[np.ndarray], int]:
    def eager(img: np.ndarray) -> int:
        x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1])).permute(2, 0, 1).float() / 255.0
        with torch.inference_mode():
            out = model([x])[0]
        _ = out["masks"] > 0.5  # the binary masks a user would take
        return len(out["scores"])

    return eager


def _ours(onnx_path: Path, size: int, spin: bool) -> Callable[[np.ndarray], int]:
    session = ort_session(onnx_path, threads=2, spin=spin)

    def ours(img: np.ndarray) -> int:
        boxes, _, _, masks, num = session.run(None, {"images": img[None]})[:5]
        n = int(num[0])
        paste_masks(masks[0, :n], boxes[0, :n], (size, size), 0.5)
        return n

    return ours


def _time(fn: Callable[[np.ndarray], int], images: list[np.ndarray]) -> tuple[list[float], list[int]]:
    fn(images[0])  # warm-up
    times, dets = [], []
    for img in images[1:]:
        t0 = time.perf_counter()
        dets.append(fn(img))
        times.append(time.perf_counter() - t0)
    return times, dets


def worker(side: str, arch: str, size: int, frames: int, max_det: int, checkpoint: Path | None,
           onnx_path: Path) -> None:
    """One side alone in this process; prints its times as JSON (``--worker``)."""
    torch.set_num_threads(2)
    if side == "eager":
        fn = _eager(_wrapped_model(arch, size, max_det, checkpoint)[0].model)
    else:
        fn = _ours(onnx_path, size, spin=True)
    times, dets = _time(fn, _images(size, frames))
    print(json.dumps({"times": times, "dets": dets}))


def _spawn(side: str, arch: str, args: argparse.Namespace, onnx_path: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, "--archs", arch, "--size", str(args.size),
           "--frames", str(args.frames), "--max-det", str(args.max_det), "--onnx", str(onnx_path)]
    if args.checkpoint is not None:
        cmd += ["--checkpoint", str(args.checkpoint)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_arch(arch: str, args: argparse.Namespace) -> dict:
    size, frames, max_det, checkpoint = args.size, args.frames, args.max_det, args.checkpoint
    wrapper, recipe = _wrapped_model(arch, size, max_det, checkpoint)
    arch = recipe.arch
    t_eager: list[float] = []
    t_ours: list[float] = []
    n_eager: list[int] = []
    n_ours: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{arch}.onnx"
        export_onnx(wrapper, make_meta(recipe, (size, size), max_det), path)
        if args.mode == "isolated":
            for _ in range(args.rounds):
                for side, times, dets in (("eager", t_eager, n_eager), ("ours", t_ours, n_ours)):
                    got = _spawn(side, arch if checkpoint is None else "checkpoint", args, path)
                    times += got["times"]
                    dets += got["dets"]
        else:
            torch.set_num_threads(2)
            eager, ours = _eager(wrapper.model), _ours(path, size, spin=False)
            images = _images(size, frames)
            eager(images[0])
            ours(images[0])
            for img in images[1:]:  # alternate frame by frame
                for fn, times, dets in ((eager, t_eager, n_eager), (ours, t_ours, n_ours)):
                    t0 = time.perf_counter()
                    dets.append(fn(img))
                    times.append(time.perf_counter() - t0)
    me, mo = statistics.median(t_eager), statistics.median(t_ours)
    return {
        "arch": arch,
        "weights": str(checkpoint) if checkpoint else "random (scaled box classifier)",
        "mode": args.mode,
        "rounds": args.rounds if args.mode == "isolated" else 1,
        "input": f"{size}x{size}",
        "frames": len(t_ours),
        "max_det": max_det,
        "detections_per_frame": float(np.mean(n_ours)),
        "eager_detections_per_frame": float(np.mean(n_eager)),
        "eager_ms_median": round(me * 1000, 1),
        "onnxruntime_plus_paste_ms_median": round(mo * 1000, 1),
        "speedup_eager_over_ours": round(me / mo, 2),
        "speedup_of_fastest_frames": round(min(t_eager) / min(t_ours), 2),
        "eager_ms_all": [round(t * 1000, 1) for t in t_eager],
        "ours_ms_all": [round(t * 1000, 1) for t in t_ours],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=["lite", "r50-fpn"])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--max-det", type=int, default=100)
    ap.add_argument("--checkpoint", type=Path, default=None, help="Use a trained checkpoint (one arch).")
    ap.add_argument("--mode", choices=["isolated", "interleaved"], default="isolated",
                    help="one fresh process per side (quiet machine) or both alternating in one (shared machine)")
    ap.add_argument("--rounds", type=int, default=2, help="isolated mode: processes per side, taking turns")
    ap.add_argument("--worker", choices=["eager", "ours"], help=argparse.SUPPRESS)
    ap.add_argument("--onnx", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.archs[0], args.size, args.frames, args.max_det, args.checkpoint, args.onnx)
        return
    import onnxruntime

    rows = []
    for arch in args.archs if args.checkpoint is None else ["checkpoint"]:
        row = bench_arch(arch, args)
        rows.append(row)
        print(f"{row['arch']:>8} ({row['mode']}): eager {row['eager_ms_median']:.0f} ms, ONNX Runtime + paste "
              f"{row['onnxruntime_plus_paste_ms_median']:.0f} ms -> {row['speedup_eager_over_ours']:.2f}x "
              f"(fastest frames {row['speedup_of_fastest_frames']:.2f}x) "
              f"({row['detections_per_frame']:.0f} detections/frame)")
    result = {
        "benchmark": "export_vs_eager",
        "machine": f"{platform.machine()} {cpu_model()} ({os.cpu_count()} cores, 2 threads used)",
        "load_average": list(os.getloadavg()),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "target_speedup": 1.5,
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"export_vs_eager_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
