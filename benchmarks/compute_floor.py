"""How fast can ONNX Runtime run a preset on this CPU at best? The arithmetic floor of a frame.

``export_vs_eager.py`` measures eager / (ONNX Runtime + host paste). This script explains the ratio
it gets: it counts the multiply-accumulates (MACs) of every convolution and linear layer that eager
runs on a frame (forward hooks, same weights, same 512x512 scene, ``max_det`` detections), profiles
the exported model in ONNX Runtime (per operator type), and measures the best MAC rate ONNX Runtime
reaches on this CPU (the heaviest 3x3 convolution of the graph, alone, same threads). Then:

* ``mac_floor_ms`` = MACs / best rate: no backend that does the same arithmetic at that rate can
  run the frame faster, whatever it does about everything else;
* ``floor_ms`` = ``mac_floor_ms`` + the measured time of the operators that are not convolutions
  or GEMMs (RoiAlign, NMS, TopK, ...), as ONNX Runtime runs them;
* ``max_ratio`` = eager / ``floor_ms`` and ``max_ratio_macs_only`` = eager / ``mac_floor_ms``: the
  best eager-over-ours ratio such a backend could report against the eager time measured here.

Usage:
    .venv/bin/python benchmarks/compute_floor.py --archs lite r50-fpn
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_vs_eager import RESULTS, _eager, _images, _ours, _wrapped_model

from maskrt.export.metadata import make_meta
from maskrt.export.onnx_export import export_onnx
from maskrt.export.verify import ort_options
from maskrt.runtime.bench.sysinfo import cpu_model

# NCHWc layout reorders belong to the convolutions (another backend may not need them)
GEMM_OPS = {"Conv", "FusedConv", "ConvTranspose", "Gemm", "FusedGemm", "MatMul", "FusedMatMul",
            "ReorderInput", "ReorderOutput"}


def layer_macs(model: torch.nn.Module, image: np.ndarray) -> tuple[dict[str, float], int]:
    """MACs per model part (backbone.body, rpn, roi_heads.mask_head, ...) for one eager frame."""
    macs: Counter[str] = Counter()
    hooks = []

    def hook(name: str):  # type: ignore[no-untyped-def]
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] in ("backbone", "roi_heads") else parts[0]

        def f(mod: torch.nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            if isinstance(mod, torch.nn.ConvTranspose2d):
                k = mod.kernel_size[0] * mod.kernel_size[1]
                macs[key] += inp[0].numel() * mod.out_channels // mod.groups * k
            elif isinstance(mod, torch.nn.Conv2d):
                k = mod.kernel_size[0] * mod.kernel_size[1]
                macs[key] += out.numel() * mod.in_channels // mod.groups * k
            else:
                macs[key] += out.numel() * mod.in_features

        return f

    for name, mod in model.named_modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            hooks.append(mod.register_forward_hook(hook(name)))
    x = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).permute(2, 0, 1).float() / 255.0
    with torch.inference_mode():
        n = len(model([x])[0]["scores"])
    for h in hooks:
        h.remove()
    return {k: float(v) for k, v in macs.most_common()}, n


def ort_profile(onnx_path: Path, images: list[np.ndarray], threads: int) -> dict[str, float]:
    """Mean milliseconds per frame by operator type, from ONNX Runtime's profiler."""
    import onnxruntime as ort

    opts = ort_options(threads)
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        for img in images:  # the first run is a warm-up, left out below
            sess.run(None, {"images": img[None]})
        events = json.loads(Path(sess.end_profiling()).read_text())
    per_op: Counter[str] = Counter()
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    t0 = runs[1]["ts"] if len(runs) > 1 else 0  # skip the warm-up run
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= t0:
            per_op[e["args"]["op_name"]] += e["dur"]
    frames = max(1, len(images) - 1)
    return {k: v / frames / 1000 for k, v in per_op.most_common()}


