"""The README's performance table: ``maskrt bench`` per preset (``lite``, ``r50-fpn``) at 512, runtime vs eager.

For each preset, a random-weight checkpoint is exported to ONNX (512x512, ``max_det`` 100) and measured
with the ``maskrt bench`` command itself (one process per preset):
the runtime on ``--backend`` (default ONNX Runtime CPU) and the PyTorch eager baseline of the same
checkpoint (``--torch``), timed in turns frame by frame (``--interleave``), on synthetic 512x512 scenes with 30 bubbles. The score threshold is 0.05,
so the untrained models return up to 100 instances per frame (a worst case for the mask work).
Writes ``results/scaling_presets.json`` (all rows), ``results/scaling_presets.md`` and ``.png``, and each
preset's own ``maskrt bench`` JSON in ``results/scaling_presets/``.

    python benchmarks/scaling_presets.py [--iters 10] [--threads 2] [--backend ort-cuda --device cuda]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaling_common import RESULTS, checkpoint, common_args, exported

from maskrt.runtime.bench import results_document, system_info, write_json, write_markdown, write_png
from maskrt.runtime.bench.runner import BenchRow

PRESETS = ("lite", "r50-fpn")
SIZE = 512
CONF = 0.05


def main(argv: list[str] | None = None) -> int:
    p = common_args(__doc__.splitlines()[0], iters=10)
    p.add_argument("--presets", nargs="+", default=list(PRESETS))
    p.add_argument("--size", type=int, default=SIZE)
    args = p.parse_args(argv)
    presets = args.presets[:1] if args.quick else args.presets
    iters = min(args.iters, 3) if args.quick else args.iters
    rows: list[BenchRow] = []
    for preset in presets:
        ckpt = checkpoint(preset)
        onnx = exported(ckpt, args.size, 100)
        out = RESULTS / "scaling_presets" / f"{preset}_{args.size}.json"  # per-preset parts, out of the summary
        cmd = [sys.executable, "-m", "maskrt", "-q", "bench", str(onnx), "--backend", args.backend,
               "--torch", str(ckpt), "--torch-device", args.device, "--conf", str(CONF),
               "--iters", str(iters), "--warmup", str(args.warmup), "--json", str(out), "--interleave"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        print(" ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        doc = json.loads(out.read_text(encoding="utf-8"))
        for r in doc["rows"]:
            row = BenchRow(**r)
            row.model = f"{preset}-{args.size}{Path(r['model']).suffix}"
            rows.append(row)
    config = {"benchmark": "scaling_presets", "presets": presets, "size": args.size, "conf": CONF,
              "warmup": args.warmup, "timed": f"{iters} timed frames per row", "threads": args.threads,
              "frames_desc": f"8 synthetic {args.size}x{args.size} scenes with 30 bubbles each, in rotation",
              "speedup": "over the PyTorch eager row of the same preset"}
    doc = results_document(rows, system_info(args.threads), config, baseline="torch-eager")
    path = write_json(args.out or RESULTS / "scaling_presets.json", doc)
    write_markdown(path.with_suffix(".md"), doc)
    write_png(path.with_suffix(".png"), doc)
    print(path.with_suffix(".md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
