"""What the stages are asked to do, each option's default written once, where the CLI can read it.

:class:`TrainConfig` (``maskrt train``), :class:`MaskOptions` (how mask images become instances:
``maskrt train``, ``convert`` and ``data check``) and :class:`ExportOptions` (``maskrt export``) live here,
outside ``maskrt.train`` and ``maskrt.export``, because the CLI declares its options with these defaults and
may not import those packages before a training, data or export command runs (``maskrt run`` works where
neither can be imported). Nothing here imports torch, numpy or OpenCV. The stages re-export them where they
are used: ``maskrt.train.config`` (and ``maskrt.train.trainer``), ``maskrt.train.data.masks`` and
``maskrt.export.pipeline``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from maskrt.artifact import GRAPH_SCORE_THRESHOLD
from maskrt.errors import MaskrtError

MASK_KINDS = ("auto", "binary", "labels", "instances")


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
    phase_stride: int | None = None  # 4 or 2 (image-resolution refinement); None: the checkpoint's, else 4
    phase_loss: str = "dice"  # the phase map's overlap term beside cross-entropy: dice or lovasz (train.phase)
    mask_channels: int | None = None  # lite presets: the mask head's width (64: the light head); None: as --weights
    freeze_bn: bool = False  # BatchNorm statistics and affine weights stay as loaded (fine-tuning at small batches)
    seed: int = 0
    save_every: int = 50
    eval_every: int | None = None
    log_every: int = 10
    deterministic: bool = False
    progress: bool = True
    masks: dict[str, Any] = field(default_factory=dict)  # mask-image options (MaskOptions.as_dict)

    def default_lr(self) -> float:
        return self.lr if self.lr is not None else (0.02 if self.optimizer == "sgd" else 1e-3)


@dataclass(frozen=True)
class MaskOptions:
    """How mask images become instances.

    Attributes:
        kind: ``binary``, ``labels`` or ``instances``; ``auto`` is ``labels`` when ``classes`` is given, else
            ``binary``.
        threshold: binary masks: a fraction of the mask's maximum (0 < t <= 1; 0.5 is half the foreground
            value), or an absolute grey level when above 1.
        connectivity: 8 or 4, for connected components.
        min_area: instances with fewer pixels are dropped.
        class_name: the class of a binary mask's or an instance map's instances.
        classes: label maps: value -> class name.
        split: separate touching blobs of a semantic mask by a distance-transform watershed.
        split_ratio: two blobs stay one when the distance transform at their neck is at least this fraction
            of the smaller blob's peak (higher splits more).
    """

    kind: str = "auto"
    threshold: float = 0.5
    connectivity: int = 8
    min_area: int = 4
    class_name: str = "bubble"
    classes: dict[int, str] | None = field(default=None)
    split: bool = False
    split_ratio: float = 0.7

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> MaskOptions:
        """Options from plain values (a CLI's, a saved run's); ``classes`` may be ``"1=bubble,2=droplet"``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise MaskrtError(
                f"unknown mask option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        kw = dict(values)
        if isinstance(kw.get("classes"), str) or kw.get("classes") is None:
            kw["classes"] = parse_classes(kw.get("classes"))  # type: ignore[arg-type]
        else:
            kw["classes"] = {int(k): str(v) for k, v in kw["classes"].items()}  # type: ignore[union-attr]
        return cls(**kw)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, object]:
        """Plain values (``classes`` as ``"1=bubble,2=droplet"``) that :meth:`from_dict` reads back."""
        d: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        d["classes"] = ",".join(f"{v}={n}" for v, n in self.classes.items()) if self.classes else None
        return d

    def resolved_kind(self) -> str:
        """The mask kind with ``auto`` decided."""
        if self.kind == "auto":
            return "labels" if self.classes else "binary"
        return self.kind

    def check(self) -> MaskOptions:
        """Raise :class:`MaskrtError` for an option a user set wrong; return ``self``."""
        if self.kind not in MASK_KINDS:
            raise MaskrtError(f"unknown mask kind {self.kind!r}; choose one of {', '.join(MASK_KINDS)}")
        if self.connectivity not in (4, 8):
            raise MaskrtError(f"connectivity {self.connectivity} is not 4 or 8; pass --connectivity 8 or 4")
        if not self.threshold > 0:
            raise MaskrtError(
                f"mask threshold {self.threshold} must be above 0: a fraction of the mask's maximum "
                "(e.g. 0.5) or a grey level above 1 (e.g. 128)"
            )
        if self.min_area < 1:
            raise MaskrtError(
                f"minimum area {self.min_area} must be at least 1 pixel; pass e.g. --min-area 4"
            )
        if not 0 < self.split_ratio <= 1:
            raise MaskrtError(f"split ratio {self.split_ratio} must be in (0, 1]; e.g. 0.7")
        if self.resolved_kind() == "labels" and self.classes is not None:
            for v in self.classes:
                if not 0 < v < 65536:
                    raise MaskrtError(f"class value {v} must be between 1 and 65535 (0 is background)")
        return self


def parse_classes(text: str | None) -> dict[int, str] | None:
    """``"1=bubble,2=droplet"`` -> ``{1: "bubble", 2: "droplet"}``; ``None`` for an empty text."""
    if text is None or not text.strip():
        return None
    out: dict[int, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        value, sep, name = item.partition("=")
        try:
            v = int(value)
        except ValueError:
            v = -1
        if not sep or not name.strip() or v < 1:
            raise MaskrtError(
                f"--classes item {item!r} is not VALUE=NAME with VALUE >= 1; "
                "pass e.g. --classes 1=bubble,2=droplet"
            )
        if v in out:
            raise MaskrtError(f"--classes names value {v} twice; give each mask value one class")
        out[v] = name.strip()
    return out or None


@dataclass
class ExportOptions:
    """What to export and how to verify it (the CLI's options)."""

    imgsz: int = 512
    max_det: int = 100
    fmt: str = "onnx"
    half: bool = False
    simplify: bool = True
    out: Path | None = None
    data: Path | None = None
    parity_images: int = 4
    parity: bool = True
    score_threshold: float = 0.5
    mask_threshold: float = 0.5
    graph_score_threshold: float = GRAPH_SCORE_THRESHOLD
    """Detections below it are dropped inside the graph, before NMS and the mask head (``--graph-conf``):
    higher runs the mask head on fewer RoIs; the runtime's threshold cannot go below it."""
    workspace_gb: float = 4.0
    threads: int = 2
    int8: bool = False
    """Write an INT8 Q/DQ model (:mod:`maskrt.export.int8`) calibrated on ``calib``."""
    calib: str | None = None
    """Calibration images: a folder, a glob or a dataset (default: synthetic scenes)."""
    calib_images: int = 32
    calib_method: str = "minmax-average"
    int8_weight_bits: int = 7
    """INT8 weight range (``--int8-weight-bits``): 7 runs exactly on every CPU; 8 saturates on x86 without VNNI."""
    heldout_images: int = 20
    """Held-out synthetic scenes on which the INT8 report scores mask AP50 before and after (0: skip)."""
    triton_name: str | None = None
    """``fmt="triton"``: the model's name on the server (default: the source's file stem)."""
    triton_instances: int = 1
    """``fmt="triton"``: model instances Triton runs concurrently (``instance_group`` count)."""


__all__ = ["MASK_KINDS", "ExportOptions", "MaskOptions", "TrainConfig", "parse_classes"]
