"""A separable RPN convolution on the stride-4 level only: three ways to get its weights, scored on held-out scenes.

    python benchmarks/separable_rpn.py train/models/bubbles-lite.pt \\
        --data data-out/real-boiling-train --data data-out/synth-mixed-classic --data data-out/synth-bottom \\
        --heldout data-out/bundle/heldout-boiling-side --heldout data-out/bundle/heldout-boiling-bottom \\
        --heldout data-out/bundle/heldout-droplets --out results/separable_rpn.json   # these are the defaults

(about 50 minutes on 2 cores with the defaults; ``--quick`` for a smoke run). The model is the checkpoint's
``lite`` model with the RPN head's 3x3 convolution on the stride-4 map replaced by a depthwise 3x3 + pointwise 1x1
(:class:`maskrt.train.models.StrideFourLightRPNHead`); the FPN and everything after it are the checkpoint's, so
RoI features, masks and the phase map do not change, only the proposals. Its weights, each stage starting from the
one before:

1. ``fit``: the dense kernel's per-channel rank-1 factorisation, then a least-squares fit to the dense
   convolution's pre-activation output on ``--fit-images`` images (:mod:`maskrt.train.lite_fast`);
2. ``outputs``: fitted to the RPN's outputs instead (objectness logits and box deltas after the ReLU and the shared
   1x1 heads, weighted by the dense model's objectness), on crops of cached stride-4 maps;
3. ``rpn-loss``: trained on the RPN's own training loss (objectness and box regression against the ground truth
   boxes) plus ``--kd`` x the output fit, on cached FPN features of ``--train-images`` images.

Only the separable convolution learns in every stage. Each row is the held-out mask AP50 of each ``--heldout``
dataset (PyTorch, the checkpoint's classes), next to the dense model's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("separable_rpn")

DEFAULT_DATA = ("data-out/real-boiling-train", "data-out/synth-mixed-classic", "data-out/synth-bottom")
DEFAULT_HELDOUT = tuple(f"data-out/bundle/heldout-{s}" for s in ("boiling-side", "boiling-bottom", "droplets"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, nargs="?", default=Path("train/models/bubbles-lite.pt"))
    ap.add_argument("--data", action="append", default=None,
                    help=f"training data folder/file (repeatable; default: {' '.join(DEFAULT_DATA)})")
    ap.add_argument("--heldout", action="append", default=None,
                    help=f"held-out dataset to score (repeatable; default: {' '.join(DEFAULT_HELDOUT)})")
    ap.add_argument("--fit-images", type=int, default=32)
    ap.add_argument("--fit-steps", type=int, default=1500)
    ap.add_argument("--output-images", type=int, default=64)
    ap.add_argument("--output-steps", type=int, default=3000)
    ap.add_argument("--train-images", type=int, default=96)
    ap.add_argument("--train-steps", type=int, default=800)
    ap.add_argument("--kd", type=float, default=0.1, help="weight of the output fit in the rpn-loss stage")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 images and 3 steps per stage")
    ap.add_argument("--out", type=Path, default=Path("results/separable_rpn.json"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.data = args.data or list(DEFAULT_DATA)
    args.heldout = args.heldout or list(DEFAULT_HELDOUT)
    missing = [p for p in args.data + args.heldout if not Path(p).exists()]
    if missing:  # run_all.py runs every script bare: without the data this one has nothing to measure
        print(f"skipped: {', '.join(missing)} not found (make the data as in the Makefile's REAL_DATA_CMD and "
              "tools/bundle_model.py's held-out scenes, or pass --data / --heldout)")
        return 0
    if args.quick:
        for name in ("fit", "output", "train"):
            setattr(args, f"{name}_images", 2)
            setattr(args, f"{name}_steps", 3)

    import torch

    from maskrt.errors import MaskrtError
    from maskrt.train.checkpoint import load_checkpoint, recipe_of
    from maskrt.train.dataset import MaskDataset, align_classes, load_datasets
    from maskrt.train.models import build_model, load_matching

    torch.set_num_threads(args.threads)
    try:
        ckpt = load_checkpoint(args.checkpoint)
        recipe = recipe_of(ckpt, args.checkpoint)
        if recipe.arch != "lite":
            raise MaskrtError(f"a {recipe.arch} checkpoint; this measures a change of a lite one",
                              path=args.checkpoint)
        train = align_classes(load_datasets(args.data), recipe.classes)
        heldout = {Path(h).name: align_classes(load_datasets([h]), recipe.classes) for h in args.heldout}
    except MaskrtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = build_model(recipe)
    load_matching(model, ckpt["model"])
    model.eval()
    view = MaskDataset(train, max_size=recipe.image_size)
    stages = SeparableRpnStages(model, ckpt["model"])
    rows: dict[str, Any] = {"dense": stages.score(heldout, dense=True)}
    log.info("dense: %s", rows["dense"])
    t0 = time.perf_counter()
    for name, run in (
        ("fit", lambda: stages.fit(_spread(view, args.fit_images), args.fit_steps)),
        ("outputs", lambda: stages.fit_outputs(_spread(view, args.output_images), args.output_steps)),
        ("rpn-loss", lambda: stages.train_rpn_loss(view, args.train_images, args.train_steps, args.kd)),
    ):
        detail = run()
        rows[name] = {**stages.score(heldout), **detail, "wall_s": round(time.perf_counter() - t0, 1)}
        log.info("%s: %s", name, rows[name])
    report = {"checkpoint": str(args.checkpoint), "data": args.data, "heldout_mask_ap50": rows,
              "settings": {k: v for k, v in vars(args).items() if k.endswith(("_images", "_steps")) or k == "kd"}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    md = ["| RPN stride-4 convolution | " + " | ".join(heldout) + " |", "|---" * (len(heldout) + 1) + "|"]
    md += [f"| {name} | " + " | ".join(f"{row[h]:.3f}" for h in heldout) + " |" for name, row in rows.items()]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def _spread_indices(total: int, n: int) -> list[int]:
    """``n`` indices evenly spread over ``total`` items (every source of a merged dataset gets its share)."""
    return [int((i + 0.5) * total / n) for i in range(min(n, total))]


def _spread(view: Any, n: int) -> list[Any]:
    """``n`` images evenly spread over ``view``."""
    return [view[i][0] for i in _spread_indices(len(view), n)]


class SeparableRpnStages:
    """The ``lite`` model with a separable stride-4 RPN convolution, and the stages that set its weights."""

    def __init__(self, model: Any, state: dict[str, Any]) -> None:
        from maskrt.train import lite_fast
        from maskrt.train.models import StrideFourLightRPNHead

        self.model = model
        self.dense_head = model.rpn.head
        self.dense = lite_fast._dense(state, lite_fast.DENSE_RPN)
        head = self.dense_head
        fast = StrideFourLightRPNHead(head.conv[0][0].in_channels, head.cls_logits.out_channels)
        fast.conv, fast.cls_logits, fast.bbox_pred = head.conv, head.cls_logits, head.bbox_pred
        self.kernel_error = lite_fast.factorise(fast.conv_fine, self.dense)
        self.fast = fast
        for p in model.parameters():
            p.requires_grad_(False)

    def _stride_four(self, images: list[Any]) -> list[Any]:
        import torch

        with torch.no_grad():
            return [self.model.backbone(self.model.transform([im])[0].tensors)["0"] for im in images]

    def fit(self, images: list[Any], steps: int) -> dict[str, float]:
        """Least squares to the dense convolution's pre-activation output (``lite_fast``'s fit)."""
        from torch import nn

        from maskrt.train import lite_fast

        sep = self.fast.conv_fine
        _, after = lite_fast._fit(nn.Sequential(sep[0], sep[1]), self.dense, self._stride_four(images), steps,
                                  3e-3)
        return {"kernel_error": round(self.kernel_error, 4), "output_error": round(after, 4)}

    def _targets(self, p2: Any) -> tuple[Any, Any, Any]:
        """The dense convolution's RPN outputs on ``p2`` (objectness logits, box deltas) and the anchors' weights."""
        import torch
        import torch.nn.functional as F

        head = self.dense_head
        with torch.no_grad():
            t = F.relu(self.dense(p2))
            obj = head.cls_logits(t)
            return obj, head.bbox_pred(t), torch.sigmoid(obj) + 0.02

    def _output_loss(self, p2: Any, targets: tuple[Any, Any, Any] | None = None) -> Any:
        """The RPN's outputs (objectness logits, box deltas) of the separable convolution against the dense one's
        (``targets``, or computed here), weighted by the dense objectness so that the anchors that become proposals
        count most."""
        head = self.dense_head
        obj, deltas, w = targets if targets is not None else self._targets(p2)
        s = self.fast.conv_fine(p2)
        w4 = w.repeat_interleave(4, dim=1)
        return ((w * (head.cls_logits(s) - obj) ** 2).mean() / w.mean()
                + 10 * (w4 * (head.bbox_pred(s) - deltas).abs()).mean() / w4.mean())

    def _optimiser(self, lr: float, steps: int, seed: int) -> tuple[Any, Any, Any]:
        """Adam on the separable convolution alone (cosine schedule), and the stage's random generator."""
        import torch

        params = list(self.fast.conv_fine.parameters())
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=lr)
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1)), torch.Generator().manual_seed(seed)

    def fit_outputs(self, images: list[Any], steps: int, crop: int = 96) -> dict[str, float]:
        import torch

        maps = self._stride_four(images)
        opt, sched, g = self._optimiser(2e-3, steps, seed=0)
        loss = torch.zeros(())
        for _ in range(steps):
            batch = []
            for i in torch.randint(len(maps), (4,), generator=g).tolist():
                m = maps[i]
                y = int(torch.randint(0, max(m.shape[-2] - crop, 0) + 1, (1,), generator=g))
                x = int(torch.randint(0, max(m.shape[-1] - crop, 0) + 1, (1,), generator=g))
                batch.append(m[..., y:y + crop, x:x + crop])
            loss = self._output_loss(torch.cat(batch))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        return {"last_loss": round(float(loss.detach()), 4)}

    def train_rpn_loss(self, view: Any, n: int, steps: int, kd: float) -> dict[str, float]:
        import torch
        from torchvision.models.detection.image_list import ImageList

        model = self.model
        cache = []
        with torch.no_grad():
            for i in _spread_indices(len(view), n):
                image, target = view[i]
                batch, targets = model.transform([image], [{"boxes": target["boxes"], "labels": target["labels"]}])
                feats = dict(model.backbone(batch.tensors))
                # the dense convolution's outputs on each cached map, once, not at every step
                cache.append((batch.tensors, batch.image_sizes, feats, targets[0], self._targets(feats["0"])))
        model.rpn.head = self.fast
        opt, sched, g = self._optimiser(1e-3, steps, seed=1)
        model.rpn.train()
        last: dict[str, float] = {}
        try:
            for _ in range(steps):
                tensors, sizes, feats, target, dense_out = cache[int(torch.randint(len(cache), (1,), generator=g))]
                _, losses = model.rpn(ImageList(tensors, sizes), dict(feats), [target])
                distil = self._output_loss(feats["0"], dense_out)
                loss = losses["loss_objectness"] + losses["loss_rpn_box_reg"] + kd * distil
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                last = {k: round(float(v.detach()), 4) for k, v in losses.items()}
        finally:
            model.rpn.eval()
        return last

    def score(self, heldout: dict[str, Any], dense: bool = False) -> dict[str, float]:
        """Held-out mask AP50 per dataset, with the dense or the separable stride-4 convolution."""
        from maskrt.train.evaluate import evaluate_model

        self.model.rpn.head = self.dense_head if dense else self.fast
        self.model.eval()
        try:
            return {name: round(float(evaluate_model(self.model, ds)["segm"]["AP50"]), 4)
                    for name, ds in heldout.items()}
        finally:
            self.model.rpn.head = self.fast


if __name__ == "__main__":
    sys.exit(main())
