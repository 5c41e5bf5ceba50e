"""Calibrate a checkpoint's phase map on validation frames: one logit offset, folded into its last bias.

    python tools/calibrate_phase.py runs/phase/last.pt --data my/val-frames --out runs/phase/calibrated.pt

The runtime reads the phase map as dispersed phase where its probability is above 0.5 (``void_fraction``,
the overlay, ``maskrt run``'s statistics). A head trained on synthetic scenes and real frames together learns
the synthetic masks' edge as well as the real one; where the two differ, its 0.5 level sits off the edge that
your annotations draw, and the void fraction is biased the same way on every frame. This finds the one offset of
the logits (the threshold ``sigmoid(offset)``) that maximises the union IoU pooled over ``--data`` (as validation
scores the map; or, with ``--objective void``, minimises the mean absolute void-fraction error, which dense frames
dominate), and subtracts it from the bias of the phase head's last layer, so 0.5 means that threshold; every other
weight, and so every instance, stays as it was.

Calibrate on validation frames, never on the frames you report results on. ``--data`` takes what ``maskrt
train --data`` takes (images + masks, COCO, ...): the truth is the union of each image's instance masks.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="a maskrt checkpoint with a phase head")
    ap.add_argument("--data", action="append", required=True, help="validation data (repeat for several)")
    ap.add_argument("--out", type=Path, required=True, help="the calibrated checkpoint (a new file)")
    ap.add_argument("--objective", default="iou", help="iou (pooled union IoU, default) or void (mean abs. "
                    "void-fraction error)")
    ap.add_argument("--imgsz", type=int, default=None, help="input size (default: the checkpoint's)")
    ap.add_argument("--max-offset", type=float, default=3.0, help="largest logit offset tried (default 3)")
    args = ap.parse_args(argv)

    import torch

    from maskrt.atomic import atomic_path
    from maskrt.errors import MaskrtError
    from maskrt.paths import refuse_overwriting_inputs
    from maskrt.train.checkpoint import load_checkpoint, load_model
    from maskrt.train.dataset import load_datasets
    from maskrt.train.evaluate import phase_maps
    from maskrt.train.models import set_input_size
    from maskrt.train.phase import PHASE_OBJECTIVES, choose_phase_offset, phase_scores, shift_phase_logits

    try:
        if args.objective not in PHASE_OBJECTIVES:
            raise MaskrtError(f"--objective {args.objective}: use {' or '.join(PHASE_OBJECTIVES)}")
        refuse_overwriting_inputs([args.checkpoint, *map(Path, args.data)], files=[args.out],
                                  fix="pass another --out")
        ckpt = load_checkpoint(args.checkpoint)
        if not ckpt["recipe"].get("phase"):
            raise MaskrtError("the checkpoint has no phase head; train one with `maskrt train --phase-only`",
                              path=args.checkpoint)
        model, _recipe, _ = load_model(ckpt, "cpu")
        if args.imgsz:
            set_input_size(model, int(args.imgsz))
        ds = load_datasets(args.data)
        if not ds.images:
            raise MaskrtError("no usable images to calibrate on; run `maskrt data check` on it", path=args.data[0])
        maps = phase_maps(model, ds)
        before = phase_scores(maps, 0.5)
        offset, after = choose_phase_offset(maps, args.objective, max_offset=args.max_offset)
    except MaskrtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    shift_phase_logits(model, offset)
    threshold = 1.0 / (1.0 + math.exp(-offset))
    state = model.state_dict()
    out = {k: v for k, v in ckpt.items() if k in ("recipe", "maskrt_version", "args", "metrics", "iteration", "epoch")}
    out["model"] = {k: v.to(ckpt["model"][k].dtype) for k, v in state.items()}
    out["phase_calibrated"] = {
        "offset": offset, "threshold": threshold, "objective": args.objective, "data": list(args.data),
        "source": str(args.checkpoint), "before": before, "after": after,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        torch.save(out, tmp)
    print(f"{len(maps)} images: phase map at 0.5: IoU {before['iou']:.3f}, void fraction abs. error "
          f"{before['void_abs_err']:.4f}; at {threshold:.3f} (logit offset {offset:+.2f}): IoU {after['iou']:.3f}, "
          f"void error {after['void_abs_err']:.4f}")
    print(f"wrote {args.out}: the phase head's last bias shifted by {-offset:+.2f}, every other weight as in "
          f"{args.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
