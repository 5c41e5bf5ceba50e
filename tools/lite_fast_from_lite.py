"""A ``lite-fast`` checkpoint from a ``lite`` one, without training the rest of the model.

    python tools/lite_fast_from_lite.py runs/bubbles-lite-phase0/last.pt --data data-out/real-boiling-train \\
        --data data-out/synth-mixed-classic --images 32 --steps 1500 --out runs/lite-fast0/last.pt

Every weight but the two stride-4 convolutions is the ``lite`` checkpoint's, bit for bit; those two are distilled
from the dense ones (:mod:`maskrt.train.lite_fast`) on ``--images`` training images spread over the ``--data``
folders. The result is a checkpoint like any other (``maskrt eval``, ``maskrt export``, ``maskrt train --weights``,
``--phase-only`` to refit a phase head on the new stride-4 features).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="a lite checkpoint (maskrt train)")
    ap.add_argument("--data", action="append", required=True, help="training data folder/file (repeatable)")
    ap.add_argument("--images", type=int, default=32, help="images to fit on, spread over all --data")
    ap.add_argument("--steps", type=int, default=1500, help="least-squares steps per convolution")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--out", type=Path, required=True, help="the lite-fast checkpoint to write")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from maskrt.errors import MaskrtError
    from maskrt.paths import refuse_overwriting_inputs
    from maskrt.train.checkpoint import load_checkpoint, recipe_of, save_checkpoint
    from maskrt.train.dataset import load_datasets
    from maskrt.train.lite_fast import distil_stride_four, has_dense_stride_four, spread_images
    from maskrt.train.models import build_model, load_matching

    try:
        refuse_overwriting_inputs([args.checkpoint], files=[args.out], fix="pass another --out")
        ckpt = load_checkpoint(args.checkpoint)
        recipe = recipe_of(ckpt, args.checkpoint)
        if recipe.arch != "lite" or not has_dense_stride_four(ckpt["model"]):
            raise MaskrtError(f"a {recipe.arch} checkpoint; this makes lite-fast from a lite one", path=args.checkpoint)
        recipe.arch = "lite-fast"
        model = build_model(recipe)
        loaded, _ = load_matching(model, ckpt["model"])
        images = spread_images(load_datasets(args.data), recipe.image_size, args.images)
    except MaskrtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = distil_stride_four(model, ckpt["model"], images, steps=args.steps, lr=args.lr)
    report["loaded_tensors"] = len(loaded)
    report["source"] = str(args.checkpoint)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.out, model, recipe, distilled=report)
    print(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
