"""Where a frame goes on OpenVINO: its per-layer profile (``PERF_COUNT``), summed by model part.

    python benchmarks/openvino_profile.py runs/cmp/light-int8.onnx runs/cmp/teacher-int8.onnx \\
        --frames tests/data/boiling-bottom-videosam/images/train_0010.png \\
        --frames tests/data/boiling-bottom-videosam/images/train_0600.png --rounds 2 --top 12

Each model is compiled as the runtime compiles it on a CPU (f32 inference precision, so that the float parts of an
INT8 file stay f32), run ``--repeat`` times per frame, and the median time of each layer kept. Layers are grouped by
the module path the export traced (``/backbone/body``, ``/backbone/fpn``, ``/rpn``, the box and mask branches of
``/roi_heads``, ``/phase_head``, the rest). With ``--rounds`` above 1 the models take turns, so that a busy machine
slows each alike. The layer sum is not the wall time (layers overlap a little on 2 threads), but its split is.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

GROUPS = (
    ("mask branch", ("mask",)),
    ("box branch", ("box_head", "box_predictor", "box_roi_pool")),
    ("phase head", ("phase",)),
    ("rpn", ("/rpn",)),
    ("fpn", ("/fpn",)),
    ("backbone body", ("/body",)),
)


def group_of(name: str) -> str:
    """The model part a layer (an OpenVINO node name from the traced module path) belongs to."""
    for group, keys in GROUPS:
        if any(k in name for k in keys):
            return group
    return "other"


def profile(path: Path, frame: np.ndarray, repeat: int, threads: int) -> dict[tuple[str, str, str], float]:
    """Median milliseconds per layer ``(name, type, kernel)`` of ``repeat`` runs of ``path`` on ``frame``."""
    import openvino as ov

    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {
        "PERF_COUNT": "YES", "INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
    shape = list(compiled.inputs[0].shape)  # maskrt artifacts: uint8 NHWC BGR
    import cv2

    x = cv2.resize(frame, (int(shape[2]), int(shape[1])))[None].astype(np.uint8)
    req = compiled.create_infer_request()
    times: dict[tuple[str, str, str], list[float]] = collections.defaultdict(list)
    req.infer({0: x})  # warm-up
    for _ in range(repeat):
        req.infer({0: x})
        for p in req.profiling_info:
            times[(p.node_name, p.node_type, p.exec_type)].append(p.real_time.total_seconds() * 1000)
    return {k: float(np.median(v)) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path, help="ONNX artifacts (maskrt export)")
    ap.add_argument("--frames", action="append", required=True, help="an image file (repeatable)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1, help="models take turns this many times")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top", type=int, default=0, help="also list the slowest layers of each model's last run")
    ap.add_argument("--json", type=Path, help="write every group sum here")
    args = ap.parse_args(argv)
    try:
        import cv2
        import openvino  # noqa: F401
    except ImportError as exc:
        print(f"error: {exc.name} is not installed; pip install 'maskrt[openvino]'", file=sys.stderr)
        return 2
    frames = []
    for f in args.frames:
        img = cv2.imread(f)
        if img is None:
            print(f"error: {f}: not an image OpenCV can read; pass a PNG or JPEG frame", file=sys.stderr)
            return 2
        frames.append((f, img))
    for m in args.models:
        if not m.is_file():
            print(f"error: {m}: no such model; pass an ONNX artifact from maskrt export", file=sys.stderr)
            return 2
    rows = []
    for rnd in range(args.rounds):
        for m in args.models:
            for name, img in frames:
                layers = profile(m, img, args.repeat, args.threads)
                groups: dict[str, float] = collections.Counter()
                for (node, _t, _k), ms in layers.items():
                    groups[group_of(node)] += ms
                total = sum(groups.values())
                rows.append({"round": rnd, "model": str(m), "frame": name, "total_ms": total, **groups})
                split = "  ".join(f"{g} {v:.1f} ({100 * v / total:.0f}%)" for g, v in
                                  sorted(groups.items(), key=lambda kv: -kv[1]))
                print(f"round {rnd} {m.name} {Path(name).name}: {total:.1f} ms  {split}")
                if args.top and rnd == args.rounds - 1:
                    for (node, typ, kernel), ms in sorted(layers.items(), key=lambda kv: -kv[1])[: args.top]:
                        print(f"    {ms:7.2f} ms  {typ:24s} {kernel:22s} {node[:80]}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
