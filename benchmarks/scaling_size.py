"""Latency versus input size (320, 512, 640, 800) for the ``lite`` preset: maskrt runtime vs PyTorch eager.

Each size gets an ONNX export of the same random-weight checkpoint and a pair of rows on synthetic
bubble scenes of that size: the runtime (``--backend``, default ONNX Runtime CPU) and PyTorch eager
at the same input size, score threshold and ``max_det``, timed in turns frame by frame (so a shared
machine's load falls on both alike), with the speed-up of the first over the second.
The score threshold is low (0.05) so that the untrained model yields its full ``max_det`` detections,
a worst case for the mask work; the instance column shows what each row really produced.

    python benchmarks/scaling_size.py [--iters 5] [--threads 2] [--backend ort-cuda --device cuda]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaling_common import checkpoint, common_args, exported, pair_rows, save

from maskrt.runtime.bench import synthetic_frames

SIZES = (320, 512, 640, 800)
CONF = 0.05
MAX_DET = 100
BUBBLES = 30


def main(argv: list[str] | None = None) -> int:
    p = common_args(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--arch", default="lite")
    args = p.parse_args(argv)
    sizes = args.sizes[:2] if args.quick else args.sizes
    ckpt = checkpoint(args.arch)
    rows = []
    for size in sizes:
        frames = synthetic_frames(3 if args.quick else 6, (size, size), BUBBLES, seed=size)
        rows += pair_rows(exported(ckpt, size, MAX_DET), ckpt, frames, f"{args.arch}-{size}", backend=args.backend,
                          size=size, conf=CONF, max_det=MAX_DET, iters=args.iters, warmup=args.warmup,
                          threads=args.threads, device=args.device)
    config = {"arch": args.arch, "sizes": sizes, "conf": CONF, "max_det": MAX_DET, "warmup": args.warmup,
              "timed": f"{args.iters} timed frames per row", "threads": args.threads,
              "frames_desc": f"synthetic square scenes of each size, {BUBBLES} bubbles, in rotation",
              "speedup": "runtime row over the eager row of the same size, timed in turns frame by frame"}
    save("scaling_size", rows, config, args.threads, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
