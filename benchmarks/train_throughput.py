"""Training throughput per preset (images/s) on one fixed in-memory batch, and eval-mode latency.

Each preset trains ``--steps`` steps (after one warm-up step) on a batch of random images with a few
box+mask targets, so only the model differs. Speed is reported as images/s and as a ratio to the
``lite`` preset measured in the same run. Writes ``benchmarks/results/train_throughput.json``.

    python benchmarks/train_throughput.py [--presets lite,mbv3-fpn,r50-fpn,r50-fpn-v2] [--imgsz 256] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from maskrt.atomic import write_text
from maskrt.train.models import ModelRecipe, build_model, count_parameters

RESULTS = Path(__file__).resolve().parent / "results"


def _batch(imgsz: int, batch: int, objects: int) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, imgsz, imgsz, generator=g) for _ in range(batch)]
    targets = []
    for _ in range(batch):
        xy = torch.randint(0, imgsz - 40, (objects, 2), generator=g).float()
        wh = torch.randint(6, 40, (objects, 2), generator=g).float()
        boxes = torch.cat([xy, xy + wh], 1)
        masks = torch.zeros(objects, imgsz, imgsz, dtype=torch.uint8)
        for k, (x0, y0, x1, y1) in enumerate(boxes.int().tolist()):
            masks[k, y0:y1, x0:x1] = 1
        targets.append({"boxes": boxes, "labels": torch.ones(objects, dtype=torch.int64), "masks": masks})
    return images, targets


def measure(
    arch: str, imgsz: int, batch: int, steps: int, objects: int, device: torch.device
) -> dict[str, float]:
    """Seconds per training step and per eval-mode image for one preset."""
    torch.manual_seed(0)
    model = build_model(ModelRecipe(arch, ["bubble"], imgsz)).to(device).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
    images, targets = _batch(imgsz, batch, objects)
    images = [im.to(device) for im in images]
    targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
    times = []
    for _ in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    step = sum(times[1:]) / steps
    model.eval()
    with torch.inference_mode():
        model(images[:1])
        t = time.perf_counter()
        for _ in range(steps):
            model(images[:1])
        infer = (time.perf_counter() - t) / steps
    return {
        "params_M": count_parameters(model) / 1e6,
        "step_s": step,
        "images_per_s": batch / step,
        "infer_ms_per_image": infer * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="lite,mbv3-fpn,r50-fpn,r50-fpn-v2")
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--objects", type=int, default=8, help="instances per image")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=RESULTS / "train_throughput.json")
    args = ap.parse_args()
    device = torch.device(args.device)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    if "lite" not in presets:
        presets.insert(0, "lite")  # the baseline
    rows = {}
    for arch in presets:
        rows[arch] = measure(arch, args.imgsz, args.batch, args.steps, args.objects, device)
        print(
            f"{arch:12s} {rows[arch]['params_M']:6.1f} M params  {rows[arch]['step_s']:6.2f} s/step  "
            f"{rows[arch]['images_per_s']:6.2f} img/s  {rows[arch]['infer_ms_per_image']:7.0f} ms/img eval",
            flush=True,
        )
    base = rows["lite"]["images_per_s"]
    for r in rows.values():
        r["ratio_to_lite"] = r["images_per_s"] / base
    doc = {
        "benchmark": "train_throughput",
        "config": {k: str(v) for k, v in vars(args).items()},
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
            "load_avg_1m": os.getloadavg()[0],
        },
        "baseline": "lite",
        "presets": rows,
    }
    write_text(args.out, json.dumps(doc, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
