"""INT8 vs FP32 on the bundled model: latency in ONNX Runtime (CPU) and OpenVINO, INT8 kernels ORT fused, matching, mask AP50.

    python benchmarks/int8.py --calib-images 32 --heldout 20 --openvino --json int8.json

Quantizes ``runtime/models/bubbles-lite.onnx`` with ``maskrt.export.int8`` (synthetic calibration scenes),
then, in one process: FP32 and INT8 sessions timed in turns on the same letterboxed frames (``--threads``
intra-op threads, no spinning, so that neither steals the other's cores), the number of convolutions ONNX
Runtime's CPU provider turned into INT8 kernels (``QLinearConv``) against the convolutions that stay float,
and :func:`maskrt.export.int8_report.int8_parity` (detections matched at box IoU 0.5, held-out mask AP50
before and after). Report the machine's load with the numbers: latency on a shared machine is a ratio only.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def fused_ops(path: Path) -> dict[str, int]:
    """Operator counts of the graph ONNX Runtime's CPU provider runs (after its QDQ fusions)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        opts.log_severity_level = 3
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        ops = collections.Counter(n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node)
    return {k: ops[k] for k in ("QLinearConv", "Conv", "QGemm", "Gemm", "QLinearAdd") if ops[k]}


def runners(paths: dict[str, Path], threads: int, openvino: bool) -> dict[str, Callable[[np.ndarray], object]]:
    """One call per (model, backend): ONNX Runtime, and OpenVINO's CPU plugin when asked (no pinning, no cache)."""
    from maskrt.export.verify import ort_session, run_ort

    out: dict[str, Callable[[np.ndarray], object]] = {}
    for k, p in paths.items():
        session = ort_session(p, threads, spin=False)
        out[f"ort_{k}"] = lambda frame, s=session: run_ort(s, frame)
    if openvino:
        from maskrt.runtime.backends.openvino_backend import OpenVINOBackend

        for k, p in paths.items():
            backend = OpenVINOBackend(p, "cpu", threads=threads, spin=False, cache_dir=None)
            out[f"openvino_{k}"] = lambda frame, b=backend: b.infer(frame[None])
    return out


def latency(run: dict[str, Callable[[np.ndarray], object]], frames: list[np.ndarray], rounds: int) -> dict[str, dict]:
    """Per runner: min and median ms of ``rounds`` passes over ``frames``, the runners taking turns frame by frame."""
    for r in run.values():
        r(frames[0])
    times: dict[str, list[float]] = {k: [] for k in run}
    for _ in range(rounds):
        for frame in frames:
            for k, r in run.items():
                t = time.perf_counter()
                r(frame)
                times[k].append((time.perf_counter() - t) * 1e3)
    return {k: {"min_ms": min(v), "p50_ms": float(np.median(v)), "runs": len(v)} for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "runtime" / "models" / "bubbles-lite.onnx")
    ap.add_argument("--int8", type=Path, default=None, help="an INT8 model already made (skips quantizing)")
    ap.add_argument("--calib-images", type=int, default=32)
    ap.add_argument("--heldout", type=int, default=20)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--openvino", action="store_true", help="also time both files in OpenVINO (CPU plugin)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import onnx

    from maskrt.export.int8 import calibration_images, fold_weight_casts, write_int8
    from maskrt.export.int8_report import int8_parity
    from maskrt.export.metadata import read_meta
    from maskrt.runtime.preprocess import letterbox
    from maskrt.train.synth.dataset import render_image

    meta = read_meta(args.model)
    hw = tuple(meta.input_size)
    with tempfile.TemporaryDirectory(prefix="maskrt-int8-bench-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"  # the compact artifact's weights folded: what INT8 is compared with
        onnx.save(fold_weight_casts(onnx.load(str(args.model)))[0], str(fp32))
        t0 = time.perf_counter()
        if args.int8 is None:
            images, source = calibration_images(hw, args.calib_images)  # type: ignore[arg-type]
            int8 = write_int8(args.model, Path(tmp) / "int8.onnx", images, source).path
        else:
            int8, source = args.int8, "given"
        quantize_s = time.perf_counter() - t0
        frames = [letterbox(render_image(i, 512, "boiling-side", seed=2000)[1].image, hw, meta.pad_value)[0]  # type: ignore[arg-type]
                  for i in range(args.frames)]
        lat = latency(runners({"fp32": fp32, "int8": int8}, args.threads, args.openvino), frames, args.rounds)
        ops = {"fp32": fused_ops(fp32), "int8": fused_ops(int8)}
        report = int8_parity(fp32, int8, frames, heldout_images=args.heldout, heldout_size=512,
                             threads=args.threads).summary()
        if args.openvino:  # the same file on OpenVINO's INT8 kernels, against the same FP32 reference
            report_ov = int8_parity(fp32, int8, frames, heldout_images=args.heldout, heldout_size=512,
                                    threads=args.threads, backend="openvino").summary()
        size_mb = {"fp32_compact": args.model.stat().st_size / 1e6, "int8": int8.stat().st_size / 1e6}
    out = {"model": str(args.model.relative_to(ROOT)) if args.model.is_relative_to(ROOT) else str(args.model),
           "calibration": source, "quantize_s": quantize_s, "latency": lat,
           "int8_over_fp32_p50": lat["ort_int8"]["p50_ms"] / lat["ort_fp32"]["p50_ms"],
           "int8_over_fp32_min": lat["ort_int8"]["min_ms"] / lat["ort_fp32"]["min_ms"],
           # every row against ONNX Runtime FP32, timed in the same turns
           "over_ort_fp32_p50": {k: v["p50_ms"] / lat["ort_fp32"]["p50_ms"] for k, v in lat.items()},
           "ort_cpu_ops": ops, "parity": report, "size_mb": size_mb,
           **({"parity_openvino": report_ov} if args.openvino else {}),
           "load_average": os.getloadavg(), "cpus": os.cpu_count(), "threads": args.threads}
    text = json.dumps(out, indent=2, default=float)
    print(text)
    if args.json:
        from maskrt.atomic import write_text

        write_text(args.json, text + "\n")


if __name__ == "__main__":
    main()
