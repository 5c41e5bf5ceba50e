"""Cost versus instances per frame (10, 50, 100): the host stages alone, and the whole frame vs PyTorch eager.

Part 1, host stages (torch-free): synthetic model outputs with exactly N detections (the artifact
contract's arrays: boxes around bubbles, 28x28 disk-shaped mask probabilities) go through the runtime's
postprocess (mask paste inside each box), the measurements and the overlay, at 512x512 and 1024x1024
frames. No model runs, so the instance count is exact.

Part 2, whole frame: the ``lite`` model (random weights) exported at 512x512 with ``max_det = N`` and a
low score threshold, so it returns N detections, on scenes with N bubbles; the runtime row is timed
against PyTorch eager at the same N (``detections_per_img = N``) with the same draw, the two taking turns
frame by frame.

    python benchmarks/scaling_instances.py [--iters 5] [--host-iters 30] [--threads 2] [--skip-model]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaling_common import checkpoint, common_args, exported, pair_rows, save

from maskrt.runtime.bench import BenchRow, measure, synthetic_frames
from maskrt.runtime.bench.runner import fill

COUNTS = (10, 50, 100)
FRAME_SIZES = (512, 1024)
INPUT = 512
CONF = 0.05


def synthetic_outputs(n: int, input_size: int = INPUT, mask_size: int = 28, seed: int = 0) -> dict[str, np.ndarray]:
    """Model outputs (artifact contract, batch 1, ``max_det = n``) with ``n`` valid bubble detections."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(6, max(8.0, input_size / (2.5 * np.sqrt(n))), n)
    cx, cy = rng.uniform(r, input_size - r), rng.uniform(r, input_size - r)
    boxes = np.stack([cx - r, cy - r, cx + r, cy + r], axis=1).astype(np.float32)
    yy, xx = np.mgrid[0:mask_size, 0:mask_size].astype(np.float32) + 0.5
    dist = np.hypot(xx - mask_size / 2, yy - mask_size / 2) / (mask_size / 2)
    disk = 1.0 / (1.0 + np.exp((dist - 0.85) * 12.0))  # soft disk, like a mask head's probabilities
    masks = np.repeat(disk[None, None], n, axis=0).astype(np.float32)
    return {
        "boxes": boxes[None], "scores": np.sort(rng.uniform(0.5, 1.0, n)).astype(np.float32)[::-1][None].copy(),
        "labels": np.ones((1, n), np.int32), "masks": masks[None], "num_dets": np.array([n], np.int32),
    }


class HostStages:
    """A frame model without a network: postprocess synthetic outputs and measure the instances."""

    def __init__(self, n: int) -> None:
        self.outputs = synthetic_outputs(n)
        self.timings: dict[str, float] = {}

    def __call__(self, frame: np.ndarray) -> object:
        from maskrt.runtime.measure import frame_stats, measure_instances
        from maskrt.runtime.postprocess import postprocess

        hw = (int(frame.shape[0]), int(frame.shape[1]))
        t0 = time.perf_counter()
        inst = postprocess(self.outputs, INPUT / max(hw), hw, ["bubble"], conf=0.0)
        t1 = time.perf_counter()
        frame_stats(inst, hw, measurements=measure_instances(inst))
        t2 = time.perf_counter()
        self.timings = {"postprocess": (t1 - t0) * 1e3, "measure": (t2 - t1) * 1e3}
        return inst


def host_rows(counts: list[int], sizes: list[int], iters: int) -> list[BenchRow]:
    rows = []
    for size in sizes:
        frames = synthetic_frames(2, (size, size), 30, seed=size)
        for n in counts:
            row = BenchRow(model=f"host-{size}px-n{n}", backend="host stages", input_size=[size, size])
            fill(row, measure(HostStages(n), frames, warmup=2, iters=iters))
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = common_args(__doc__.splitlines()[0])
    p.add_argument("--counts", type=int, nargs="+", default=list(COUNTS))
    p.add_argument("--host-iters", type=int, default=30)
    p.add_argument("--skip-model", action="store_true", help="only the host stages (no torch needed)")
    args = p.parse_args(argv)
    counts = args.counts[::2] if args.quick else args.counts
    rows = host_rows(counts, list(FRAME_SIZES), 5 if args.quick else args.host_iters)
    if not args.skip_model:
        ckpt = checkpoint("lite")
        for n in counts:
            frames = synthetic_frames(3 if args.quick else 6, (INPUT, INPUT), n, seed=n)
            rows += pair_rows(exported(ckpt, INPUT, n), ckpt, frames, f"lite-{INPUT}-n{n}", backend=args.backend,
                              size=INPUT, conf=CONF, max_det=n, iters=args.iters, warmup=args.warmup,
                              threads=args.threads, device=args.device)
    config = {"counts": counts, "input": INPUT, "conf": CONF, "warmup": args.warmup, "threads": args.threads,
              "timed": f"{args.iters} timed frames per model row, {args.host_iters} per host row",
              "frames_desc": "synthetic scenes (host rows: 2 scenes per frame size; model rows: N bubbles each)",
              "speedup": "runtime row over the eager row with the same N, timed in turns frame by frame"}
    save("scaling_instances", rows, config, args.threads, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
