"""PyTorch eager Mask R-CNN versus our exported ONNX in ONNX Runtime plus the host-side paste.

Same weights, same 512x512 synthetic scenes, 2 threads on both sides (torch.set_num_threads(2),
ORT intra_op_num_threads=2). Eager is ``model([image])`` including torchvision's full-resolution
mask paste; ours is ``session.run`` on the uint8 image plus ``maskrt.runtime.paste`` of every
detection inside its box. Runs alternate frame by frame so that load from other processes hits
both sides alike. Speed is reported as the ratio eager / ours (target >= 1.5).

Without ``--checkpoint`` the weights are random, with the box classifier scaled so that detections
exist (the number per frame is reported: the eager paste cost grows with it).

Usage:
    .venv/bin/python benchmarks/export_vs_eager.py --archs lite r50-fpn --frames 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from maskrt.export.metadata import make_meta
from maskrt.export.onnx_export import export_onnx
from maskrt.export.scenes import synthetic_scenes
from maskrt.export.verify import ort_session
from maskrt.export.wrapper import ExportWrapper
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


def bench_arch(arch: str, size: int, frames: int, max_det: int, checkpoint: Path | None) -> dict:
    if checkpoint is not None:
        model, recipe, _ = load_model(checkpoint)
        arch = recipe.arch
    else:
        model, recipe = random_detecting_model(arch, size)
    wrapper = ExportWrapper(model, (size, size), max_det, recipe.mean, recipe.std)
    images = [s.image for s in synthetic_scenes(frames + 1, (size, size), seed=11)][:frames]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{arch}.onnx"
        export_onnx(wrapper, make_meta(recipe, (size, size), max_det), path)
        session = ort_session(path, threads=2)

        def eager(img: np.ndarray) -> int:
            x = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1])).permute(2, 0, 1).float() / 255.0
            with torch.inference_mode():
                out = model([x])[0]
            _ = (out["masks"] > 0.5)  # the binary masks a user would take
            return len(out["scores"])

        def ours(img: np.ndarray) -> int:
            boxes, _, _, masks, num = session.run(None, {"images": img[None]})
            n = int(num[0])
            paste_masks(masks[0, :n], boxes[0, :n], (size, size), 0.5)
            return n

        eager(images[0])  # warm-up both
        ours(images[0])
        t_eager, t_ours, n_eager, n_ours = [], [], [], []
        for img in images:
            t0 = time.perf_counter()
            n_eager.append(eager(img))
            t1 = time.perf_counter()
            n_ours.append(ours(img))
            t2 = time.perf_counter()
            t_eager.append(t1 - t0)
            t_ours.append(t2 - t1)
    me, mo = statistics.median(t_eager), statistics.median(t_ours)
    return {
        "arch": arch,
        "weights": str(checkpoint) if checkpoint else "random (scaled box classifier)",
        "input": f"{size}x{size}",
        "frames": frames,
        "max_det": max_det,
        "detections_per_frame": float(np.mean(n_ours)),
        "eager_detections_per_frame": float(np.mean(n_eager)),
        "eager_ms_median": round(me * 1000, 1),
        "onnxruntime_plus_paste_ms_median": round(mo * 1000, 1),
        "speedup_eager_over_ours": round(me / mo, 2),
        # the least-disturbed frame of each side: on a shared machine the medians carry other load
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
    args = ap.parse_args()
    torch.set_num_threads(2)
    import onnxruntime

    rows = []
    for arch in args.archs if args.checkpoint is None else ["checkpoint"]:
        row = bench_arch(arch, args.size, args.frames, args.max_det, args.checkpoint)
        rows.append(row)
        print(f"{row['arch']:>8}: eager {row['eager_ms_median']:.0f} ms, ONNX Runtime + paste "
              f"{row['onnxruntime_plus_paste_ms_median']:.0f} ms -> {row['speedup_eager_over_ours']:.2f}x "
              f"(fastest frames {row['speedup_of_fastest_frames']:.2f}x) "
              f"({row['detections_per_frame']:.0f} detections/frame)")
    result = {
        "benchmark": "export_vs_eager",
        "machine": f"{platform.machine()} {platform.processor() or ''} (shared CPU, 2 threads)".strip(),
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
