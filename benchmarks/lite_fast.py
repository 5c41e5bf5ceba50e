"""What the ``lite-fast`` preset saves: ONNX Runtime kernel time on the stride-4 level, lite vs lite-fast.

Both models get the same weights from a ``lite`` checkpoint (default: the bundled one); ``lite-fast``'s
separable stride-4 convolutions keep their initial values, so this measures cost, not accuracy (the
detections differ; the table gives their count). Each model is exported at ``--imgsz`` with
``--max-det`` rows and profiled with ONNX Runtime's per-node profiler on real bottom-view frames
(isolated bubbles and dense boiling, ``tests/data/boiling-bottom-videosam``). Kernel time is split into
convolutions whose output is on the stride-4 map (``imgsz / 4`` square) and everything else.

Example:
    python benchmarks/lite_fast.py --imgsz 640 --max-det 300 --md lite_fast.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ROOT / "tests" / "data" / "boiling-bottom-videosam" / "images"
REGIMES = {"isolated": ("train_0010.png", "train_0100.png", "train_0190.png"),
           "dense": ("train_0300.png", "train_0600.png", "train_0880.png")}


def export_variants(checkpoint: Path, work: Path, imgsz: int, max_det: int) -> dict[str, Path]:
    """Export ``lite`` and ``lite-fast`` with the checkpoint's weights (where shapes match)."""
    from maskrt.export.pipeline import ExportOptions, export_checkpoint
    from maskrt.train.checkpoint import load_checkpoint, recipe_of, save_checkpoint
    from maskrt.train.models import ModelRecipe, build_model, load_matching

    ckpt = load_checkpoint(checkpoint)
    recipe = recipe_of(ckpt, checkpoint)
    state = {k: v.float() for k, v in ckpt["model"].items()}
    out = {}
    for arch in ("lite", "lite-fast"):
        r = ModelRecipe.from_dict({**recipe.to_dict(), "arch": arch})
        model = build_model(r)
        load_matching(model, state)
        pt = save_checkpoint(work / f"{arch}.pt", model, r)
        out[arch] = export_checkpoint(pt, ExportOptions(imgsz=imgsz, max_det=max_det, out=work / f"{arch}.onnx",
                                                        parity=False)).onnx_path
    return out


def profile(onnx_path: Path, images: list[np.ndarray], threads: int, stride4: int) -> dict[str, float]:
    """Mean ms per frame: stride-4 convolutions, other kernels, all kernels."""
    import onnxruntime as ort

    from maskrt.export.verify import ort_options

    opts = ort_options(threads)
    opts.enable_profiling = True
    sums: dict[str, float] = defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        for img in [images[0], *images]:  # the first run warms up and is left out below
            sess.run(None, {"images": img[None]})
        events = json.loads(Path(sess.end_profiling()).read_text())
    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    t0 = runs[1]["ts"]
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < t0:
            continue
        shapes = e["args"].get("output_type_shape") or [{}]
        dims = next(iter(shapes[0].values()), []) if shapes else []
        on_s4 = e["args"]["op_name"] in ("Conv", "FusedConv") and list(dims[-2:]) == [stride4, stride4]
        sums["stride-4 conv" if on_s4 else "other"] += e["dur"] / 1000
    n = len(images)
    return {"stride-4 conv": sums["stride-4 conv"] / n, "other": sums["other"] / n,
            "total": (sums["stride-4 conv"] + sums["other"]) / n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=ROOT / "train" / "models" / "bubbles-lite.pt")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--max-det", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--md", type=Path)
    args = ap.parse_args(argv)

    from maskrt.atomic import write_text
    from maskrt.runtime import Segmenter
    from maskrt.runtime.bench.sysinfo import cpu_model

    with tempfile.TemporaryDirectory() as tmp:
        models = export_variants(args.checkpoint, Path(tmp), args.imgsz, args.max_det)
        rows = []
        for regime, names in REGIMES.items():
            frames = [cv2.imread(str(FRAMES / n), cv2.IMREAD_UNCHANGED) for n in names]
            for arch, path in models.items():
                seg = Segmenter(path, backend="onnxruntime", threads=args.threads)
                images = [seg.preprocess(f)[0][0] for f in frames]
                dets = float(np.mean([len(seg(f)) for f in frames]))
                seg.close()
                p = profile(path, images, args.threads, args.imgsz // 4)
                rows.append((regime, arch, p, dets))
    base = {r[0]: r[2] for r in rows if r[1] == "lite"}
    lines = [(f"ONNX Runtime kernel time per frame, {args.imgsz}x{args.imgsz}, {args.max_det} detections max, "
             f"{args.threads} threads, {cpu_model()}."), "",
             "| frames | preset | stride-4 conv ms | other kernels ms | total ms | total vs lite | detections |",
             "|---|---|---|---|---|---|---|"]
    for regime, arch, p, dets in rows:
        lines.append(f"| {regime} | {arch} | {p['stride-4 conv']:.0f} | {p['other']:.0f} | {p['total']:.0f} | "
                     f"{base[regime]['total'] / p['total']:.2f}x | {dets:.0f} |")
    md = "\n".join(lines) + "\n"
    print(md)
    if args.md:
        write_text(args.md, md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
