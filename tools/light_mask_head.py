"""A lite checkpoint with a narrower mask head, distilled from its own, every other weight unchanged.

    python tools/light_mask_head.py train/models/bubbles-lite.pt --data data-out/real-boiling-train \\
        --data data-out/synth-mixed-classic --data data-out/synth-bottom --images 120 --out runs/light-mask/last.pt

The mask head and predictor become ``--mask-channels`` wide (64 by default: 2.8x fewer multiply-adds per RoI,
:mod:`maskrt.train.mask_head`) and are fitted to the checkpoint's own mask logits on its own detections of
``--images`` training images spread over the ``--data`` folders. Every other tensor (backbone, RPN, box head, phase
head) is copied bit for bit, so boxes, scores and the phase map are the checkpoint's. The result is a checkpoint like
any other (``maskrt eval``, ``maskrt export``, ``maskrt train --weights``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="a lite or lite-fast checkpoint (maskrt train)")
    ap.add_argument("--data", action="append", required=True, help="training data folder/file (repeatable)")
    ap.add_argument("--mask-channels", type=int, default=64, help="the new mask head's width (the lite one: 128)")
    ap.add_argument("--images", type=int, default=120, help="images to fit on, spread over all --data")
    ap.add_argument("--steps", type=int, default=3000, help="optimisation steps")
    ap.add_argument("--batch", type=int, default=128, help="RoIs per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, required=True, help="the checkpoint to write")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch

    from maskrt.errors import MaskrtError
    from maskrt.paths import refuse_overwriting_inputs
    from maskrt.train.checkpoint import load_checkpoint, recipe_of, save_checkpoint
    from maskrt.train.dataset import load_datasets
    from maskrt.train.lite_fast import spread_images
    from maskrt.train.mask_head import distil_mask_head, is_mask_param
    from maskrt.train.models import ModelRecipe, build_model, load_matching

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        refuse_overwriting_inputs([args.checkpoint], files=[args.out], fix="pass another --out")
        if args.images < 2 or args.steps < 1 or args.batch < 1:
            raise MaskrtError(
                f"--images {args.images}, --steps {args.steps}, --batch {args.batch}: need at least 2 images, "
                "1 step and 1 RoI per step"
            )
        ckpt = load_checkpoint(args.checkpoint)
        recipe = recipe_of(ckpt, args.checkpoint)
        if recipe.arch not in ("lite", "lite-fast"):
            raise MaskrtError(
                f"a {recipe.arch} checkpoint; the mask head width is a lite-preset option (use a lite checkpoint)",
                path=args.checkpoint,
            )
        width = recipe.mask_width
        if args.mask_channels == width:
            raise MaskrtError(
                f"its mask head is already {width} wide; pass another --mask-channels", path=args.checkpoint
            )
        narrow = ModelRecipe.from_dict({**recipe.to_dict(), "mask_channels": args.mask_channels})
        teacher = build_model(recipe)
        teacher.load_state_dict({k: v.float() for k, v in ckpt["model"].items()})
        student = build_model(narrow)
        loaded, _ = load_matching(student, ckpt["model"])
        images = spread_images(load_datasets(args.data), recipe.image_size, args.images)
    except MaskrtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    report = distil_mask_head(
        student, teacher, images, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed
    )
    copied = [k for k in loaded if not is_mask_param(k)]
    report.update(copied_tensors=len(copied), source=str(args.checkpoint), mask_channels=args.mask_channels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    extra = {k: v for k, v in ckpt.items() if k not in ("model", "recipe", "metrics", "maskrt_version")}
    save_checkpoint(args.out, student, narrow, **extra, mask_distilled=report)
    print(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
