"""Checkpoints: a plain dict (torchvision references' habit) that also carries the model's recipe.

Keys: ``model`` (state dict), ``recipe`` (:meth:`ModelRecipe.to_dict`), ``metrics`` (dict, may be
empty), ``maskrt_version``; training adds ``optimizer``, ``lr_scheduler``, ``scaler``, ``epoch``,
``iteration``, ``args`` and RNG states. Written atomically, so a killed run never leaves a corrupt file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torchvision.models.detection import MaskRCNN

from maskrt import __version__
from maskrt.atomic import atomic_path
from maskrt.errors import MaskrtError
from maskrt.train.models import ModelRecipe, build_model


def save_checkpoint(path: str | Path, model: torch.nn.Module, recipe: ModelRecipe, **extra: Any) -> Path:
    """Atomically write ``model``'s weights, its recipe and any extra entries to ``path``."""
    state = model.module.state_dict() if hasattr(model, "module") else model.state_dict()
    ckpt = {"model": state, "recipe": recipe.to_dict(), "maskrt_version": __version__, "metrics": {}}
    ckpt.update(extra)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a maskrt checkpoint; raise :class:`MaskrtError` when it is missing, corrupt or not maskrt's."""
    path = Path(path)
    if not path.is_file():
        raise MaskrtError("checkpoint not found; pass the path of a .pt file written by `maskrt train`", path=path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise MaskrtError(f"cannot read checkpoint ({type(exc).__name__}); is the file complete?", path=path) from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt or "recipe" not in ckpt:
        raise MaskrtError(
            "not a maskrt checkpoint (no model recipe); use a checkpoint written by `maskrt train`", path=path
        )
    return ckpt


def load_model(
    source: str | Path | dict[str, Any], device: str | torch.device = "cpu"
) -> tuple[MaskRCNN, ModelRecipe, dict[str, Any]]:
    """Rebuild the model from a checkpoint path or dict; returns (model in eval mode, recipe, checkpoint)."""
    ckpt = source if isinstance(source, dict) else load_checkpoint(source)
    recipe = ModelRecipe.from_dict(ckpt["recipe"])
    model = build_model(recipe)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    model.load_state_dict(state)
    model.to(device).eval()
    return model, recipe, ckpt
