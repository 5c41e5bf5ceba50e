"""What a training run is asked to do: :class:`TrainConfig`, with every option's default written once.

torch-free, so that ``maskrt train``'s options take their defaults from here without importing torch
(:mod:`maskrt.train.trainer` runs it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    """Everything a training run needs (the CLI's options). ``epochs`` or ``iters`` sets the length."""

    data: list[str] = field(default_factory=list)
    val: list[str] = field(default_factory=list)
    val_split: float = 0.1
    arch: str | None = None
    imgsz: int = 512
    epochs: int | None = None
    iters: int | None = None
    batch: int = 4
    lr: float | None = None
    optimizer: str = "sgd"
    schedule: str = "cosine"
    warmup: int | None = None
    weight_decay: float | None = None
    clip_grad: float = 10.0
    workers: int = 2
    device: str = "auto"
    amp: bool = False
    out: str = "runs/train"
    resume: bool = False
    augment: str = "default"
    weights: str = "none"
    phase: bool = False  # add the per-pixel phase head (maskrt.train.phase)
    phase_only: bool = False  # train only the phase head of --weights; everything else stays as loaded
    seed: int = 0
    save_every: int = 50
    eval_every: int | None = None
    log_every: int = 10
    deterministic: bool = False
    progress: bool = True
    masks: dict[str, Any] = field(default_factory=dict)  # mask-image options (MaskOptions.as_dict)

    def default_lr(self) -> float:
        return self.lr if self.lr is not None else (0.02 if self.optimizer == "sgd" else 1e-3)
