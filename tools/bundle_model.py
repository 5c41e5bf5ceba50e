"""Package a trained checkpoint as maskrt's bundled default model, evaluate it and write its model card.

Run after the training command in ``runtime/models/README.md`` (``make bundled-model`` runs the whole chain):

    python tools/bundle_model.py runs/bubbles-lite/best.pt

It writes
- ``runtime/models/bubbles-lite.onnx``: the runtime artifact (FP16-stored weights, FP32 compute),
- ``train/models/bubbles-lite.pt``: a compact checkpoint (FP16 weights + recipe) for ``--weights bubbles-lite``,
- ``runtime/models/bubbles-lite.metrics.json``: every number of the model card,
and evaluates: mask/box AP on held-out synthetic scenes of each type (another seed than training), mask
AP50 on the real Taylor-bubble images (valid+test) without and after fine-tuning on their train split, and
the artifact on the held-out blocks of real bottom-view boiling (``benchmarks/real_footage.py``: union IoU,
void fraction, instance F1 per regime).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENES = ("boiling-side", "boiling-bottom", "droplets", "taylor")
ARTIFACT_MAX_DET = 300  # real dense boiling frames hold ~220 separate vapour regions


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--work", type=Path, default=ROOT / "data-out" / "bundle")
    ap.add_argument("--heldout-images", type=int, default=30, help="held-out synthetic images per scene")
    ap.add_argument("--heldout-seed", type=int, default=1000)
    ap.add_argument("--taylor", type=Path, default=ROOT / "tests" / "data" / "taylor-bubbles-coco")
    ap.add_argument("--finetune-iters", type=int, default=100)
    ap.add_argument("--imgsz", type=int, default=None, help="export size (default: the training size)")
    ap.add_argument("--data-command", default="", help="the commands that made the training data (joined by &&)")
    ap.add_argument("--train-command", default="", help="the training command, recorded in the metrics file")
    ap.add_argument("--skip-finetune", action="store_true")
    ap.add_argument("--train-wall", default="", help="training wall time, recorded in the model card")
    ap.add_argument("--schedule", default="", help="the training schedule in words, when it had several stages")
    ap.add_argument("--dest", type=Path, default=ROOT, help="repository root to write the bundle into (tests: a tmp dir)")
    ap.add_argument("--conf", type=float, default=0.5, help="the artifact's default score threshold")
    ap.add_argument("--about", default="", help="how the weights were trained, in words (the card's first paragraph)")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the card from the bundled metrics file (with --about) without measuring again")
    ap.add_argument("--real", type=Path, default=None,
                    help="real boiling frames (images/ + masks/) for the held-out real blocks (default: ../shared)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log = logging.getLogger("bundle")

    from maskrt.atomic import write_text

    if args.render_only:
        metrics = args.dest / "runtime" / "models" / "bubbles-lite.metrics.json"
        card = json.loads(metrics.read_text())
        card["about"] = args.about or card.get("about", "")
        write_text(metrics, json.dumps(card, indent=2, default=str))
        write_text(args.dest / "runtime" / "models" / "README.md", render_card(card))
        return 0

    import torch

    from maskrt.export.compact import anchor_grids, write_compact
    from maskrt.export.pipeline import ExportOptions, export_checkpoint
    from maskrt.train.checkpoint import compact_checkpoint, load_checkpoint, load_model
    from maskrt.train.evaluate import evaluate_checkpoint as evaluate
    from maskrt.train.synth import generate_dataset
    from maskrt.train.trainer import TrainConfig, train

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    args.work.mkdir(parents=True, exist_ok=True)
    ckpt_info = load_checkpoint(args.checkpoint)  # never runs code from the file; the recipe is checked
    recipe = ckpt_info["recipe"]
    imgsz = args.imgsz or int(recipe["image_size"])
    card: dict[str, Any] = {
        "model": "bubbles-lite",
        "arch": recipe["arch"],
        "classes": recipe["classes"],
        "train_image_size": recipe["image_size"],
        "phase": bool(recipe.get("phase")),
        "input_size": imgsz,
        "max_det": ARTIFACT_MAX_DET,
        "score_threshold": args.conf,
        "about": args.about,
        "checkpoint": str(args.checkpoint),
        "iteration": ckpt_info.get("iteration"),
        "data_command": args.data_command.replace(".venv/bin/", ""),  # the Makefile's venv paths
        "train_command": args.train_command.replace(".venv/bin/", ""),
        "bundle_command": " ".join(
            [f"python tools/bundle_model.py {args.checkpoint}"]
            + ([f"--finetune-iters {args.finetune_iters}"] if args.finetune_iters != ap.get_default("finetune_iters") else [])
            + ([f"--imgsz {args.imgsz}"] if args.imgsz else [])
            + (["--skip-finetune"] if args.skip_finetune else [])
            + ([f"--conf {args.conf}"] if args.conf != ap.get_default("conf") else [])
        ),
        "schedule": args.schedule,
        "train_metrics": ckpt_info.get("metrics", {}),
    }
    del ckpt_info

    small_ckpt = args.dest / "train" / "models" / "bubbles-lite.pt"
    small_ckpt.parent.mkdir(parents=True, exist_ok=True)
    compact_checkpoint(args.checkpoint, small_ckpt, ARTIFACT_MAX_DET)
    dense_max_det = max(int(recipe.get("max_det", 100)), ARTIFACT_MAX_DET)
    log.info("compact checkpoint: %s (%.1f MB)", small_ckpt, small_ckpt.stat().st_size / 1e6)

    # held-out synthetic scenes, another seed than the training data
    per_scene: dict[str, Any] = {}
    for scene in SCENES:
        folder = args.work / f"heldout-{scene}"
        if not (folder / "annotations.json").is_file():
            generate_dataset(folder, images=args.heldout_images, size=512, scene=scene, seed=args.heldout_seed)
        m = evaluate(small_ckpt, [folder])
        per_scene[scene] = {"mask": m["segm"], "box": m["bbox"], "images": m["images"], "instances": m["instances"]}
        log.info("%s: mask AP %.3f AP50 %.3f", scene, m["segm"]["AP"], m["segm"]["AP50"])
    m = evaluate(small_ckpt, [args.work / "heldout-droplets"], max_det=dense_max_det)  # what the model can do
    per_scene[f"droplets@{dense_max_det}"] = {"mask": m["segm"], "box": m["bbox"], "images": m["images"],
                                 "instances": m["instances"]}
    card["heldout"] = per_scene
    card["heldout_seed"] = args.heldout_seed

    # real images: Taylor bubbles, valid + test, with the synthetic classes mapped by name
    taylor_eval = [args.taylor / "valid", args.taylor / "test"]
    card["taylor_zero_shot"] = _taylor_zero_shot(small_ckpt, taylor_eval)
    log.info("taylor zero-shot: %s", card["taylor_zero_shot"])
    if not args.skip_finetune:
        res = train(TrainConfig(
            data=[str(args.taylor / "train")], val=[str(p) for p in taylor_eval], weights=str(small_ckpt),
            imgsz=int(recipe["image_size"]), iters=args.finetune_iters, batch=4, lr=0.01, workers=2,
            out=str(args.work / "taylor-finetune"), eval_every=args.finetune_iters, progress=False, seed=0,
        ))  # fmt: skip
        ft = evaluate(res.best or res.last, taylor_eval)
        card["taylor_finetuned"] = {"mask": ft["segm"], "box": ft["bbox"], "iters": args.finetune_iters,
                                    "wall_s": res.wall_s}
        log.info("taylor fine-tuned: mask AP50 %.3f", ft["segm"]["AP50"])

    # the runtime artifact: export (with parity against PyTorch), then FP16-stored weights
    onnx_tmp = args.work / "bubbles-lite.fp32.onnx"
    exported = export_checkpoint(
        small_ckpt, ExportOptions(imgsz=imgsz, max_det=ARTIFACT_MAX_DET, out=onnx_tmp, parity_images=4, score_threshold=args.conf)
    )
    onnx_path = args.dest / "runtime" / "models" / "bubbles-lite.onnx"
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    grids = anchor_grids(load_model(small_ckpt)[0], (imgsz, imgsz))
    write_compact(exported.onnx_path, onnx_path, grids=grids)  # FP16-stored weights, anchors from vectors
    card["export"] = {"violations": exported.violations, "parity": exported.parity,
                      "parity_failures": exported.parity_failures,
                      "onnx_mb": onnx_path.stat().st_size / 1e6, "checkpoint_mb": small_ckpt.stat().st_size / 1e6}
    card["real_footage"] = _real_footage(onnx_path, args.real)
    card["bundle_wall_s"] = time.perf_counter() - t0
    card["machine"] = _machine()
    card["train_wall_s"] = args.train_wall or "?"

    write_text(args.dest / "runtime" / "models" / "bubbles-lite.metrics.json", json.dumps(card, indent=2, default=str))
    write_text(args.dest / "runtime" / "models" / "README.md", render_card(card))
    log.info("wrote %s (%.1f MB) and %s (%.1f MB)", onnx_path, card["export"]["onnx_mb"], small_ckpt,
             card["export"]["checkpoint_mb"])
    return 0


def _real_rows(blocks: list[dict[str, Any]]) -> list[str]:
    """The model card's real-footage table (``benchmarks/real_footage.py``'s scores of the artifact)."""
    if not blocks:
        return []
    rows = [
        "## Real footage (held-out blocks, never trained on)",
        "",
        ("Bottom-view pool boiling (`../shared/data/boiling-bottom-videosam`, 256x256), scored by "
         "`benchmarks/real_footage.py` on the runtime artifact at its default score threshold: instances are the "
         "vapour mask's 8-connected components of 8 px or more; frames 10 either side of each block were not "
         "trained on either (they are the validation frames of the real-footage training)."),
        "",
        ("| regime (frames) | frames | union IoU | void fraction true / predicted | abs. error | precision | recall "
        "| F1 | regions / frame | detections / frame | p50 ms |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in blocks:
        rows.append(
            f"| {b['regime']} | {b['frames']} | {b['union_iou']:.3f} | {b['void_true']:.3f} / {b['void_pred']:.3f} | "
            f"{b['void_abs_err']:.3f} | {b['precision']:.3f} | {b['recall']:.3f} | {b['f1']:.3f} | "
            f"{b['gt_instances_per_frame']:.0f} | {b['detections_per_frame']:.0f} | {b['latency_p50_ms']:.0f} |"
        )
    phase = [b for b in blocks if b.get("phase_union_iou") is not None]
    if phase:
        rows += ["", ("The model's per-pixel phase map (the artifact's `phase` output, thresholded at 0.5; the runtime's "
                      "`void_fraction` comes from it), on the same frames:"), "",
                 "| regime (frames) | union IoU | void fraction true / predicted | abs. error |", "|---|---|---|---|"]
        rows += [f"| {b['regime']} | {b['phase_union_iou']:.3f} | {b['void_true']:.3f} / {b['phase_void_pred']:.3f} | "
                 f"{b['phase_void_abs_err']:.3f} |" for b in phase]
    return [*rows, ""]


def _ap(m: dict[str, Any] | None, kind: str, key: str) -> str:
    return f"{m[kind][key]:.3f}" if m and kind in m else "-"


def render_card(card: dict[str, Any]) -> str:
    """The model card (Markdown) from the metrics this script measured."""
    rows = []
    for name, m in card["heldout"].items():
        rows.append(f"| synthetic `{name}` (held out, seed {card['heldout_seed']}) | {m['images']} | {m['instances']} | "
                    f"{_ap(m, 'mask', 'AP')} | {_ap(m, 'mask', 'AP50')} | {_ap(m, 'box', 'AP50')} |")
    z = card.get("taylor_zero_shot")
    rows.append(f"| real Taylor bubbles, valid+test (held out), no fine-tuning on them | {z['images']} | {z['instances']} | "
                f"{_ap(z, 'mask', 'AP')} | {_ap(z, 'mask', 'AP50')} | {_ap(z, 'box', 'AP50')} |")
    ft = card.get("taylor_finetuned")
    if ft:
        rows.append(f"| real Taylor bubbles, valid+test, after {ft['iters']} iterations of fine-tuning on train | "
                    f"{z['images']} | {z['instances']} | {_ap(ft, 'mask', 'AP')} | {_ap(ft, 'mask', 'AP50')} | "
                    f"{_ap(ft, 'box', 'AP50')} |")
    ex = card["export"]
    par = ex.get("parity") or {}
    tm = card.get("train_metrics") or {}
    about = (card.get("about") or "").strip()
    lines = [
        "# bubbles-lite: the bundled default model",
        "",
        f"A `{card['arch']}` Mask R-CNN (MobileNetV3-Large + 128-channel FPN, about 6 M parameters) trained on CPU "
        "on maskrt's synthetic scenes (`maskrt synth --scene mixed`: side-view and bottom-view pool boiling, "
        "dropwise condensation, Taylor bubbles)"
        + (", with a per-pixel phase head (the artifact's `phase` output: the probability that a pixel is inside "
           "any instance, which gives void fraction and merged vapour patches directly)" if card.get("phase") else "")
        + ". " + (f"{about} " if about else "") + "Classes: "
        + ", ".join(f"`{c}`" for c in card["classes"]) + ".",
        "",
        "Files (package data; this card and the metrics are written by `tools/bundle_model.py`):",
        "",
        (f"- `runtime/models/bubbles-lite.onnx` ({ex['onnx_mb']:.1f} MB): the runtime artifact, input "
        f"{card['input_size']}x{card['input_size']}, at most {card.get('max_det', 100)} detections, FP32 compute with FP16-stored weights "
        "and per-level anchor vectors (`maskrt.export.compact`). Used by `maskrt run`, `maskrt predict` and "
        "`maskrt demo` when no model is given."),
        (f"- `train/models/bubbles-lite.pt` ({ex['checkpoint_mb']:.1f} MB): compact checkpoint (FP16 weights + "
        "recipe) for `maskrt train --weights bubbles-lite`."),
        "",
        "## How it was made",
        "",
        "```bash",
        "make bundled-model   # = the commands below",
        *(card.get("data_command") or "(data commands not recorded)").split(" && "),
        card.get("train_command") or "(training command not recorded)",
        card.get("bundle_command") or f"python tools/bundle_model.py {card['checkpoint']}",
        "```",
        "",
        "Training: "
        + (card.get("schedule") or f"{card.get('iteration')} iterations of batch 4 at {card['train_image_size']} px")
        + f", wall time {card.get('train_wall_s', '?')} on the machine named below."
        + (f" Validation at the end of the phase stage (real validation frames): phase map IoU "
           f"{tm['phase']['iou']:.3f}, void fraction abs. error {tm['phase']['void_abs_err']:.3f}."
           if "phase" in tm and "segm" not in tm else
           f" Validation at the end of training (its --val data): mask AP {tm['segm']['AP']:.3f}, "
           f"AP50 {tm['segm']['AP50']:.3f}." if "segm" in tm else ""),
        "",
        "## Accuracy (COCO mask/box AP, pycocotools)",
        "",
        "| data | images | instances | mask AP | mask AP50 | box AP50 |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        (f"Scored with the PyTorch model at {card.get('max_det', 100)} detections per image, except the `droplets@N` row (dense "
        "condensation scenes have 300-450 droplets per image: export with `--max-det` near that for them). "
        "On the Taylor images the model's `bubble` class is scored against `taylor bubble`. The `boiling-bottom` "
        "scenes are the realistic bottom view (`maskrt synth`'s default since the real-footage work: about 270 small "
        "bubbles or packed cells per scene)."),
        "",
        *_real_rows(card.get("real_footage") or []),
        (f"Export checks: TensorRT-compatibility problems: {len(ex['violations'])}; parity with PyTorch: "
        f"{'passed' if par.get('passed') else 'see metrics'} ({json.dumps(par.get('summary', par))[:300]})."),
        "",
        f"Machine: {card.get('machine', '2-core CPU')}. All numbers: `bubbles-lite.metrics.json`.",
        "",
    ]
    return "\n".join(lines)


def _real_footage(onnx_path: Path, data: Path | None) -> list[dict[str, Any]]:
    """The artifact on the held-out real boiling blocks (none when the frames are not on this machine)."""
    import importlib.util
    from dataclasses import asdict

    spec = importlib.util.spec_from_file_location("real_footage", ROOT / "benchmarks" / "real_footage.py")
    assert spec and spec.loader
    rf = importlib.util.module_from_spec(spec)
    sys.modules["real_footage"] = rf
    spec.loader.exec_module(rf)
    data = data or rf.DEFAULT_DATA
    if not (data / "images").is_dir():
        logging.getLogger("bundle").warning("%s: no real frames; the model card has no real-footage rows", data)
        return []
    from maskrt.runtime import Segmenter

    seg = Segmenter(onnx_path, threads=2)
    seg.warmup(2)
    out = []
    for regime, (a, b) in rf.DEFAULT_BLOCKS.items():
        score = rf.score_block(f"{regime} ({a}-{b})", rf.load_block(data, a, b), seg, 8, ceiling=False)
        out.append(asdict(score))
        logging.getLogger("bundle").info("real %s: %s", regime, score)
    seg.close()
    return out


def _taylor_zero_shot(checkpoint: Path, data: list[Path]) -> dict[str, Any]:
    """The synthetic model on real Taylor images: its 'bubble' class scored against 'taylor bubble'."""
    from maskrt.train.checkpoint import load_model
    from maskrt.train.dataset import load_datasets
    from maskrt.train.evaluate import coco_metrics, predict

    model, recipe, _ = load_model(checkpoint)
    ds = load_datasets([str(p) for p in data])
    bubble = recipe.classes.index("bubble") + 1
    results = [dict(r, category_id=1) for r in predict(model, ds) if r["category_id"] == bubble]
    m = coco_metrics(ds, results)
    return {"mask": m["segm"], "box": m["bbox"], "images": m["images"], "instances": m["instances"]}


def _machine() -> str:
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())
