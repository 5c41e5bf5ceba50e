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
from maskrt.train.models import ModelRecipe, build_model, load_matching

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
) -> tuple[ModelRecipe, torch.nn.Module]:
    """Build the model a run starts from, with ``weights`` loaded; class-specific layers replaced if classes differ.

    Args:
        arch: preset; ``None`` takes the checkpoint's preset (or ``lite``).
        classes: the training classes.
        image_size: training/inference size (longer side).
        weights: ``none``, ``imagenet``, ``coco``, ``bubbles-lite`` or a path.
        anchor_sizes: override the preset's anchors (a checkpoint's anchors are kept for the same preset).
        max_det: detections kept per image (dense scenes need more than 100).
    """
    w = (weights or "none").strip()
    if w in ("none", "imagenet", "coco"):
        recipe = ModelRecipe(
            arch=arch or "lite",
            classes=list(classes),
            image_size=image_size,
            anchor_sizes=anchor_sizes or [],
            max_det=max_det,
        )
        if w == "imagenet":
            from maskrt.train.weights import ensure_cached, imagenet_weights

            ensure_cached(imagenet_weights(recipe.arch))
        return recipe, build_model(recipe, None if w == "none" else w)
    state, src = read_weights(w)
    arch = arch or (src.arch if src else "lite")
    same_arch = src is not None and src.arch == arch
    recipe = ModelRecipe(
        arch=arch,
        classes=list(classes),
        image_size=image_size,
        max_det=max_det,
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
