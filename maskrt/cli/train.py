"""`maskrt train` and `maskrt eval`: train Mask R-CNN on a dataset, score a checkpoint with COCO AP."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskrt.cli.app import app
from maskrt.cli.data import with_mask_options
from maskrt.errors import MaskrtError
from maskrt.options import TrainConfig

_DEFAULTS = TrainConfig()
"""Every option's default is the TrainConfig field's (``--no-progress``: not ``progress``)."""
SET_HERE = {"data", "val", "out", "progress", "masks"}
"""TrainConfig fields the command converts from its options; the others are options of the same name (or, like
weight_decay and log_every, not options at all: they keep their defaults)."""


def _split(values: list[str] | None) -> list[str]:
    return [p.strip() for v in (values or []) for p in v.split(",") if p.strip()]


@app.command()
@with_mask_options
def train(
    data: Annotated[list[str] | None, typer.Option(
        "--data",
        help="Training data (COCO JSON, labelme/VIA/CVAT, folder); "
        "repeat or comma-separate to merge several. Optional with --resume.",
    )] = None,
    val: Annotated[list[str] | None, typer.Option(
        "--val",
        help="Validation data; repeat or comma-separate (e.g. valid,test).",
    )] = None,
    val_split: Annotated[float, typer.Option(
        help="Fraction of --data held out for validation when --val is absent (0: no validation).",
    )] = _DEFAULTS.val_split,
    arch: Annotated[str | None, typer.Option(
        help="Preset: lite, mbv3-fpn, r50-fpn, r50-fpn-v2 (default: the --weights checkpoint's, else lite).",
    )] = _DEFAULTS.arch,
    imgsz: Annotated[int, typer.Option(
        help="Input size: the longer image side the model sees.",
    )] = _DEFAULTS.imgsz,
    epochs: Annotated[int | None, typer.Option(
        help="Training length in passes over the data (default 12).",
    )] = _DEFAULTS.epochs,
    iters: Annotated[int | None, typer.Option(
        help="Training length in iterations (instead of --epochs).",
    )] = _DEFAULTS.iters,
    batch: Annotated[int, typer.Option(
        help="Images per batch (per process under torchrun).",
    )] = _DEFAULTS.batch,
    lr: Annotated[float | None, typer.Option(
        help="Peak learning rate (default: 0.02 for sgd, 0.001 for adamw).",
    )] = _DEFAULTS.lr,
    optimizer: Annotated[str, typer.Option(help="sgd or adamw.")] = _DEFAULTS.optimizer,
    schedule: Annotated[str, typer.Option(
        help="cosine, step or constant (after the linear warm-up).",
    )] = _DEFAULTS.schedule,
    warmup: Annotated[int | None, typer.Option(
        help="Warm-up iterations (default: 10% of the run, at most 300).",
    )] = _DEFAULTS.warmup,
    clip_grad: Annotated[float, typer.Option(help="Gradient-norm clipping (0: off).")] = _DEFAULTS.clip_grad,
    workers: Annotated[int, typer.Option(help="Data-loading processes.")] = _DEFAULTS.workers,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = _DEFAULTS.device,
    amp: Annotated[bool, typer.Option("--amp", help="Mixed precision (CUDA only).")] = _DEFAULTS.amp,
    out: Annotated[Path, typer.Option(
        help="Run folder: last.pt, best.pt, metrics.jsonl, curves.png.",
    )] = Path(_DEFAULTS.out),
    resume: Annotated[bool, typer.Option(
        "--resume",
        help="Continue the run in --out from its last.pt.",
    )] = _DEFAULTS.resume,
    augment: Annotated[str, typer.Option(
        help="Augmentation: none|light|default|heavy, then key=value "
        "overrides, e.g. 'default,rotate=20,scale=0.5:2,noise=0' (keys: hflip vflip "
        "rot90 rotate scale brightness contrast gamma blur noise).",
    )] = _DEFAULTS.augment,
    weights: Annotated[str, typer.Option(
        help="Start from: none, imagenet, coco (r50 presets), bubbles-lite "
        "(bundled), or a checkpoint / torchvision state-dict path.",
    )] = _DEFAULTS.weights,
    phase: Annotated[bool, typer.Option(
        "--phase",
        help="Add a per-pixel phase head (a stride-4 or stride-2 map of the dispersed phase: void fraction, merged patches), "
        "trained from the union of the instance masks with the rest of the model.",
    )] = _DEFAULTS.phase,
    phase_only: Annotated[bool, typer.Option(
        "--phase-only",
        help="Train only the phase head of the --weights checkpoint (added if it has none): every other weight "
        "and statistic stays exactly as loaded, so its instances do not change.",
    )] = _DEFAULTS.phase_only,
    phase_stride: Annotated[int | None, typer.Option(
        "--phase-stride",
        help="Stride of the phase map: 4 (the FPN level), or 2 with a small refinement from the image itself "
        "(sharper edges of bubbles a few pixels across; about 5% more per frame). Default: the checkpoint's, else 4. "
        "A stride-4 head of --weights keeps its weights and gains the refinement, which starts as a no-op.",
    )] = _DEFAULTS.phase_stride,
    phase_loss: Annotated[str, typer.Option(
        "--phase-loss",
        help="What trains the phase map beside cross-entropy: dice (soft Dice), or lovasz (the Lovasz hinge, "
        "a surrogate of the union IoU itself: on bubbles a few pixels across Dice makes the map fat).",
    )] = _DEFAULTS.phase_loss,
    mask_channels: Annotated[int | None, typer.Option(
        "--mask-channels",
        help="lite presets: the mask head's width. 64 is the light head (2.8x fewer multiply-adds per detection, "
        "the CPU's largest cost on frames with many bubbles); 128 the preset's. Default: the --weights "
        "checkpoint's, else 128. From a checkpoint of another width the new head is first distilled from its own.",
    )] = _DEFAULTS.mask_channels,
    freeze_bn: Annotated[bool, typer.Option(
        "--freeze-bn",
        help="Keep every BatchNorm's statistics and scale/shift as loaded from --weights (fine-tuning on a few "
        "images per batch, or on a new domain, without re-estimating them from those batches).",
    )] = _DEFAULTS.freeze_bn,
    seed: Annotated[int, typer.Option(
        help="Random seed (data order, augmentation, initialisation).",
    )] = _DEFAULTS.seed,
    save_every: Annotated[int, typer.Option(
        help="Write last.pt every N iterations (and at the end).",
    )] = _DEFAULTS.save_every,
    eval_every: Annotated[int | None, typer.Option(
        help="Validate every N iterations (default: every epoch, at most 10 times, and at the end).",
    )] = _DEFAULTS.eval_every,
    deterministic: Annotated[bool, typer.Option(
        "--deterministic",
        help="Deterministic cuDNN kernels (slower).",
    )] = _DEFAULTS.deterministic,
    no_progress: Annotated[bool, typer.Option(
        "--no-progress",
        help="No progress bar (for logs).",
    )] = not _DEFAULTS.progress,
    masks: dict[str, object] | None = None,
) -> None:
    """Train Mask R-CNN; checkpoints hold everything export needs (weights + recipe + classes)."""
    options = dict(locals())
    from dataclasses import fields

    from maskrt.paths import check_writable, refuse_overwriting_inputs
    from maskrt.train.trainer import train as run_training

    check_writable(out, kind="folder", option="--out")
    if not (resume and (out / "last.pt").is_file()):  # a resumed run rewrites its own last.pt, as asked
        inputs = [p for p in [*_split(data), *_split(val), weights] if Path(p).is_file()]
        outputs = [out / name for name in ("last.pt", "best.pt", "metrics.jsonl", "curves.png")]
        refuse_overwriting_inputs(inputs, files=outputs, fix="pass another --out for the new run")
    cfg = TrainConfig(
        **{f.name: options[f.name] for f in fields(TrainConfig) if f.name in options and f.name not in SET_HERE},
        data=_split(data),
        val=_split(val),
        out=str(out),
        progress=not no_progress,
        masks=masks or {},
    )
    result = run_training(cfg)
    import os

    if int(os.environ.get("RANK", "0")) != 0:
        return
    typer.echo(
        f"trained {result.iterations} iterations ({result.epochs:.2f} epochs) in {result.wall_s:.1f} s, "
        f"{result.images_per_s:.2f} images/s"
    )
    if result.metrics:
        m = result.metrics
        typer.echo(
            f"validation: mask AP {m['segm']['AP']:.3f} AP50 {m['segm']['AP50']:.3f} | "
            f"box AP {m['bbox']['AP']:.3f} AP50 {m['bbox']['AP50']:.3f}"
            + (f" | phase map IoU {m['phase']['iou']:.3f}" if "phase" in m else "")
        )
    typer.echo(f"checkpoints: {result.last}" + (f", {result.best}" if result.best else ""))
    if result.curves:
        typer.echo(f"curves: {result.curves}")


@app.command("eval")
def eval_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .pt written by `maskrt train`.")],
    data: Annotated[list[str], typer.Option(
        "--data",
        help="Dataset(s) to score on; repeat or comma-separate.",
    )],
    json_out: Annotated[Path | None, typer.Option(
        "--json",
        help="Also write COCO results JSON (masks as RLE) here.",
    )] = None,
    metrics_out: Annotated[Path | None, typer.Option(
        "--metrics",
        help="Also write the metrics as JSON here.",
    )] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    imgsz: Annotated[int | None, typer.Option(
        "--imgsz",
        help="Score at this input size (longer side) instead of the "
                              "training size, e.g. the size you will export at.",
    )] = None,
    max_det: Annotated[int | None, typer.Option(
        "--max-det",
        help="Detections kept per image (default: the checkpoint's).",
    )] = None,
) -> None:
    """Print COCO box and mask AP, AP50, AP75, APs/m/l and per-class AP of a checkpoint on a dataset."""
    import json

    from maskrt.atomic import write_text
    from maskrt.paths import check_writable, refuse_overwriting_inputs
    from maskrt.train.checkpoint import load_model
    from maskrt.train.dataset import align_classes, load_datasets
    from maskrt.train.evaluate import evaluate_model, format_metrics
    from maskrt.train.trainer import resolve_device

    outputs = [p for p in (json_out, metrics_out) if p is not None]
    for option, p in (("--json", json_out), ("--metrics", metrics_out)):
        if p is not None:
            check_writable(p, kind="file", option=option)
    inputs = [checkpoint, *(p for p in _split(data) if Path(p).is_file())]
    refuse_overwriting_inputs(inputs, files=outputs, fix="write the results elsewhere, e.g. --metrics metrics.json")
    dev = resolve_device(device)
    model, recipe, _ = load_model(checkpoint, dev)
    if imgsz is not None:
        if imgsz < 32:
            raise MaskrtError(f"--imgsz {imgsz} is too small; pass e.g. --imgsz {recipe.image_size}")
        from maskrt.train.models import set_input_size

        set_input_size(model, int(imgsz))
    if max_det is not None:
        if max_det < 1:
            raise MaskrtError(f"--max-det {max_det} must be at least 1; pass e.g. --max-det 100")
        from maskrt.train.models import set_max_det

        set_max_det(model, int(max_det))
    ds = align_classes(load_datasets(_split(data)), recipe.classes)
    metrics = evaluate_model(model, ds, dev, results_json=json_out)
    size = imgsz or recipe.image_size
    typer.echo(f"{checkpoint} at {size} px on {len(ds.images)} images, {ds.num_instances} instances")
    typer.echo(format_metrics(metrics))
    if metrics_out is not None:
        write_text(metrics_out, json.dumps(metrics, indent=2))
    if json_out is not None:
        typer.echo(f"results: {json_out}")
