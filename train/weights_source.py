"""Resolve ``--weights``: none, imagenet, coco, the bundled ``bubbles-lite``, or a checkpoint/state-dict path.

Example:
    >>> recipe, model = model_for_training("lite", ["bubble"], 512, "bubbles-lite")
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from maskrt.errors import MaskrtError
from maskrt.train.checkpoint import recipe_of, safe_load
from maskrt.train.models import LITE_CHANNELS, ModelRecipe, build_model, load_matching

log = logging.getLogger(__name__)

BUNDLED = {"bubbles-lite": "bubbles-lite.pt"}
CLASS_SPECIFIC = ("roi_heads.box_predictor.", "roi_heads.mask_predictor.mask_fcn_logits.")


def bundled_path(name: str) -> Path:
    """Path of a bundled checkpoint (package data ``maskrt.train/models/*.pt``); MaskrtError when absent."""
    path = Path(__file__).resolve().parent / "models" / BUNDLED[name]
    if not path.is_file():
        raise MaskrtError(
            f"the bundled model {name!r} is not installed (expected {path}); train one with `maskrt train` and "
            "pass its best.pt to --weights, or use --weights none"
        )
    return path


def read_weights(source: str | Path) -> tuple[dict[str, torch.Tensor], ModelRecipe | None]:
    """Read a maskrt checkpoint, a torchvision references checkpoint or a plain state dict, never running code."""
    path = bundled_path(str(source)) if str(source) in BUNDLED else Path(source)
    if not path.is_file():
        raise MaskrtError(
            "weights file not found; pass none, imagenet, coco, bubbles-lite or a .pt path", path=path
        )
    obj = safe_load(path, what="weights")  # never runs code from the file; unsafe content is refused
    recipe = None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        if "recipe" in obj:
            recipe = recipe_of(obj, path)
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise MaskrtError(
            "not a checkpoint or state dict of tensors; pass a .pt written by maskrt or torchvision",
            path=path,
        )
    return obj, recipe


def model_for_training(
    arch: str | None,
    classes: list[str],
    image_size: int,
    weights: str = "none",
    anchor_sizes: list[list[int]] | None = None,
    max_det: int = 100,
    phase: bool = False,
    phase_only: bool = False,
    phase_stride: int | None = None,
    mask_channels: int | None = None,
) -> tuple[ModelRecipe, torch.nn.Module]:
    """Build the model a run starts from, with ``weights`` loaded; class-specific layers replaced if classes differ.

    Args:
        arch: preset; ``None`` takes the checkpoint's preset (or ``lite``).
        classes: the training classes.
        image_size: training/inference size (longer side).
        weights: ``none``, ``imagenet``, ``coco``, ``bubbles-lite`` or a path.
        anchor_sizes: override the preset's anchors (a checkpoint's anchors are kept for the same preset).
        max_det: detections kept per image (dense scenes need more than 100).
        phase: add the per-pixel phase head (:mod:`maskrt.train.phase`); a checkpoint that has one keeps it.
        phase_only: train the phase head alone: the checkpoint's classes, size limits and every other weight are
            kept exactly (``weights`` must be a checkpoint).
        phase_stride: the phase map's stride, 4 or 2 (:class:`~maskrt.train.phase.PhaseRefine`); ``None`` keeps
            the checkpoint's (4 without one). A stride-4 head gains the refinement (a no-op until trained).
        mask_channels: lite presets: the mask head's width (:mod:`maskrt.train.mask_head`); ``None`` keeps the
            checkpoint's (the preset's without one). A head of another width than the checkpoint's starts fresh
            here; the trainer distils it from the checkpoint's before training.
    """
    w = (weights or "none").strip()
    if phase_only and w in ("none", "imagenet", "coco"):
        raise MaskrtError(f"--phase-only trains a phase head on a trained model's features, not on --weights {w}; "
                          "pass --weights bubbles-lite or a checkpoint")
    if w in ("none", "imagenet", "coco"):
        recipe = ModelRecipe(
            arch=arch or "lite",
            classes=list(classes),
            image_size=image_size,
            anchor_sizes=anchor_sizes or [],
            max_det=max_det,
            phase=phase,
            phase_stride=phase_stride or 4,
            mask_channels=mask_channels or 0,
        )
        if w == "imagenet":
            from maskrt.train.weights import ensure_cached, imagenet_weights

            ensure_cached(imagenet_weights(recipe.arch))
        return recipe, build_model(recipe, None if w == "none" else w)
    state, src = read_weights(w)
    if phase_only:
        if mask_channels is not None and mask_channels != (src.mask_width if src else LITE_CHANNELS):
            raise MaskrtError(f"--phase-only keeps the checkpoint's mask head; drop --mask-channels {mask_channels}",
                              path=w)
        return _phase_only(w, state, src, arch, classes, image_size, phase_stride)
    arch = arch or (src.arch if src else "lite")
    same_arch = src is not None and src.arch == arch
    lite_pair = src is not None and {src.arch, arch} <= {"lite", "lite-fast"}
    recipe = ModelRecipe(
        arch=arch,
        classes=list(classes),
        image_size=image_size,
        max_det=max_det,
        phase=phase or bool(src is not None and src.phase),
        phase_stride=_phase_stride(w, src, phase_stride),
        mask_channels=(mask_channels if mask_channels is not None else (src.mask_channels if lite_pair and src else 0)),
        anchor_sizes=anchor_sizes or (src.anchor_sizes if same_arch and src else []),
        **(
            {"aspect_ratios": src.aspect_ratios, "mean": src.mean, "std": src.std}
            if same_arch and src
            else {}
        ),
    )
    model = build_model(recipe)
    if src is not None and src.classes != recipe.classes:
        log.info("classes differ (%s -> %s): class-specific layers start fresh", src.classes, recipe.classes)
        fresh = [k for k in state if k.startswith(CLASS_SPECIFIC)]
        state = {k: v for k, v in state.items() if k not in fresh}
        log.info("replaced %d class-specific tensors (%s)", len(fresh), ", ".join(fresh))
    loaded, skipped = load_matching(model, state)
    total = len(model.state_dict())
    if len(loaded) < total // 2:
        log.warning(
            "%s: only %d of %d tensors matched the %s model; is it the right architecture?",
            w,
            len(loaded),
            total,
            arch,
        )
    log.info("initialised from %s: %d tensors loaded, %d skipped", w, len(loaded), len(skipped))
    return recipe, model


def _phase_stride(w: str, src: ModelRecipe | None, asked: int | None) -> int:
    """The stride a run's phase head gets: ``asked``, else the checkpoint's; never one that drops trained layers."""
    have = int(src.phase_stride) if src is not None and src.phase else 0
    if asked is None:
        return have or 4
    if have == 2 and int(asked) == 4:
        raise MaskrtError("the checkpoint's phase head has the stride-2 refinement; --phase-stride 4 would drop "
                          "its trained layers: drop --phase-stride (or pass 2)", path=w)
    return int(asked)


def _phase_only(w: str, state: dict[str, torch.Tensor], src: ModelRecipe | None, arch: str | None,
                classes: list[str], image_size: int,
                phase_stride: int | None = None) -> tuple[ModelRecipe, torch.nn.Module]:
    """The checkpoint's model with a phase head (kept if it has one), frozen except for that head."""
    from dataclasses import replace

    from maskrt.train.phase import PhaseMaskRCNN

    if src is None:
        raise MaskrtError("--phase-only needs a maskrt checkpoint (with its recipe), not a bare state dict", path=w)
    if arch and arch != src.arch:
        raise MaskrtError(f"--phase-only keeps the checkpoint's preset {src.arch!r}; drop --arch {arch}", path=w)
    extra = [c for c in classes if c not in src.classes]
    if extra:
        raise MaskrtError(f"--phase-only: the data has classes {extra} that the checkpoint lacks ({src.classes}); "
                          "train the instances first (without --phase-only)", path=w)
    recipe = replace(src, phase=True, image_size=image_size, phase_stride=_phase_stride(w, src, phase_stride))
    model = build_model(recipe)
    missing, unexpected = model.load_state_dict(state, strict=False)
    bad = [k for k in missing if not k.startswith("phase_head.")] + list(unexpected)
    if bad:
        raise MaskrtError(f"--phase-only: the checkpoint does not match its own recipe ({bad[0]}); "
                          "is it a maskrt checkpoint?", path=w)
    assert isinstance(model, PhaseMaskRCNN)
    model.set_phase_only(True)
    new = "new" if any(k.startswith("phase_head.block.") for k in missing) else (
        "continued, with a new stride-2 refinement" if missing else "continued")
    log.info("phase head %s on the frozen %s model from %s", new, src.arch, w)
    return recipe, model
