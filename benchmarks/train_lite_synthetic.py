"""Train ``lite`` from scratch on synthetic ``mixed`` scenes; score it on held-out sets (another seed).

Three synthetic sets, three seeds: training (``--seed``), validation for picking ``best.pt``
(``--val-seed``, mixed scenes) and the held-out test set the target is scored on (``--test-seed``: mixed
scenes, plus ``--scene-images`` of each scene type). Writes iterations, wall time, images/s, box and mask
AP/AP50 to ``benchmarks/results/train_lite_synthetic.json`` (or ``--out``).

``--budget-s`` sizes the run to a time budget instead of ``--iters``: a short calibration run measures
the seconds per iteration on this machine, and the iteration count follows (the cosine schedule then
ends on time). ``--compact`` writes the best checkpoint in FP16 without optimiser state (what
``tools/bundle_model.py`` takes), small enough to copy off a device machine.
Speed is also given as a ratio to a baseline measured in the same run: the bare training step of the
same model on one fixed in-memory batch (no data loading or augmentation), so the ratio shows what the
input pipeline and evaluation cost. Target: mask AP50 >= 0.90 on the held-out set.

    python benchmarks/train_lite_synthetic.py --iters 3000 --batch 8 --imgsz 512 --lr 0.02      # the long run
    python benchmarks/train_lite_synthetic.py --iters 40 --train-images 40 --val-images 10 --imgsz 256
    python benchmarks/train_lite_synthetic.py --budget-s 300 --batch 8 --imgsz 512 --workers 12 \
        --train-images 2000 --compact $OUT/lite512.pt --out $OUT/train_lite_synthetic.json    # a GPU lease
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
from maskrt.train.checkpoint import compact_checkpoint
from maskrt.train.curves import MetricsLog
from maskrt.train.evaluate import evaluate_checkpoint as evaluate
from maskrt.train.synth import generate_dataset
from maskrt.train.trainer import TrainConfig, resolve_device, train

RESULTS = Path(__file__).resolve().parent / "results"
log = logging.getLogger("train_lite_synthetic")


SCENES = ("boiling-side", "boiling-bottom", "droplets", "taylor")
ARTIFACT_MAX_DET = 300  # the bundled artifact's (tools/bundle_model.py): real dense boiling frames hold ~220 regions


def _dataset(root: Path, images: int, size: int, seed: int, scene: str = "mixed", workers: int = 1) -> Path:
    """Generate (once) a synthetic set; reused when the same arguments ran before."""
    folder = root / f"{scene}-{size}px-{images}-seed{seed}"
    ann = folder / "annotations.json"
    if not ann.is_file():
        generate_dataset(folder, images=images, size=size, scene=scene, seed=seed, workers=workers)
    return ann


def _summary(m: dict) -> dict:
    return {
        "mask_AP50": m["segm"]["AP50"],
        "mask_AP": m["segm"]["AP"],
        "box_AP50": m["bbox"]["AP50"],
        "box_AP": m["bbox"]["AP"],
        "images": m.get("images"),
        "instances": m.get("instances"),
        "per_class": m.get("per_class"),
    }


def _baseline_step_s(imgsz: int, batch: int, device: str = "auto", steps: int = 3) -> float:
    """Seconds per bare training step of lite on a fixed random batch (first step excluded)."""
    from maskrt.train.models import ModelRecipe, build_model

    torch.manual_seed(0)
    dev = resolve_device(device)
    model = build_model(ModelRecipe("lite", ["bubble", "droplet"], imgsz)).train().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    images = [torch.rand(3, imgsz, imgsz, device=dev) for _ in range(batch)]
    box = torch.tensor([[10.0, 10.0, 40.0, 40.0], [imgsz / 2, imgsz / 2, imgsz / 2 + 20, imgsz / 2 + 25]])
    masks = torch.zeros(2, imgsz, imgsz, dtype=torch.uint8)
    masks[0, 10:40, 10:40] = 1
    masks[1, imgsz // 2 : imgsz // 2 + 25, imgsz // 2 : imgsz // 2 + 20] = 1
    target = {"boxes": box, "labels": torch.tensor([1, 2]), "masks": masks}
    targets = [{k: v.to(dev) for k, v in target.items()} for _ in range(batch)]
    times = []
    for _ in range(steps + 1):
        t = time.perf_counter()
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return sum(times[1:]) / steps


def _config(args: argparse.Namespace, train_ann: Path, val_ann: Path, iters: int, out: Path) -> TrainConfig:
    return TrainConfig(
        data=[str(train_ann)],
        val=[str(val_ann)],
        arch="lite",
        imgsz=args.imgsz,
        iters=iters,
        batch=args.batch,
        lr=args.lr,
        optimizer=args.optimizer,
        augment=args.augment,
        workers=args.workers,
        device=args.device,
        amp=args.amp,
        out=str(out),
        resume=args.resume,
        weights=args.weights,
        eval_every=args.eval_every,
        save_every=args.save_every,
        progress=args.progress,
    )


def _calibrate(args: argparse.Namespace, train_ann: Path, val_ann: Path) -> tuple[int, float]:
    """Iterations that fit ``--budget-s``: time a short run of the real pipeline (data loading included).

    The rate is taken over the second half of the run: the loader's workers start with batches ready
    (``workers x prefetch``), so the first iterations show the model's speed, not the pipeline's.
    """
    import shutil

    calib_out = args.work / "calibration"
    shutil.rmtree(calib_out, ignore_errors=True)
    n = args.calibration_iters or max(30, 4 * args.workers)
    cfg = _config(args, train_ann, val_ann, n, calib_out)
    cfg.resume, cfg.eval_every, cfg.save_every, cfg.log_every = False, 10**9, 10**9, 1
    cfg.val, cfg.val_split = [], 0.0  # no validation pass at the end: it is not what is being timed
    res = train(cfg)
    rows = [r for r in MetricsLog(res.log).read() if "train_s" in r]
    half = [r for r in rows if r["iter"] >= n // 2]
    if len(half) >= 2 and half[-1]["iter"] > half[0]["iter"]:
        step_s = (half[-1]["train_s"] - half[0]["train_s"]) / (half[-1]["iter"] - half[0]["iter"])
    else:
        step_s = res.train_s / max(1, res.iterations)
    iters = int(args.budget_s * (1.0 - args.eval_share) / step_s)
    shutil.rmtree(calib_out, ignore_errors=True)
    return max(n, iters), step_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--budget-s", type=float, default=None, help="size the run to this many seconds of training")
    ap.add_argument("--calibration-iters", type=int, default=0, help="default: max(30, 4 x workers)")
    ap.add_argument("--eval-share", type=float, default=0.08, help="share of --budget-s kept for evaluations")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--imgsz", type=int, default=256, help="training size (and synthetic image size)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--augment", default="default")
    ap.add_argument("--synth-size", type=int, default=None,
                    help="size of the synthetic training scenes (default: --imgsz); 512 with --imgsz 640 trains on "
                         "upscaled 512 px scenes, as the bundled model's last stage did")
    ap.add_argument("--max-det", type=int, default=None,
                    help="detections per image for the held-out scores (default: the checkpoint's)")
    ap.add_argument("--train-images", type=int, default=400)
    ap.add_argument("--val-images", type=int, default=40, help="mixed images that pick best.pt")
    ap.add_argument("--test-images", type=int, default=100, help="held-out mixed images the target is scored on")
    ap.add_argument("--scene-images", type=int, default=30, help="held-out images of each scene type (0: none)")
    ap.add_argument("--seed", type=int, default=0, help="training set seed")
    ap.add_argument("--val-seed", type=int, default=500, help="validation set seed")
    ap.add_argument("--test-seed", type=int, default=1000, help="held-out set seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--synth-workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--amp", action="store_true")
    ap.add_argument("--eval-every", type=int, default=None, help="default: --evals evaluations per run")
    ap.add_argument("--evals", type=int, default=5, help="validation passes per run when --eval-every is unset")
    ap.add_argument(
        "--weights", default="none", help="none = from scratch (the benchmark); a checkpoint continues training"
    )
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--no-progress", dest="progress", action="store_false")
    ap.add_argument(
        "--work", type=Path, default=Path("runs/bench-lite-synthetic"), help="data and run folder"
    )
    ap.add_argument("--resume", action="store_true", help="continue the run in --work/run")
    ap.add_argument("--compact", type=Path, default=None, help="also write the best checkpoint here, compact")
    ap.add_argument("--out", type=Path, default=RESULTS / "train_lite_synthetic.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    t0 = time.perf_counter()
    data = args.work / "data"
    sw = args.synth_workers
    synth = args.synth_size or args.imgsz
    train_ann = _dataset(data, args.train_images, synth, args.seed, workers=sw)
    val_ann = _dataset(data, args.val_images, synth, args.val_seed, workers=sw)
    test_sets = {"mixed": _dataset(data, args.test_images, 512, args.test_seed, workers=sw)}
    if args.scene_images > 0:
        for scene in SCENES:
            test_sets[scene] = _dataset(data, args.scene_images, 512, args.test_seed, scene=scene, workers=sw)
    gen_s = time.perf_counter() - t0
    log.info("synthetic data: %.1f s", gen_s)

    iters, calib_step_s = args.iters, None
    if args.budget_s and not args.resume:
        iters, calib_step_s = _calibrate(args, train_ann, val_ann)
        log.info("calibration: %.3f s/iteration -> %d iterations for %.0f s", calib_step_s, iters, args.budget_s)
    cfg = _config(args, train_ann, val_ann, iters, args.work / "run")
    if cfg.eval_every is None:
        cfg.eval_every = max(1, iters // max(1, args.evals))
    result = train(cfg)
    ckpt = result.best or result.last
    device = cfg.device
    dev = resolve_device(device)
    if args.compact is not None:  # first: a short device lease keeps the model even if scoring runs out of time
        compact_checkpoint(ckpt, args.compact, max_det=ARTIFACT_MAX_DET)
    heldout = {}
    for name, ann in test_sets.items():
        heldout[name] = _summary(evaluate(ckpt, [ann], max_det=args.max_det, device=dev))
        log.info("held-out %s: mask AP50 %.3f AP %.3f", name, heldout[name]["mask_AP50"], heldout[name]["mask_AP"])
    base = _baseline_step_s(args.imgsz, args.batch, device) if result.train_s > 0 else 0.0
    step_s = args.batch / result.images_per_s if result.images_per_s > 0 else 0.0
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
        "config": {k: str(v) for k, v in vars(args).items() if k not in ("out", "work")},
        "lr": cfg.default_lr(),
        "iterations": result.iterations,
        "calibration_step_s": calib_step_s,
        "epochs": round(result.epochs, 2),
        "data_generation_s": round(gen_s, 1),
        "wall_s": round(result.wall_s, 1),
        "train_s": round(result.train_s, 1),
        "images_per_s": round(result.images_per_s, 3),
        "step_s": round(step_s, 4),
        "baseline_bare_step_s": round(base, 4),
        "speed_ratio_to_bare_step": round(base / step_s, 3) if step_s else None,
        "val": _summary(m) if m else None,
        "heldout": heldout,
        "mask_AP50": heldout["mixed"]["mask_AP50"],
        "mask_AP": heldout["mixed"]["mask_AP"],
        "target_mask_AP50": 0.90,
        "checkpoint": str(ckpt),
        "total_s": round(time.perf_counter() - t0, 1),
    }
    write_text(args.out, json.dumps(row, indent=2, default=str))
    print(
        json.dumps(
            {
                "iterations": row["iterations"],
                "wall_s": row["wall_s"],
                "images_per_s": row["images_per_s"],
                "speed_ratio_to_bare_step": row["speed_ratio_to_bare_step"],
                **{f"{k}_mask_AP50": round(v["mask_AP50"], 3) for k, v in heldout.items()},
            }
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
