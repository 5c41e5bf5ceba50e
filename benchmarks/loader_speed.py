"""Training-sample speed: decode + masks + augmentation per image, maskrt's mask warps vs torchvision's.

The data loader must keep up with the GPU: Mask R-CNN targets carry one full-size mask per instance, and
a dense 512x512 synthetic scene has 100-400 of them. This times, per sample and in the same run (the two
pipelines take turns sample by sample, with the same random draws):

- ``load``: JPEG decode, RLE decode of every mask, tight boxes (no augmentation) -- the baseline;
- ``torchvision``: the ``default`` augmentation with torchvision's own mask warps (a float
  ``grid_sample`` of every mask for the small rotation, ``NEAREST_EXACT`` interpolate for the zoom);
- ``maskrt``: the same augmentation as maskrt runs it (index gathers; bit-identical masks, tested).

    python benchmarks/loader_speed.py [--data data-out/synth-train] [--images 20] [--size 512]

Writes ``results/loader_speed.json``. Without ``--data`` it first renders ``--images`` mixed scenes.
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
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from maskrt.atomic import write_text
from maskrt.runtime.bench.sysinfo import cpu_model
from maskrt.train import augment as A
from maskrt.train.dataset import MaskDataset, load_datasets

RESULTS = Path(__file__).resolve().parent / "results"


class _TorchvisionScaleCropPad(A.ScaleCropPad):
    """ScaleCropPad with torchvision's resize / crop / pad for masks too (the reference path)."""

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, tv_tensors.Mask):
            return super().transform(inpt, params)
        nh, nw = params["resize"]
        ch, cw = params["canvas"]
        out = F.resize(inpt, [nh, nw], interpolation=v2.InterpolationMode.NEAREST_EXACT)
        if nh > ch or nw > cw:
            out = F.crop(out, params["top"] if nh > ch else 0, params["left"] if nw > cw else 0,
                         min(nh, ch), min(nw, cw))  # fmt: skip
        ph, pw = max(0, ch - nh), max(0, cw - nw)
        if ph or pw:
            top, left = (params["top"] if ph else 0), (params["left"] if pw else 0)
            out = F.pad(out, [left, top, pw - left, ph - top], fill=0)
        return out


def torchvision_augment(size: int) -> A.Augment:
    """maskrt's ``default`` augmentation with torchvision's mask warps swapped back in."""
    aug = A.build_augment("default", size)
    assert aug is not None and aug.geometric is not None
    swapped: list[Any] = []
    for t in aug.geometric.transforms:
        if isinstance(t, A.RandomRotation):
            swapped.append(v2.RandomRotation(t.degrees, fill={tv_tensors.Image: t.fill, "others": 0}))
        elif isinstance(t, A.ScaleCropPad):
            swapped.append(_TorchvisionScaleCropPad(t.size, t.scale, t.fill))
        else:
            swapped.append(t)
    aug.geometric = v2.Compose(swapped)
    return aug


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--out", type=Path, default=RESULTS / "loader_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(1)  # what a loader worker has
    data = args.data
    if data is None:
        from maskrt.train.synth import generate_dataset

        data = Path(tempfile.mkdtemp(prefix="maskrt-loader-")) / "mixed"
        generate_dataset(data, images=args.images, size=args.size, scene="mixed", seed=0)
    ds = load_datasets([str(data)])
    views = {
        "load": MaskDataset(ds, max_size=args.size),
        "torchvision": MaskDataset(ds, max_size=args.size, augment=torchvision_augment(args.size)),
        "maskrt": MaskDataset(ds, max_size=args.size, augment=A.build_augment("default", args.size)),
    }
    times: dict[str, list[float]] = {k: [] for k in views}
    n = min(args.images, len(ds.images))
    instances, identical = [], 0
    for i in range(-1, n):  # sample -1: warm-up
        idx = max(i, 0)
        out = {}
        for name, view in views.items():
            t = time.perf_counter()
            out[name] = view[(idx, 1000 + idx)]  # same seed: the same random draws in both pipelines
            if i >= 0:
                times[name].append(time.perf_counter() - t)
        if i >= 0:
            instances.append(len(ds.images[idx].annotations))
            a, b = out["torchvision"], out["maskrt"]
            identical += int(torch.equal(a[0], b[0]) and torch.equal(a[1]["masks"], b[1]["masks"]))
    ms = {k: round(1000 * statistics.median(v), 1) for k, v in times.items()}
    row = {
        "benchmark": "loader_speed",
        "machine": {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_avg_1m": os.getloadavg()[0], "torch": torch.__version__},
        "images": n,
        "size": args.size,
        "instances_per_image_median": statistics.median(instances),
        "identical_samples": f"{identical}/{n}",
        "median_ms_per_sample": ms,
        "augment_ms": {k: round(ms[k] - ms["load"], 1) for k in ("torchvision", "maskrt")},
        "speedup_per_sample": round(ms["torchvision"] / ms["maskrt"], 2),
        "speedup_augment_only": round((ms["torchvision"] - ms["load"]) / max(1e-6, ms["maskrt"] - ms["load"]), 2),
        "samples_per_s_per_worker": {k: round(1000 / v, 2) for k, v in ms.items()},
    }
    write_text(args.out, json.dumps(row, indent=2))
    keys = ("median_ms_per_sample", "speedup_per_sample", "speedup_augment_only", "identical_samples")
    print(json.dumps({k: row[k] for k in keys}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
