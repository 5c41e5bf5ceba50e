"""Weight-space interpolation of two checkpoints of one model (WiSE-FT, Wortsman et al. 2022).

    python tools/interpolate_weights.py BASE FINETUNED --alpha 0.6 --out runs/soup/last.pt

Writes ``(1 - alpha) * BASE + alpha * FINETUNED`` for every floating-point tensor (integer buffers from
FINETUNED) with FINETUNED's recipe: a fine-tune that forgets part of what BASE knew gives back some of it, at
a fraction of its gain. Both must be the same architecture and classes. BatchNorm statistics should be equal in
both (a fine-tune with ``--freeze-bn``): averaged weights under averaged statistics are not a model either
normalised for, so a difference is refused unless ``--allow-bn-change``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def interpolate(base: dict[str, Any], tuned: dict[str, Any], alpha: float, allow_bn_change: bool = False) -> dict:
    """The interpolated checkpoint (FINETUNED's recipe); raises ``MaskrtError`` on checkpoints that do not match."""
    import torch

    from maskrt.errors import MaskrtError

    if not 0.0 <= alpha <= 1.0:
        raise MaskrtError(f"--alpha {alpha} is outside 0..1; pass the share of the fine-tuned weights")
    ra, rb = base.get("recipe", {}), tuned.get("recipe", {})
    for key in ("arch", "classes"):
        if ra.get(key) != rb.get(key):
            raise MaskrtError(f"the checkpoints differ in {key} ({ra.get(key)} vs {rb.get(key)}); interpolate two "
                              "checkpoints of one model")
    sa, sb = base["model"], tuned["model"]
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sb):
        raise MaskrtError("the checkpoints have different tensors; interpolate two checkpoints of one model")
    stats = [k for k in sb if k.endswith(("running_mean", "running_var"))]
    if not allow_bn_change and any(not torch.equal(sa[k], sb[k]) for k in stats):
        raise MaskrtError("BatchNorm statistics differ between the checkpoints; fine-tune with --freeze-bn, or pass "
                          "--allow-bn-change")
    state = {
        k: (sa[k].double() * (1 - alpha) + sb[k].double() * alpha).to(sb[k].dtype) if sb[k].is_floating_point()
        else sb[k].clone()
        for k in sb
    }
    extra = {k: v for k, v in tuned.items() if k in ("recipe", "maskrt_version", "args")}
    return {**extra, "model": state, "metrics": {}, "interpolated": {"alpha": alpha}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("finetuned", type=Path)
    ap.add_argument("--alpha", type=float, required=True, help="share of the fine-tuned weights (0..1)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--allow-bn-change", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from maskrt.atomic import atomic_path
    from maskrt.errors import MaskrtError
    from maskrt.paths import refuse_overwriting_inputs
    from maskrt.train.checkpoint import load_checkpoint

    try:
        refuse_overwriting_inputs([args.base, args.finetuned], files=[args.out], fix="pass another --out")
        ckpt = interpolate(load_checkpoint(args.base), load_checkpoint(args.finetuned), args.alpha,
                           args.allow_bn_change)
        ckpt["interpolated"].update(base=str(args.base), finetuned=str(args.finetuned))
    except MaskrtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        torch.save(ckpt, tmp)
    print(f"wrote {args.out}: {1 - args.alpha:.2f} x {args.base} + {args.alpha:.2f} x {args.finetuned}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
