"""The training run: data, model, optimizer, the loop, evaluation, checkpoints, resume, logs and curves.

Example:
    >>> from maskrt.train.trainer import TrainConfig, train
    >>> result = train(TrainConfig(data=["data/train"], val=["data/valid"], arch="lite", iters=2000,
    ...                            batch=4, imgsz=512, out="runs/bubbles"))
    >>> result.best, result.metrics["segm"]["AP50"]
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from maskrt.errors import MaskrtError
from maskrt.lock import FolderLock
from maskrt.train import engine
from maskrt.train.checkpoint import load_checkpoint, save_checkpoint
from maskrt.train.config import TrainConfig
from maskrt.train.curves import MetricsLog, plot_curves
from maskrt.train.distributed import DistInfo, all_reduce_mean, barrier, cleanup, init_distributed
from maskrt.train.sampler import ResumableBatchSampler, iters_per_epoch

if TYPE_CHECKING:
    from maskrt.train.models import ModelRecipe

log = logging.getLogger(__name__)

# options that may change when a run is resumed; everything else comes from the checkpoint
_RUNTIME_FIELDS = {"device", "workers", "progress", "resume", "out", "save_every", "log_every"}


@dataclass
class TrainResult:
    """What a finished run produced."""

    out: Path
    last: Path
    best: Path | None
    iterations: int
    epochs: float
    wall_s: float
    train_s: float
    images_per_s: float
    metrics: dict[str, Any]
    log: Path
    curves: Path | None


def _loader_worker_init(worker_id: int) -> None:
    """One OpenCV thread per data-loader worker: N workers each spawning a pool per core oversubscribe the CPU."""
    import cv2

    cv2.setNumThreads(1)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is a MaskrtError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MaskrtError("--device cuda: no CUDA GPU visible to torch; use --device cpu or auto")
    if not (name == "cpu" or name.startswith("cuda")):
        raise MaskrtError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, numpy and torch; optionally ask cuDNN for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _merge_resume(cfg: TrainConfig, saved: dict[str, Any]) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    merged = {k: v for k, v in saved.items() if k in names and k not in _RUNTIME_FIELDS}
    merged.update({k: getattr(cfg, k) for k in _RUNTIME_FIELDS})
    if cfg.iters is not None or cfg.epochs is not None:  # extend (or shorten) a finished run
        merged["iters"], merged["epochs"] = cfg.iters, cfg.epochs
    return TrainConfig(**merged)


def _datasets(cfg: TrainConfig) -> tuple[Any, Any]:
    from maskrt.train.dataset import align_classes, load_datasets

    train_ds = load_datasets(cfg.data, masks=cfg.masks)
    if not train_ds.images:
        raise MaskrtError(
            "the training dataset has no usable images; run `maskrt data check` on it", path=str(cfg.data[0])
        )
    val_ds = None
    if cfg.val:
        val_ds = align_classes(load_datasets(cfg.val, masks=cfg.masks), train_ds.classes)
    elif cfg.val_split > 0 and len(train_ds.images) > 1:
        train_ds, val_ds = train_ds.split(cfg.val_split, seed=cfg.seed)
    return train_ds, val_ds


def _set_phase_loss(model: torch.nn.Module, cfg: TrainConfig, recipe: Any) -> None:
    """Give the phase head the loss asked for (``--phase-loss``); refused on a model without one."""
    from maskrt.train.phase import PhaseMaskRCNN

    if isinstance(model, PhaseMaskRCNN):
        model.phase_loss = cfg.phase_loss
        if cfg.phase_loss != "dice":
            log.info("phase map trained with cross-entropy + %s", cfg.phase_loss)
    elif cfg.phase_loss != "dice":
        raise MaskrtError(f"--phase-loss {cfg.phase_loss}: the {recipe.arch} model has no phase head; "
                          "add --phase (or --phase-only)")


def _lite_fast_from_lite(model: torch.nn.Module, cfg: TrainConfig, train_ds: Any, n_images: int = 8) -> None:
    """A lite-fast run from lite weights: distil its separable stride-4 convolutions first (maskrt.train.lite_fast)."""
    if cfg.weights in ("none", "imagenet", "coco"):
        return
    from maskrt.train.lite_fast import distil_stride_four, has_dense_stride_four, spread_images
    from maskrt.train.weights_source import read_weights

    state, _ = read_weights(cfg.weights)
    if not has_dense_stride_four(state):
        return
    distil_stride_four(model, state, spread_images(train_ds, cfg.imgsz, n_images))


def _light_mask_from_checkpoint(
    model: torch.nn.Module, recipe: ModelRecipe, cfg: TrainConfig, train_ds: Any, n_images: int = 16, steps: int = 400,
    max_epochs: float = 8.0,
) -> None:
    """A run whose mask head is narrower or wider than its --weights checkpoint's: distil it from that one first.

    The other weights are loaded already; the new head would start from random values, and with it every mask,
    so it is fitted to the checkpoint's own mask logits on its detections of a few training images
    (:mod:`maskrt.train.mask_head`).
    """
    if cfg.weights in ("none", "imagenet", "coco") or cfg.phase_only or not recipe.mask_channels:
        return
    from maskrt.train.lite_fast import spread_images
    from maskrt.train.mask_head import distil_mask_head
    from maskrt.train.models import build_model
    from maskrt.train.weights_source import read_weights

    state, src = read_weights(cfg.weights)
    if src is None or src.mask_width == recipe.mask_width:  # a bare state dict has no recipe to rebuild it from
        return
    if src.classes != recipe.classes or src.arch not in ("lite", "lite-fast"):
        log.info("mask head %d wide starts fresh: the checkpoint's classes or preset differ", recipe.mask_channels)
        return
    device = next(model.parameters()).device
    teacher = build_model(src)  # the checkpoint's own recipe: its mask head as it was trained
    teacher.load_state_dict({k: v.float() for k, v in state.items()})
    teacher.to(device)
    report = distil_mask_head(model, teacher, [im.to(device) for im in spread_images(train_ds, cfg.imgsz, n_images)],
                              steps=steps, max_epochs=max_epochs)
    log.info("mask head distilled from %s first: mean mask IoU against its own %.3f on held-out RoIs",
             cfg.weights, report["distilled"]["mean_mask_iou"])


def suggested_max_det(dataset: Any) -> int:
    """Detections to keep per image: 100, or 1.25x the most instances on one training image (max 1000)."""
    most = max((len(im.annotations) for im in dataset.images), default=0)
    return int(min(1000, max(100, math.ceil(most * 1.25 / 50) * 50)))


@dataclass
class _RunState:
    """What the step callback updates: best mask AP, latest metrics, pure training time, images seen."""

    best: float = -1.0
    metrics: dict[str, Any] = field(default_factory=dict)
    train_s: float = 0.0
    seen: int = 0


class _Progress:
    """A rich progress bar with live losses on rank 0; silent elsewhere."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self.bar: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[losses]}"),
                console=Console(stderr=True),
            )
            self.task = self.bar.add_task("train", total=total, completed=start, losses="")
            self.bar.start()

    @property
    def live(self) -> bool:
        """Whether a bar is drawn (a terminal); otherwise the trainer logs progress lines instead."""
        return self.bar is not None and self.bar.console.is_terminal

    @staticmethod
    def text(values: dict[str, float]) -> str:
        short = {
            "loss": "loss",
            "loss_classifier": "cls",
            "loss_box_reg": "box",
            "loss_mask": "mask",
            "loss_objectness": "obj",
            "loss_rpn_box_reg": "rpn",
        }
        text = " ".join(f"{s} {values[k]:.3f}" for k, s in short.items() if k in values)
        return f"{text} lr {values.get('lr', 0):.2g}"

    def update(self, it: int, values: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=it, losses=self.text(values))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def train(config: TrainConfig) -> TrainResult:
    """Run (or resume) training as ``config`` says; return where the checkpoints and logs are.

    Writes ``last.pt`` every ``save_every`` iterations and at the end, ``best.pt`` whenever validation
    mask AP improves, ``metrics.jsonl`` and ``curves.png`` under ``config.out``.

    Only one run at a time may use ``config.out``: a second one is refused with a message naming the first
    (a lock on the folder, freed when the process ends, however it ends).

    Raises:
        MaskrtError: bad data, options or weights; a non-finite loss; ``config.out`` in use by another run.
    """
    t_start = time.perf_counter()
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 writes the run folder, so it locks
        return _train(config, t_start)
    with FolderLock(config.out, what="training run", option="--out"):
        return _train(config, t_start)


