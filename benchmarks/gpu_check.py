"""One prepared GPU measurement: PyTorch eager on CUDA (fp32, fp16 autocast) vs the maskrt runtime.

Run by ``benchmarks/gpu_check.sh`` on a machine with an NVIDIA GPU (it installs nothing). Steps, each
guarded by a time budget so that a short device lease still returns results:

1. PyTorch eager on CUDA, fp32 and fp16 autocast, for ``lite`` and ``r50-fpn`` at 512 and 800
   (random weights, score threshold 0.05 so each frame carries up to 100 instances: the mask work is
   a worst case; the instance column says what each row produced).
2. ONNX exports of the same checkpoints (static size, ``max_det`` 100).
3. ONNX Runtime rows on every GPU provider installed (CUDA; TensorRT EP for ``lite`` 512 only, as
   it builds an engine when the session opens) and a CPU reference row.
4. Native TensorRT: engines built on this GPU (fp16 and fp32 for ``lite`` 512, fp16 for the rest
   while the budget lasts) and timed through the runtime's TensorRT backend.

Every row is timed the way ``maskrt bench`` times it (whole frame: preprocess + infer + postprocess +
draw) on the same synthetic scenes; speed-ups are over the fp32 eager row of the same model and size.
Writes ``gpu_check.json`` (schema ``maskrt.bench/1``), ``gpu_check.md`` and ``steps.json`` into ``$OUT``
(default ``benchmarks/results/gpu_check/``), rewriting them after every step.

    python benchmarks/gpu_check.py [--budget 420] [--iters 50] [--quick] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scaling_common import MODELS, RESULTS, eager_row

from maskrt.runtime.bench import (
    BenchRow,
    bench_artifact,
    results_document,
    synthetic_frames,
    system_info,
    to_markdown,
    write_json,
)

CONF = 0.05
MAX_DET = 100
BUBBLES = 30


class Check:
    """Collects rows and step outcomes, and rewrites the outputs after every step."""

    def __init__(self, out: Path, budget_s: float, args: argparse.Namespace) -> None:
        self.out = out
        self.t0 = time.perf_counter()
        self.budget_s = budget_s
        self.args = args
        self.rows: list[BenchRow] = []
        self.steps: list[dict[str, Any]] = []
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.t0)

    def step(self, name: str, fn: Callable[[], Any], need_s: float = 0.0) -> Any:
        """Run one step unless the budget is spent; record its outcome; never raise."""
        if self.left() < need_s:
            self.steps.append({"step": name, "status": f"skipped: {self.left():.0f} s of budget left"})
            print(f"-- {name}: skipped (budget)", flush=True)
            self.save()
            return None
        print(f"-- {name}", flush=True)
        t = time.perf_counter()
        try:
            result = fn()
            status = "ok"
        except Exception as exc:  # noqa: BLE001  (a GPU check reports every failure and goes on)
            result, status = None, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            traceback.print_exc()
        self.steps.append({"step": name, "status": status, "seconds": round(time.perf_counter() - t, 1)})
        print(f"   {status} ({time.perf_counter() - t:.1f} s)", flush=True)
        self.save()
        return result

    def add(self, row: BenchRow) -> None:
        self.rows.append(row)
        lat = f"p50 {row.p50:.1f} ms" if row.p50 else row.reason
        print(f"   {row.model} {row.backend} [{row.device}]: {row.status} {lat}", flush=True)

    def save(self) -> None:
        base: dict[str, float] = {}
        for r in self.rows:  # speed-up over the fp32 eager row of the same model and size
            if r.backend == "torch-eager" and r.precision == "fp32" and r.p50:
                base[r.model.split(" ")[0]] = r.p50
        for r in self.rows:
            b = base.get(r.model.split(" ")[0])
            r.speedup = b / r.p50 if b and r.p50 and r.status == "ok" else None
        config = {"benchmark": "gpu_check", "conf": CONF, "max_det": MAX_DET, "warmup": self.args.warmup,
                  "timed": f"{self.args.iters} timed frames per row",
                  "frames_desc": f"6 synthetic square scenes per size, {BUBBLES} bubbles, in rotation",
                  "speedup": "over the fp32 PyTorch eager row of the same model and size",
                  "steps": self.steps, "elapsed_s": round(time.perf_counter() - self.t0, 1)}
        doc = results_document(self.rows, system_info(), config, baseline="torch-eager fp32")
        write_json(self.out / "gpu_check.json", doc)
        (self.out / "gpu_check.md").write_text(to_markdown(doc), encoding="utf-8")
        (self.out / "steps.json").write_text(json.dumps(self.steps, indent=2) + "\n", encoding="utf-8")


def make_checkpoint(arch: str) -> Path:
    import torch

    from maskrt.train.checkpoint import save_checkpoint
    from maskrt.train.models import ModelRecipe, build_model

    path = MODELS / f"{arch}-seed0.pt"
    if not path.is_file():
        torch.manual_seed(0)
        recipe = ModelRecipe(arch=arch, classes=["bubble"], image_size=512)
        save_checkpoint(path, build_model(recipe).eval(), recipe)
    return path


def export(ckpt: Path, size: int) -> Path:
    from scaling_common import _export

    path = MODELS / f"{ckpt.stem}-{size}-d{MAX_DET}.onnx"
    if not path.is_file():
        _export(str(ckpt), size, MAX_DET, str(path))
    return path


def build_trt(onnx: Path, fp16: bool) -> Path:
    from maskrt.export.tensorrt_build import BuildOptions, build_engine

    engine = onnx.with_name(f"{onnx.stem}-{'fp16' if fp16 else 'fp32'}.engine")
    t = time.perf_counter()
    build_engine(onnx, engine, BuildOptions(fp16=fp16))
    print(f"   built {engine.name} in {time.perf_counter() - t:.0f} s", flush=True)
    return engine


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=float(os.environ.get("GPU_CHECK_BUDGET_S", "420")),
                   help="seconds for the whole check; later steps are skipped when it is spent")
    p.add_argument("--iters", type=int, default=50)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--device", default="cuda", help="device of the eager rows (cpu only to test this script)")
    p.add_argument("--archs", nargs="+", default=["lite", "r50-fpn"])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 800])
    p.add_argument("--quick", action="store_true", help="lite at 512 only, few frames (a dry run)")
    p.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else
                   RESULTS / "gpu_check")
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.sizes, args.iters, args.warmup = ["lite"], [args.sizes[0]], min(args.iters, 3), 1
    check = Check(args.out, args.budget, args)
    frames = {s: synthetic_frames(6, (s, s), BUBBLES, seed=s) for s in args.sizes}
    combos = [(a, s) for a in args.archs for s in args.sizes]
    ckpts: dict[str, Path] = {}
    for arch in args.archs:
        ckpts[arch] = check.step(f"checkpoint {arch}", lambda arch=arch: make_checkpoint(arch))

    # 1. PyTorch eager on CUDA, fp32 and fp16 autocast
    for arch, size in combos:
        for half in (False, True):
            if ckpts.get(arch) is None or (half and args.device != "cuda"):
                continue
            label = f"{arch}-{size} {'fp16' if half else 'fp32'}"

            def eager(arch: str = arch, size: int = size, half: bool = half, label: str = label) -> None:
                check.add(eager_row(ckpts[arch], frames[size], label, size=size, conf=CONF, max_det=MAX_DET,
                                    iters=args.iters, warmup=args.warmup, threads=None, device=args.device,
                                    half=half))

            check.step(f"eager {label}", eager, need_s=20)

    # 2. ONNX exports
    onnx: dict[tuple[str, int], Path] = {}
    for arch, size in combos:
        if ckpts.get(arch) is not None:
            path = check.step(f"export {arch}-{size}", lambda a=arch, s=size: export(ckpts[a], s), need_s=60)
            if path is not None:
                onnx[(arch, size)] = path

    # 3. ONNX Runtime: GPU providers, TensorRT EP on lite 512 only, one CPU reference
    def ort_rows(arch: str, size: int, backends: list[str]) -> None:
        for b in backends:
            row = bench_artifact(onnx[(arch, size)], b, frames[size], conf=CONF, warmup=args.warmup, iters=args.iters)
            row.model = f"{arch}-{size} onnx"
            check.add(row)

    for arch, size in combos:
        if (arch, size) in onnx:
            backends = ["ort-cuda"] + (["ort-trt", "ort-cpu"] if (arch, size) == combos[0] else [])
            check.step(f"onnxruntime {arch}-{size}", lambda a=arch, s=size, b=backends: ort_rows(a, s, b), need_s=60)

    # 4. Native TensorRT engines built here
    from maskrt.runtime.backends.tensorrt_backend import tensorrt_available

    why_not = tensorrt_available()
    have_trt = why_not is None
    if not have_trt:
        check.steps.append({"step": "tensorrt", "status": f"skipped: {why_not}"})
    if have_trt:
        plan = [(combos[0], True), (combos[0], False)] + [(c, True) for c in combos[1:]]
        for (arch, size), fp16 in plan:
            if (arch, size) not in onnx:
                continue

            def trt_row(arch: str = arch, size: int = size, fp16: bool = fp16) -> None:
                engine = build_trt(onnx[(arch, size)], fp16)
                row = bench_artifact(engine, "trt", frames[size], conf=CONF, warmup=args.warmup, iters=args.iters)
                row.model = f"{arch}-{size} trt-{'fp16' if fp16 else 'fp32'}"
                check.add(row)

            check.step(f"tensorrt {arch}-{size} {'fp16' if fp16 else 'fp32'}", trt_row, need_s=120)
    check.save()
    print((args.out / "gpu_check.md").read_text(encoding="utf-8"))
    print(f"wrote {args.out}/gpu_check.json, gpu_check.md, steps.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
