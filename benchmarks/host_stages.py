"""Cost of the runtime's host stages (preprocess, postprocess/paste, measure, draw) against inference.

The question it answers: does the host work around the network stay small? Target: host stages under
15% of the frame time for ``lite`` at 512x512 on 2 CPU threads, at realistic instance counts.

* inference: the real ONNX Runtime session (a random-weight ``lite`` exported at 512, cached in
  ``benchmarks/results/models/``, or ``--model``), median over ``--iters`` runs on a synthetic frame;
* host stages: on model outputs synthesised with exactly N instances (10, 30, 100) of bubble-like
  masks, so the host cost is measured at the instance count a lab actually sees, not at whatever a
  random-weight model happens to detect;
* the 1024x1024 frame with 100 instances: postprocess cost as a fraction of inference, and against a
  baseline measured in the same run: pasting every mask into a full frame (what torchvision does).

Writes ``benchmarks/results/host_stages.json``; speeds are reported as ratios to the same run's inference.

    python benchmarks/host_stages.py            # ~1-2 minutes on 2 shared cores (first run exports a model)
    python benchmarks/host_stages.py --quick
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskrt.atomic import write_text
from maskrt.runtime import Segmenter, draw_overlay, frame_stats, measure_instances
from maskrt.runtime.bench.scenes import render_scene

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGET = 0.15


def timed(fn: Callable[[], Any], iters: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(statistics.median(times))


def synthetic_outputs(n: int, input_size: int, mask_size: int, max_det: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Model outputs with ``n`` bubble-like detections (ellipses, soft edges) in input pixels."""
    rng = np.random.default_rng(seed)
    d = max(max_det, n)
    boxes = np.zeros((1, d, 4), np.float32)
    masks = np.zeros((1, d, mask_size, mask_size), np.float32)
    r_hi = max(6.0, input_size * 0.5 / np.sqrt(max(n, 1)))
    for k in range(n):
        r = rng.uniform(max(3.0, 0.35 * r_hi), r_hi)
        cx, cy = rng.uniform(r, input_size - r, size=2)
        rx, ry = r, r * rng.uniform(0.7, 1.0)
        boxes[0, k] = (cx - rx, cy - ry, cx + rx, cy + ry)
        m = np.zeros((mask_size * 4, mask_size * 4), np.float32)
        c = mask_size * 2
        cv2.ellipse(m, (c, c), (int(c * 0.9), int(c * 0.9 * ry / rx)), 0, 0, 360, 1.0, -1)
        masks[0, k] = cv2.resize(cv2.GaussianBlur(m, (0, 0), 3), (mask_size, mask_size), interpolation=cv2.INTER_AREA)
    scores = np.zeros((1, d), np.float32)
    scores[0, :n] = np.sort(rng.uniform(0.6, 0.99, n))[::-1]
    labels = np.zeros((1, d), np.int32)
    labels[0, :n] = 1
    return {"boxes": boxes, "scores": scores, "labels": labels, "masks": masks,
            "num_dets": np.array([n], np.int32)}


def fullframe_paste(outputs: dict[str, np.ndarray], scale: float, frame_hw: tuple[int, int]) -> np.ndarray:
    """Baseline: torchvision's way, every mask pasted into its own full-frame array."""
    from maskrt.runtime.paste import expanded_boxes, paste_mask

    n = int(outputs["num_dets"][0])
    boxes = outputs["boxes"][0, :n] / scale
    out = np.zeros((n, *frame_hw), dtype=bool)
    for i, (p, b) in enumerate(zip(outputs["masks"][0, :n], expanded_boxes(boxes, outputs["masks"].shape[-1]))):
        (x0, y0, x1, y1), crop = paste_mask(p, b, frame_hw)
        full = np.zeros(frame_hw, dtype=bool)
        full[y0:y1, x0:x1] = crop
        out[i] = full
    return out


