"""`maskrt train` and `maskrt eval`: train Mask R-CNN on a dataset, score a checkpoint with COCO AP."""

from __future__ import annotations

from pathlib import Path

import typer

from maskrt.cli.app import app
from maskrt.cli.data import (
    CLASS_NAME_HELP,
    CLASSES_HELP,
    CONNECTIVITY_HELP,
    MASK_KIND_HELP,
    MIN_AREA_HELP,
    SPLIT_HELP,
    THRESHOLD_HELP,
    mask_options,
)
from maskrt.errors import MaskrtError


def _split(values: list[str] | None) -> list[str]:
    return [p.strip() for v in (values or []) for p in v.split(",") if p.strip()]


@app.command()
def train(
    data: list[str] = typer.Option(
        None,
        "--data",
        help="Training data (COCO JSON, labelme/VIA/CVAT, folder); "
        "repeat or comma-separate to merge several. Optional with --resume.",
    ),
    val: list[str] = typer.Option(
        None, "--val", help="Validation data; repeat or comma-separate (e.g. valid,test)."
    ),
    val_split: float = typer.Option(
        0.1, help="Fraction of --data held out for validation when --val is absent (0: no validation)."
    ),
    arch: str = typer.Option(
        None,
        help="Preset: lite, mbv3-fpn, r50-fpn, r50-fpn-v2 (default: the --weights checkpoint's, else lite).",
    ),
    imgsz: int = typer.Option(512, help="Input size: the longer image side the model sees."),
    epochs: int = typer.Option(None, help="Training length in passes over the data (default 12)."),
    iters: int = typer.Option(None, help="Training length in iterations (instead of --epochs)."),
    batch: int = typer.Option(4, help="Images per batch (per process under torchrun)."),
    lr: float = typer.Option(None, help="Peak learning rate (default: 0.02 for sgd, 0.001 for adamw)."),
    optimizer: str = typer.Option("sgd", help="sgd or adamw."),
    schedule: str = typer.Option("cosine", help="cosine, step or constant (after the linear warm-up)."),
    warmup: int = typer.Option(None, help="Warm-up iterations (default: 10% of the run, at most 300)."),
    clip_grad: float = typer.Option(10.0, help="Gradient-norm clipping (0: off)."),
    workers: int = typer.Option(2, help="Data-loading processes."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    amp: bool = typer.Option(False, "--amp", help="Mixed precision (CUDA only)."),
    out: Path = typer.Option(
        Path("runs/train"), help="Run folder: last.pt, best.pt, metrics.jsonl, curves.png."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    augment: str = typer.Option(
        "default",
        help="Augmentation: none|light|default|heavy, then key=value "
        "overrides, e.g. 'default,rotate=20,scale=0.5:2,noise=0' (keys: hflip vflip "
        "rot90 rotate scale brightness contrast gamma blur noise).",
    ),
    weights: str = typer.Option(
        "none",
        help="Start from: none, imagenet, coco (r50 presets), bubbles-lite "
        "(bundled), or a checkpoint / torchvision state-dict path.",
    ),
    seed: int = typer.Option(0, help="Random seed (data order, augmentation, initialisation)."),
    save_every: int = typer.Option(50, help="Write last.pt every N iterations (and at the end)."),
    eval_every: int = typer.Option(
        None, help="Validate every N iterations (default: every epoch, at most 10 times, and at the end)."
    ),
    deterministic: bool = typer.Option(
        False, "--deterministic", help="Deterministic cuDNN kernels (slower)."
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar (for logs)."),
    mask_kind: str = typer.Option("auto", "--mask-kind", help=MASK_KIND_HELP),
    threshold: float = typer.Option(0.5, "--mask-threshold", help=THRESHOLD_HELP),
    connectivity: int = typer.Option(8, "--connectivity", help=CONNECTIVITY_HELP),
    min_area: int = typer.Option(4, "--min-area", help=MIN_AREA_HELP),
    classes: str | None = typer.Option(None, "--classes", help=CLASSES_HELP),
    class_name: str = typer.Option("bubble", "--class-name", help=CLASS_NAME_HELP),
    split_touching: bool = typer.Option(False, "--split-touching", help=SPLIT_HELP),
) -> None:
    """Train Mask R-CNN; checkpoints hold everything export needs (weights + recipe + classes)."""
    from maskrt.paths import check_writable, refuse_overwriting_inputs
    from maskrt.train.trainer import TrainConfig
    from maskrt.train.trainer import train as run_training

    check_writable(out, kind="folder", option="--out")
    if not (resume and (out / "last.pt").is_file()):  # a resumed run rewrites its own last.pt, as asked
        inputs = [p for p in [*_split(data), *_split(val), weights] if Path(p).is_file()]
        outputs = [out / name for name in ("last.pt", "best.pt", "metrics.jsonl", "curves.png")]
        refuse_overwriting_inputs(inputs, files=outputs, fix="pass another --out for the new run")
    cfg = TrainConfig(
        data=_split(data),
        val=_split(val),
        val_split=val_split,
        arch=arch,
        imgsz=imgsz,
        epochs=epochs,
        iters=iters,
        batch=batch,
        lr=lr,
        optimizer=optimizer,
        schedule=schedule,
        warmup=warmup,
        clip_grad=clip_grad,
        workers=workers,
        device=device,
        amp=amp,
        out=str(out),
        resume=resume,
        augment=augment,
        weights=weights,
        seed=seed,
        save_every=save_every,
        eval_every=eval_every,
        deterministic=deterministic,
        progress=not no_progress,
        masks=mask_options(mask_kind, threshold, connectivity, min_area, classes, class_name, split_touching),
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
        )
    typer.echo(f"checkpoints: {result.last}" + (f", {result.best}" if result.best else ""))
    if result.curves:
        typer.echo(f"curves: {result.curves}")


@app.command("eval")
def eval_cmd(
    checkpoint: Path = typer.Argument(..., help="A .pt written by `maskrt train`."),
    data: list[str] = typer.Option(..., "--data", help="Dataset(s) to score on; repeat or comma-separate."),
    json_out: Path = typer.Option(None, "--json", help="Also write COCO results JSON (masks as RLE) here."),
    metrics_out: Path = typer.Option(None, "--metrics", help="Also write the metrics as JSON here."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    imgsz: int = typer.Option(None, "--imgsz", help="Score at this input size (longer side) instead of the "
                              "training size, e.g. the size you will export at."),
    max_det: int = typer.Option(None, "--max-det", help="Detections kept per image (default: the checkpoint's)."),
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
