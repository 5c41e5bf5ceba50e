"""Train ``lite`` from scratch on synthetic ``mixed`` scenes; score it on a held-out set (another seed).

Writes iterations, wall time, images/s, box and mask AP/AP50 to
``benchmarks/results/train_lite_synthetic.json``.
Speed is also given as a ratio to a baseline measured in the same run: the bare training step of the
same model on one fixed in-memory batch (no data loading or augmentation), so the ratio shows what the
input pipeline and evaluation cost. Target: mask AP50 >= 0.90 on the held-out set.

    python benchmarks/train_lite_synthetic.py --iters 3000 --batch 8 --imgsz 512 --lr 0.02      # the long run
    python benchmarks/train_lite_synthetic.py --iters 40 --train-images 40 --val-images 10 --imgsz 256
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import torch

from maskrt.atomic import write_text
from maskrt.train.synth import generate_dataset
from maskrt.train.trainer import TrainConfig, train

RESULTS = Path(__file__).resolve().parent / "results"


def _dataset(root: Path, images: int, size: int, seed: int) -> Path:
    """Generate (once) a synthetic mixed-scene set; reused when the same arguments ran before."""
    folder = root / f"mixed-{size}px-{images}-seed{seed}"
    ann = folder / "annotations.json"
    if not ann.is_file():
        generate_dataset(folder, images=images, size=size, scene="mixed", seed=seed)
    return ann


def _baseline_step_s(imgsz: int, batch: int, steps: int = 3) -> float:
    """Seconds per bare training step of lite on a fixed random batch (first step excluded)."""
    from maskrt.train.models import ModelRecipe, build_model

    torch.manual_seed(0)
    model = build_model(ModelRecipe("lite", ["bubble", "droplet"], imgsz)).train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    images = [torch.rand(3, imgsz, imgsz) for _ in range(batch)]
    box = torch.tensor([[10.0, 10.0, 40.0, 40.0], [imgsz / 2, imgsz / 2, imgsz / 2 + 20, imgsz / 2 + 25]])
    masks = torch.zeros(2, imgsz, imgsz, dtype=torch.uint8)
    masks[0, 10:40, 10:40] = 1
    masks[1, imgsz // 2 : imgsz // 2 + 25, imgsz // 2 : imgsz // 2 + 20] = 1
    targets = [{"boxes": box, "labels": torch.tensor([1, 2]), "masks": masks} for _ in range(batch)]
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        times.append(time.perf_counter() - t)
    return sum(times[1:]) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--imgsz", type=int, default=256, help="training size (and synthetic image size)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--augment", default="default")
    ap.add_argument("--train-images", type=int, default=400)
    ap.add_argument("--val-images", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0, help="training set seed")
    ap.add_argument("--val-seed", type=int, default=1000, help="held-out set seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument(
        "--work", type=Path, default=Path("runs/bench-lite-synthetic"), help="data and run folder"
    )
    ap.add_argument("--resume", action="store_true", help="continue the run in --work/run")
    ap.add_argument("--out", type=Path, default=RESULTS / "train_lite_synthetic.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    t0 = time.perf_counter()
    train_ann = _dataset(args.work / "data", args.train_images, args.imgsz, args.seed)
    val_ann = _dataset(args.work / "data", args.val_images, args.imgsz, args.val_seed)
    gen_s = time.perf_counter() - t0
    cfg = TrainConfig(
        data=[str(train_ann)],
        val=[str(val_ann)],
        arch="lite",
        imgsz=args.imgsz,
        iters=args.iters,
        batch=args.batch,
        lr=args.lr,
        optimizer=args.optimizer,
        augment=args.augment,
        workers=args.workers,
        device=args.device,
        amp=args.amp,
        out=str(args.work / "run"),
        resume=args.resume,
        weights="none",
        eval_every=args.eval_every,
        save_every=args.save_every,
    )
    result = train(cfg)
    if not result.metrics:  # resumed a finished run: score its checkpoint now
        from maskrt.train.checkpoint import load_model
        from maskrt.train.dataset import align_classes, load_datasets
        from maskrt.train.evaluate import evaluate_model

        model, recipe, _ = load_model(result.best or result.last)
        result.metrics = evaluate_model(model, align_classes(load_datasets([str(val_ann)]), recipe.classes))
    base = _baseline_step_s(args.imgsz, args.batch) if result.train_s > 0 else 0.0
    step_s = result.train_s / max(1, result.iterations) if result.train_s > 0 else 0.0
    m = result.metrics
    row = {
        "benchmark": "train_lite_synthetic",
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": cfg.device
            if cfg.device != "auto"
            else ("cuda" if torch.cuda.is_available() else "cpu"),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_avg_1m": os.getloadavg()[0],
        },
        "config": {k: v for k, v in vars(args).items() if k not in ("out", "work")},
        "lr": cfg.default_lr(),
        "iterations": result.iterations,
        "epochs": round(result.epochs, 2),
        "data_generation_s": round(gen_s, 1),
        "wall_s": round(result.wall_s, 1),
        "train_s": round(result.train_s, 1),
        "images_per_s": round(result.images_per_s, 3),
        "step_s": round(step_s, 3),
        "baseline_bare_step_s": round(base, 3),
        "speed_ratio_to_bare_step": round(base / step_s, 3) if step_s else None,
        "mask_AP50": m.get("segm", {}).get("AP50"),
        "mask_AP": m.get("segm", {}).get("AP"),
        "box_AP50": m.get("bbox", {}).get("AP50"),
        "box_AP": m.get("bbox", {}).get("AP"),
        "per_class": m.get("per_class"),
        "target_mask_AP50": 0.90,
        "checkpoint": str(result.best or result.last),
    }
    write_text(args.out, json.dumps(row, indent=2))
    print(
        json.dumps(
            {
                k: row[k]
                for k in (
                    "iterations",
                    "wall_s",
                    "images_per_s",
                    "mask_AP50",
                    "mask_AP",
                    "box_AP50",
                    "speed_ratio_to_bare_step",
                )
            }
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