def host_case(seg: Segmenter, frame_hw: tuple[int, int], n: int, iters: int, infer_ms: float) -> dict[str, Any]:
    """Host-stage times for one frame size and instance count, and their share of the frame time."""
    size = seg.input_hw[0]
    frame = render_scene(frame_hw, n, seed=n)
    outputs = synthetic_outputs(n, size, seg.meta.mask_size, seg.meta.max_det, seed=n)
    _, scale = seg.preprocess(frame)
    inst = seg.postprocess(outputs, scale, frame_hw)
    pre = timed(lambda: seg.preprocess(frame), iters)
    post = timed(lambda: seg.postprocess(outputs, scale, frame_hw), iters)
    meas = timed(lambda: frame_stats(inst, frame_hw, measurements=measure_instances(inst)), iters)
    draw = timed(lambda: draw_overlay(frame, inst, status="30.0 FPS"), iters)
    host = pre + post + meas + draw
    row: dict[str, Any] = {
        "frame": f"{frame_hw[1]}x{frame_hw[0]}", "instances": len(inst), "preprocess_ms": round(pre, 3),
        "postprocess_ms": round(post, 3), "measure_ms": round(meas, 3), "draw_ms": round(draw, 3),
        "host_ms": round(host, 3), "infer_ms": round(infer_ms, 2),
        "host_fraction": round(host / (host + infer_ms), 4),
        "postprocess_vs_infer": round(post / infer_ms, 4),
    }
    if frame_hw == (1024, 1024):
        base = timed(lambda: fullframe_paste(outputs, scale, frame_hw), max(3, iters // 3))
        row["fullframe_paste_ms"] = round(base, 3)
        row["postprocess_speedup_vs_fullframe"] = round(base / post, 2)
    return row


def default_model(size: int) -> Path:
    """A random-weight ``lite`` export at ``size`` (shared cache of the scaling benchmarks)."""
    sys.path.insert(0, str(HERE))
    import scaling_common

    return scaling_common.exported(scaling_common.checkpoint("lite"), size)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: random-weight lite at 512)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iters", type=int, default=15, help="timed repetitions per measurement")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    p.add_argument("--out", type=Path, default=RESULTS / "host_stages.json")
    args = p.parse_args()
    iters = 3 if args.quick else args.iters
    model = args.model or default_model(512)
    seg = Segmenter(model, device="cpu", threads=args.threads, conf=0.5)
    size = seg.input_hw[0]
    frame = render_scene((size, size), 30, seed=1)
    x, _ = seg.preprocess(frame)
    infer_ms = timed(lambda: seg.infer(x), max(3, iters // 2), warmup=2)

    cases = [((size, size), n) for n in (10, 30, 100)] + [((1024, 1024), 100), ((1024, 1280), 30)]
    rows = [host_case(seg, hw, n, iters, infer_ms) for hw, n in cases]

    doc = {
        "benchmark": "host_stages",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "system": {"machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version(),
                   "threads": args.threads, "backend": seg.backend.name},
        "config": {"model": str(model), "arch": seg.meta.arch, "input_size": size, "iters": iters,
                   "target_host_fraction": TARGET},
        "rows": rows,
        "passed": all(r["host_fraction"] < TARGET for r in rows if r["frame"] == f"{size}x{size}"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text(args.out, json.dumps(doc, indent=2))
    print(f"inference ({seg.meta.arch} {size}x{size}, {args.threads} threads, {seg.backend.name}): {infer_ms:.1f} ms")
    print("| frame | inst | pre ms | post ms | measure ms | draw ms | host ms | host / frame |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['frame']} | {r['instances']} | {r['preprocess_ms']} | {r['postprocess_ms']} | {r['measure_ms']} | "
              f"{r['draw_ms']} | {r['host_ms']} | {100 * r['host_fraction']:.1f}% |")
    for r in rows:
        if "fullframe_paste_ms" in r:
            print(f"{r['frame']} x {r['instances']}: postprocess {r['postprocess_ms']} ms = "
                  f"{100 * r['postprocess_vs_infer']:.1f}% of inference; full-frame paste {r['fullframe_paste_ms']} ms "
                  f"({r['postprocess_speedup_vs_fullframe']}x slower)")
    print(f"target host < {100 * TARGET:.0f}% at {size}x{size}: {'met' if doc['passed'] else 'NOT met'}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
