"""One training pass and its pieces, after torchvision's ``references/detection/engine.py``.

:func:`train_one_epoch` runs a stream of batches with AMP, gradient clipping and a guard that stops
on a non-finite loss; :func:`build_optimizer` and :func:`build_scheduler` make SGD/AdamW and the
warm-up + cosine/step schedule, stepped per iteration.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterable
from typing import Any

import torch

from maskrt.errors import MaskrtError


def _stay_in_eval(module: torch.nn.Module, mode: bool = True) -> torch.nn.Module:
    module.training = False
    return module


def freeze_batchnorm(model: torch.nn.Module) -> int:
    """Keep every BatchNorm layer as loaded: eval mode from now on (also after ``model.train()``), no gradients.

    Fine-tuning at a few images per batch, or on images unlike the ones a model learnt its statistics from,
    otherwise re-estimates the running means and variances from those batches, and every image of the earlier
    domain is then normalised with the new domain's statistics. Returns the number of layers frozen.
    """
    n = 0
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.requires_grad_(False)
            m.eval()
            m.train = types.MethodType(_stay_in_eval, m)  # type: ignore[method-assign]
            n += 1
    return n


def build_optimizer(
    model: torch.nn.Module, name: str, lr: float, weight_decay: float | None = None, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """SGD (momentum, wd 1e-4) or AdamW (wd 1e-4) over the trainable parameters; no decay on norms/biases."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    wd = 1e-4 if weight_decay is None else weight_decay
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise MaskrtError(f"unknown optimizer {name!r}; use --optimizer sgd or adamw")


def lr_factor(
    it: int, total: int, warmup: int, schedule: str, warmup_factor: float = 0.001, min_factor: float = 0.01
) -> float:
    """Learning-rate multiplier at iteration ``it``: linear warm-up, then cosine, step or constant."""
    if warmup > 0 and it < warmup:
        a = it / warmup
        return warmup_factor * (1 - a) + a
    if schedule == "cosine":
        span = max(1, total - warmup)
        t = min(1.0, (it - warmup) / span)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * t))
    if schedule == "step":  # x0.1 at 2/3 and 8/9 of the run (the detectron2 '1x' shape)
        return 0.1 ** sum(it >= total * f for f in (2 / 3, 8 / 9))
    if schedule == "constant":
        return 1.0
    raise MaskrtError(f"unknown schedule {schedule!r}; use --schedule cosine, step or constant")


def build_scheduler(
    optimizer: torch.optim.Optimizer, total: int, warmup: int, schedule: str
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-iteration LambdaLR over :func:`lr_factor` (its state is the iteration count, so it resumes)."""
    lr_factor(0, total, warmup, schedule)  # validate the name now
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, total, warmup, schedule))


def train_one_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    batches: Iterable[tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]],
    device: torch.device,
    start_iter: int,
    scaler: torch.amp.GradScaler | None = None,
    clip_grad: float = 0.0,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> int:
    """Train on ``batches``; return the global iteration after the last one.

    ``on_step(iteration, losses)`` runs after every optimizer step with the iteration just finished
    (1-based count) and the float losses (``loss`` is their sum); the trainer logs and checkpoints there.

    Raises:
        MaskrtError: when the loss becomes NaN or infinite (nothing is stepped or saved for that batch).
    """
    model.train()
    it = start_iter
    use_amp = scaler is not None and scaler.is_enabled()
    for images, targets in batches:
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            loss_dict = model(images, targets)
        losses = sum(loss_dict.values())
        assert isinstance(losses, torch.Tensor)
        values = {k: float(v.detach()) for k, v in loss_dict.items()}
        total = float(losses.detach())
        if not math.isfinite(total):
            lr = optimizer.param_groups[0]["lr"]
            parts = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
            raise MaskrtError(
                f"training stopped: loss became {total} at iteration {it + 1} ({parts}); lower --lr "
                f"(now {lr:.3g}), keep --clip-grad on, or check the annotations"
            )
        optimizer.zero_grad(set_to_none=True)
        if use_amp:
            assert scaler is not None
            scaler.scale(losses).backward()
            if clip_grad > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            scaler.step(optimizer)
            scaler.update()
        else:
            losses.backward()
            if clip_grad > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
        scheduler.step()
        it += 1
        values["loss"] = total
        values["lr"] = float(optimizer.param_groups[0]["lr"])
        if on_step is not None:
            on_step(it, values)
    return it


def rng_state() -> dict[str, Any]:
    """Every RNG state a resumed run needs to continue identically."""
    import random

    import numpy as np

    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    import random

    import numpy as np

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