def _train(config: TrainConfig, t_start: float) -> TrainResult:
    cfg = config
    out = Path(cfg.out)
    resume_ckpt: dict[str, Any] | None = None
    if cfg.resume:
        if (out / "last.pt").is_file():
            resume_ckpt = load_checkpoint(out / "last.pt")
            cfg = _merge_resume(cfg, resume_ckpt.get("args", {}))
        else:
            log.warning("%s: no last.pt to resume from; starting a new run", out)
    if not cfg.data:
        raise MaskrtError("no training data; pass --data PATH")
    if cfg.epochs is not None and cfg.iters is not None:
        raise MaskrtError("give --epochs or --iters, not both")
    if cfg.epochs is None and cfg.iters is None:
        cfg.epochs = 12
    from maskrt.train.augment import AugmentConfig

    AugmentConfig.parse(cfg.augment)  # option errors before any slow work
    engine.lr_factor(0, 1, 0, cfg.schedule)
    if cfg.optimizer not in ("sgd", "adamw"):
        raise MaskrtError(f"unknown optimizer {cfg.optimizer!r}; use --optimizer sgd or adamw")
    from maskrt.train.phase import PHASE_LOSSES

    if cfg.phase_loss not in PHASE_LOSSES:
        raise MaskrtError(f"unknown phase loss {cfg.phase_loss!r}; use --phase-loss {' or '.join(PHASE_LOSSES)}")
    device = resolve_device(cfg.device)
    dist = init_distributed(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    try:
        return _run(cfg, out, device, dist, resume_ckpt, t_start)
    finally:
        cleanup(dist)


def _run(
    cfg: TrainConfig,
    out: Path,
    device: torch.device,
    dist: DistInfo,
    resume_ckpt: dict[str, Any] | None,
    t_start: float,
) -> TrainResult:
    from maskrt.train.augment import build_augment
    from maskrt.train.dataset import MaskDataset, collate
    from maskrt.train.evaluate import evaluate_model
    from maskrt.train.weights_source import model_for_training

    seed_everything(cfg.seed + dist.rank, cfg.deterministic)
    train_ds, val_ds = _datasets(cfg)
    if resume_ckpt is not None:
        from maskrt.train.models import ModelRecipe, build_model

        recipe = ModelRecipe.from_dict(resume_ckpt["recipe"])
        model = build_model(recipe)
        model.load_state_dict(resume_ckpt["model"])
        if cfg.phase_only:
            model.set_phase_only(True)
    else:
        recipe, model = model_for_training(
            cfg.arch, train_ds.classes, cfg.imgsz, cfg.weights, max_det=suggested_max_det(train_ds),
            phase=cfg.phase, phase_only=cfg.phase_only, phase_stride=cfg.phase_stride,
            mask_channels=cfg.mask_channels,
        )
    cfg.arch = recipe.arch
    _set_phase_loss(model, cfg, recipe)
    model.to(device)
    if resume_ckpt is None and recipe.arch == "lite-fast" and dist.is_main:  # DDP copies rank 0's weights
        _lite_fast_from_lite(model, cfg, train_ds)  # on the training device
    if resume_ckpt is None and dist.is_main:
        _light_mask_from_checkpoint(model, recipe, cfg, train_ds)
    if cfg.freeze_bn:
        log.info("BatchNorm frozen as loaded: %d layers", engine.freeze_batchnorm(model))
    ipe = iters_per_epoch(len(train_ds.images), cfg.batch, dist.world_size)
    total = cfg.iters if cfg.iters is not None else ipe * int(cfg.epochs or 1)
    warmup = cfg.warmup if cfg.warmup is not None else min(300, total // 10)
    optimizer = engine.build_optimizer(model, cfg.optimizer, cfg.default_lr(), cfg.weight_decay)
    scheduler = engine.build_scheduler(optimizer, total, warmup, cfg.schedule)
    use_amp = cfg.amp and device.type == "cuda"
    if cfg.amp and not use_amp:
        log.warning("--amp needs CUDA; training in float32 on %s", device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start, best = 0, -1.0
    last_metrics: dict[str, Any] = {}
    if resume_ckpt is not None:
        optimizer.load_state_dict(resume_ckpt["optimizer"])
        scheduler.load_state_dict(resume_ckpt["lr_scheduler"])
        if "scaler" in resume_ckpt:
            scaler.load_state_dict(resume_ckpt["scaler"])
        start = int(resume_ckpt["iteration"])
        best = float(resume_ckpt.get("best_metric", -1.0))
        last_metrics = resume_ckpt.get("metrics", {})
        if dist.world_size == 1 and "rng" in resume_ckpt:
            engine.set_rng_state(resume_ckpt["rng"])
        else:
            seed_everything(cfg.seed + dist.rank + 7919 * start)
        log.info("resuming %s at iteration %d of %d", out, start, total)
    metrics_log = MetricsLog(out / "metrics.jsonl")
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        if resume_ckpt is not None:
            metrics_log.truncate(start)
        elif metrics_log.path.exists():
            metrics_log.path.unlink()
    eval_every = cfg.eval_every or max(ipe, math.ceil(total / 10))
    train_model: torch.nn.Module = model
    if dist.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    view = MaskDataset(train_ds, max_size=cfg.imgsz, augment=build_augment(cfg.augment, cfg.imgsz))
    sampler = ResumableBatchSampler(len(view), cfg.batch, cfg.seed, start, total, dist.rank, dist.world_size)
    loader = torch.utils.data.DataLoader(
        view,
        batch_sampler=sampler,
        num_workers=cfg.workers,
        collate_fn=collate,
        persistent_workers=False,
        pin_memory=device.type == "cuda",
        worker_init_fn=_loader_worker_init,
    )
    if cfg.workers > 0:
        # Importing decodes every image with OpenCV, which leaves its thread pool waiting in this process; a
        # worker forked from it then hangs for ever in pthread_cond_destroy when it sets its own thread count.
        # Shutting the pool down here (the training process itself does no OpenCV work) avoids that.
        import cv2

        cv2.setNumThreads(1)
    batches = iter(loader)
    progress = _Progress(cfg.progress and dist.is_main, total, start)
    state = _RunState(best=best, metrics=last_metrics)
    t_iter = time.perf_counter()

    def save(it: int, name: str = "last.pt", full: bool = True) -> Path:
        extra: dict[str, Any] = {
            "metrics": state.metrics,
            "epoch": it / ipe,
            "iteration": it,
            "total_iters": total,
            "args": asdict(cfg),
            "best_metric": state.best,
        }
        if full:
            extra.update(
                optimizer=optimizer.state_dict(),
                lr_scheduler=scheduler.state_dict(),
                scaler=scaler.state_dict(),
                rng=engine.rng_state(),
            )
        return save_checkpoint(out / name, model, recipe, **extra)

    def on_step(it: int, values: dict[str, float]) -> None:
        nonlocal t_iter
        now = time.perf_counter()
        state.train_s += now - t_iter
        state.seen += cfg.batch * dist.world_size
        if dist.enabled:  # log the mean over ranks
            values = {
                **all_reduce_mean({k: v for k, v in values.items() if k != "lr"}, dist),
                "lr": values["lr"],
            }
        progress.update(it, values)
        if dist.is_main and not progress.live and (it % (cfg.log_every * 5) == 0 or it == total):
            log.info("iteration %d/%d: %s", it, total, progress.text(values))
        if dist.is_main and (it % cfg.log_every == 0 or it == total or it == start + 1):
            metrics_log.append(
                {
                    "iter": it,
                    "epoch": round(it / ipe, 3),
                    **{k: round(v, 6) for k, v in values.items()},
                    "train_s": round(state.train_s, 3),  # training time so far (evaluations excluded)
                }
            )
        if val_ds is not None and (it % eval_every == 0 or it == total):
            if dist.is_main:
                m = evaluate_model(model, val_ds, device)
                model.train()
                state.metrics = m
                metrics_log.append({"iter": it, "epoch": round(it / ipe, 3), "eval": m})
                log.info(
                    "iteration %d: mask AP %.3f AP50 %.3f | box AP %.3f AP50 %.3f",
                    it,
                    m["segm"]["AP"],
                    m["segm"]["AP50"],
                    m["bbox"]["AP"],
                    m["bbox"]["AP50"],
                )
                if "phase" in m:
                    log.info("iteration %d: phase map IoU %.3f, void fraction abs. error %.4f", it,
                             m["phase"]["iou"], m["phase"]["void_abs_err"])
                # a phase-only run changes nothing but the phase map: its best is the best map
                score = m["phase"]["iou"] if cfg.phase_only and "phase" in m else m["segm"]["AP"]
                if score > state.best:
                    state.best = score
                    save(it, "best.pt", full=False)
            barrier(dist)
        if dist.is_main and (it % cfg.save_every == 0 or it == total):
            save(it)
        t_iter = time.perf_counter()

    it = start
    try:
        while it < total:
            epoch_end = min(total, (it // ipe + 1) * ipe)
            epoch_batches = itertools.islice(batches, epoch_end - it)
            it = engine.train_one_epoch(
                train_model,
                optimizer,
                scheduler,
                epoch_batches,
                device,
                it,
                scaler=scaler,
                clip_grad=cfg.clip_grad,
                on_step=on_step,
            )
    finally:
        progress.close()
    if start == total and dist.is_main:
        log.info("%s: already trained for %d iterations; nothing to resume", out, total)
        if not (out / "last.pt").exists():
            save(total)
    curves = plot_curves(metrics_log.read(), out / "curves.png") if dist.is_main else None
    barrier(dist)
    wall = time.perf_counter() - t_start
    return TrainResult(
        out=out,
        last=out / "last.pt",
        best=(out / "best.pt") if (out / "best.pt").exists() else None,
        iterations=it,
        epochs=it / ipe,
        wall_s=wall,
        train_s=state.train_s,
        images_per_s=state.seen / state.train_s if state.train_s > 0 else 0.0,
        metrics=state.metrics,
        log=metrics_log.path,
        curves=curves,
    )
