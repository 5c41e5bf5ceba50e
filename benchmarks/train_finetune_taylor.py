"""Fine-tune a checkpoint on the real Taylor-bubble set (train split); score on its valid + test splits.

The starting point is any maskrt checkpoint (e.g. the synthetic-trained ``best.pt`` of
``train_lite_synthetic.py``, or ``bubbles-lite``); its class-specific layers start fresh, since the
classes differ. With ``--scratch`` the same run from random weights is measured too, as the baseline.
Writes iterations, wall time, images/s and box/mask AP/AP50 to
``benchmarks/results/train_finetune_taylor.json``.

    python benchmarks/train_finetune_taylor.py --weights runs/bench-lite-synthetic/run/best.pt --iters 300
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
from pathlib import Path

import torch

from maskrt.atomic import write_text
from maskrt.train.trainer import TrainConfig, train

RESULTS = Path(__file__).resolve().parent / "results"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "taylor-bubbles-coco"


def _run(args: argparse.Namespace, weights: str, out: Path) -> dict[str, object]:
    cfg = TrainConfig(
        data=[str(args.data / "train")],
        val=[str(args.data / "valid"), str(args.data / "test")],
        imgsz=args.imgsz,
        iters=args.iters,
        batch=args.batch,
        lr=args.lr,
        optimizer=args.optimizer,
        augment=args.augment,
        workers=args.workers,
        device=args.device,
        weights=weights,
        out=str(out),
        eval_every=args.eval_every,
        save_every=100,
    )
    r = train(cfg)
    m = r.metrics
    return {
        "weights": weights,
        "iterations": r.iterations,
        "wall_s": round(r.wall_s, 1),
        "images_per_s": round(r.images_per_s, 3),
        "mask_AP50": m["segm"]["AP50"],
        "mask_AP": m["segm"]["AP"],
        "box_AP50": m["bbox"]["AP50"],
        "box_AP": m["bbox"]["AP"],
        "val_images": m["images"],
        "val_instances": m["instances"],
        "checkpoint": str(r.best or r.last),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", required=True, help="start checkpoint (path or bubbles-lite)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--imgsz", type=int, default=512)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--augment", default="default")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--scratch", action="store_true", help="also train from scratch for the same iterations")
    ap.add_argument("--work", type=Path, default=Path("runs/bench-finetune-taylor"))
    ap.add_argument("--out", type=Path, default=RESULTS / "train_finetune_taylor.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    doc: dict[str, object] = {
        "benchmark": "train_finetune_taylor",
        "config": {k: str(v) for k, v in vars(args).items()},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "load_avg_1m": os.getloadavg()[0]},
        "finetuned": _run(args, args.weights, args.work / "finetune"),
    }
    if args.scratch:
        doc["scratch"] = _run(args, "none", args.work / "scratch")
    write_text(args.out, json.dumps(doc, indent=2))
    print(json.dumps({k: v for k, v in doc.items() if k in ("finetuned", "scratch")}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