def best_conv_rate(threads: int, rois: int = 100, channels: int = 256, side: int = 14, reps: int = 5) -> float:
    """GMAC/s of ONNX Runtime on a mask-head-like 3x3 convolution (the heaviest in the graph)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((channels, channels, 3, 3)).astype(np.float32) * 0.02
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["y"], ["z"])],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [rois, channels, side, side])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [rois, channels, side, side])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), ort_options(threads), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((rois, channels, side, side)).astype(np.float32)
    sess.run(None, {"x": x})
    best = min(_timed(lambda: sess.run(None, {"x": x})) for _ in range(reps))
    return rois * channels * side * side * channels * 9 / best / 1e9


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(arch: str, size: int, max_det: int, frames: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    wrapper, recipe = _wrapped_model(arch, size, max_det, None)
    images = _images(size, frames)
    macs, dets = layer_macs(wrapper.model, images[0])
    total_gmac = sum(macs.values()) / 1e9
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{arch}.onnx"
        export_onnx(wrapper, make_meta(recipe, (size, size), max_det), path)
        per_op = ort_profile(path, images, threads)
        eager, ours = _eager(wrapper.model), _ours(path, size, spin=False)
        eager(images[0])
        ours(images[0])
        t_eager, t_ours = [], []
        for img in images[1:]:  # alternate frame by frame, as export_vs_eager --mode interleaved
            for fn, times in ((eager, t_eager), (ours, t_ours)):
                t0 = time.perf_counter()
                fn(img)
                times.append(time.perf_counter() - t0)
    rate = best_conv_rate(threads)
    gemm_ms = sum(v for k, v in per_op.items() if k in GEMM_OPS)
    other_ms = sum(v for k, v in per_op.items() if k not in GEMM_OPS)
    eager_ms = statistics.median(t_eager) * 1000
    ours_ms = statistics.median(t_ours) * 1000
    mac_floor_ms = total_gmac / rate * 1000
    floor_ms = mac_floor_ms + other_ms
    return {  # the headline numbers first: summary tables show the first dozen columns
        "arch": arch,
        "input": f"{size}x{size}",
        "detections_per_frame": dets,
        "gmac_per_frame": round(total_gmac, 2),
        "best_conv_gmac_per_s": round(rate, 1),
        "mac_floor_ms": round(mac_floor_ms, 1),
        "ort_other_ops_ms": round(other_ms, 1),
        "floor_ms": round(floor_ms, 1),
        "eager_ms_median": round(eager_ms, 1),
        "ours_ms_median": round(ours_ms, 1),
        "ratio": round(eager_ms / ours_ms, 2),
        "max_ratio": round(eager_ms / floor_ms, 2),
        "max_ratio_macs_only": round(eager_ms / mac_floor_ms, 2),
        "max_det": max_det,
        "ort_gemm_conv_ms": round(gemm_ms, 1),
        "ort_gemm_conv_gmac_per_s": round(total_gmac / gemm_ms * 1000, 1),
        "gmac_by_part": {k: round(v / 1e9, 2) for k, v in macs.items()},
        "ort_ms_by_op": {k: round(v, 1) for k, v in list(per_op.items())[:10]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=["lite", "r50-fpn"])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--max-det", type=int, default=100)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import onnxruntime

    rows = []
    for arch in args.archs:
        row = bench(arch, args.size, args.max_det, args.frames, args.threads)
        rows.append(row)
        print(f"{arch:>8}: {row['gmac_per_frame']:.1f} GMAC/frame; best conv rate {row['best_conv_gmac_per_s']:.0f} "
              f"GMAC/s -> MAC floor {row['mac_floor_ms']:.0f} ms, + other ops {row['ort_other_ops_ms']:.0f} ms = "
              f"{row['floor_ms']:.0f} ms; eager {row['eager_ms_median']:.0f} ms, ours {row['ours_ms_median']:.0f} ms "
              f"({row['ratio']:.2f}x); at best {row['max_ratio']:.2f}x ({row['max_ratio_macs_only']:.2f}x MACs only)")
    result = {
        "benchmark": "compute_floor",
        "machine": f"{platform.machine()} {cpu_model()} ({os.cpu_count()} cores, {args.threads} threads used)",
        "load_average": list(os.getloadavg()),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "compute_floor.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
