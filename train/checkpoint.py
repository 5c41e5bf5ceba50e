"""Checkpoints: a plain dict (torchvision references' habit) that also carries the model's recipe.

Keys: ``model`` (state dict), ``recipe`` (:meth:`ModelRecipe.to_dict`), ``metrics`` (dict, may be
empty), ``maskrt_version``; training adds ``optimizer``, ``lr_scheduler``, ``scaler``, ``epoch``,
``iteration``, ``args`` and RNG states. Written atomically, so a killed run never leaves a corrupt file.

Checkpoints are files people share, so reading one never runs code: every ``.pt`` is read with
``torch.load(weights_only=True)`` (:func:`safe_load`), which builds only tensors, numbers, strings, lists,
tuples and dicts, plus the few harmless types in :data:`SAFE_GLOBALS` (numpy arrays and scalars in the RNG
state, torchvision references' ``argparse.Namespace``). Anything else is refused before it is built.
"""

from __future__ import annotations

import argparse
import math
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.models.detection import MaskRCNN

from maskrt import __version__
from maskrt.atomic import atomic_path
from maskrt.errors import MaskrtError
from maskrt.train.models import ModelRecipe, build_model


def _numpy_globals() -> list[Any]:
    """numpy's array and scalar constructors under the names both numpy 1 (``numpy.core``) and 2 pickle them."""
    core = np._core if hasattr(np, "_core") else np.core  # type: ignore[attr-defined]
    out: list[Any] = [np.ndarray, np.dtype]
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
        out += [(core.multiarray._reconstruct, f"{mod}._reconstruct"), (core.multiarray.scalar, f"{mod}.scalar")]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 may name the dtype's class
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return out


SAFE_GLOBALS: list[Any] = [*_numpy_globals(), argparse.Namespace]
"""Types a checkpoint may hold besides tensors and plain data: none of them runs code when it is built."""

_REFUSED = (
    "refused: not a maskrt checkpoint / unsafe content ({what}); maskrt reads only tensors, numbers, strings, "
    "lists and dicts from a .pt, so nothing in it ran. Use a checkpoint written by `maskrt train`, or re-save "
    "the weights of a copy you trust with torch.save(model.state_dict(), PATH)"
)


def safe_load(path: str | Path, map_location: str | torch.device = "cpu", what: str = "checkpoint") -> Any:
    """Read a ``.pt`` without running code from it; :class:`MaskrtError` when it is unsafe, corrupt or missing.

    ``what`` names the file's role in the messages ("checkpoint", "weights").

    Example:
        >>> ckpt = safe_load("runs/mine/last.pt")  # a dict of tensors, numbers, strings, lists
    """
    path = Path(path)
    if not path.is_file():
        raise MaskrtError(f"{what} not found; pass the path of a .pt file written by `maskrt train`", path=path)
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(SAFE_GLOBALS):
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the file is refused anyway
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        with open(path, "rb") as f:
            pickled = f.read(1) == b"\x80"  # pickle's PROTO opcode: a plain pickle, not torch's zip
        if not found and not pickled:
            raise MaskrtError(f"cannot read {what} (not a PyTorch file); is it a .pt written by torch.save?",
                              path=path) from None
        why = f"it would build {found.group(1)}" if found else "a plain pickle, not a PyTorch checkpoint"
        raise MaskrtError(_REFUSED.format(what=why), path=path) from None
    except Exception as exc:  # torch raises many types for a truncated or foreign file
        raise MaskrtError(
            f"cannot read {what} ({type(exc).__name__}); is the file complete?", path=path
        ) from exc


def save_checkpoint(path: str | Path, model: torch.nn.Module, recipe: ModelRecipe, **extra: Any) -> Path:
    """Atomically write ``model``'s weights, its recipe and any extra entries to ``path``."""
    state = model.module.state_dict() if hasattr(model, "module") else model.state_dict()
    ckpt = {"model": state, "recipe": recipe.to_dict(), "maskrt_version": __version__, "metrics": {}}
    ckpt.update(extra)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a maskrt checkpoint; raise :class:`MaskrtError` when it is missing, unsafe, corrupt or not maskrt's.

    The recipe is checked here (:func:`recipe_of`), so a broken one is one line, not a traceback later.
    """
    path = Path(path)
    ckpt = safe_load(path, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "recipe" not in ckpt:
        raise MaskrtError(
            "not a maskrt checkpoint (no model recipe); use a checkpoint written by `maskrt train`", path=path
        )
    check_state_dict(ckpt["model"], path)
    recipe_of(ckpt, path)
    return ckpt


def check_state_dict(state: Any, path: str | Path) -> dict[str, torch.Tensor]:
    """``state`` if it is a non-empty dict of tensors by name, else a :class:`MaskrtError` naming the file."""
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise MaskrtError(
            "the checkpoint's 'model' entry is not a state dict of tensors; use a checkpoint written by "
            "`maskrt train` (or a torchvision state dict)",
            path=path,
        )
    return state


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_RECIPE_FIELDS: dict[str, tuple[str, Any]] = {
    "arch": ("a preset name (string)", lambda v: isinstance(v, str) and v != ""),
    "classes": (
        "a non-empty list of class names (strings)",
        lambda v: isinstance(v, list) and len(v) > 0 and all(isinstance(c, str) and c for c in v),
    ),
    "image_size": ("a positive integer", _positive_int),
    "anchor_sizes": (
        "a list of lists of positive integers",
        lambda v: isinstance(v, list) and all(isinstance(s, list) and s and all(map(_positive_int, s)) for s in v),
    ),
    "aspect_ratios": (
        "a non-empty list of positive numbers",
        lambda v: isinstance(v, list) and len(v) > 0 and all(_number(a) and a > 0 for a in v),
    ),
    "mean": ("three numbers", lambda v: isinstance(v, (list, tuple)) and len(v) == 3 and all(map(_number, v))),
    "std": (
        "three positive numbers",
        lambda v: isinstance(v, (list, tuple)) and len(v) == 3 and all(_number(a) and a > 0 for a in v),
    ),
    "max_det": ("a positive integer", _positive_int),
    "mask_size": ("a positive integer", _positive_int),
    "mask_channels": (
        "an integer, 0 (the preset's mask head) or a width",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    ),
}
_RECIPE_REQUIRED = ("arch", "classes")


def recipe_of(ckpt: dict[str, Any], path: str | Path = "checkpoint") -> ModelRecipe:
    """The checkpoint's :class:`ModelRecipe`, each field's type checked; :class:`MaskrtError` naming the key."""
    raw = ckpt.get("recipe")
    fix = "use a checkpoint written by `maskrt train`"
    if not isinstance(raw, dict) or not raw:
        kind = "empty" if not raw else f"a {type(raw).__name__}, not a dict"
        raise MaskrtError(f"the checkpoint's recipe is {kind}; {fix}", path=path)
    missing = [k for k in _RECIPE_REQUIRED if k not in raw]
    if missing:
        raise MaskrtError(f"the checkpoint's recipe lacks {', '.join(missing)}; {fix}", path=path)
    for key, (expected, ok) in _RECIPE_FIELDS.items():
        if key in raw and not ok(raw[key]):
            raise MaskrtError(
                f"the checkpoint's recipe key {key!r} is {str(raw[key])[:40]!r}, expected {expected}; {fix}",
                path=path,
            )
    try:
        return ModelRecipe.from_dict(raw)
    except MaskrtError as exc:
        raise MaskrtError(str(exc), path=path) from None
    except (TypeError, ValueError) as exc:
        raise MaskrtError(f"the checkpoint's recipe is broken ({exc}); {fix}", path=path) from None


def load_model(
    source: str | Path | dict[str, Any], device: str | torch.device = "cpu"
) -> tuple[MaskRCNN, ModelRecipe, dict[str, Any]]:
    """Rebuild the model from a checkpoint path or dict; returns (model in eval mode, recipe, checkpoint)."""
    shown = "checkpoint" if isinstance(source, dict) else source
    ckpt = source if isinstance(source, dict) else load_checkpoint(source)
    recipe = recipe_of(ckpt, shown)
    model = build_model(recipe)
    state = {k: v.float() if v.is_floating_point() else v for k, v in check_state_dict(ckpt["model"], shown).items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:160]
        raise MaskrtError(
            f"the weights do not fit the {recipe.arch} model of its recipe ({first}); use the checkpoint "
            "`maskrt train` wrote, unchanged",
            path=shown,
        ) from None
    model.to(device).eval()
    return model, recipe, ckpt


def compact_checkpoint(src: str | Path, dst: str | Path, max_det: int | None = None) -> dict[str, Any]:
    """Write ``dst``: ``src``'s weights in FP16, recipe, metrics and nothing of the optimiser (what fine-tuning
    needs, a tenth of a training checkpoint); return what was written.

    ``max_det`` replaces the recipe's (it also sets the test-time proposal count); ``None`` keeps it.
    """
    src = Path(src)
    ckpt = load_checkpoint(src)  # never runs code from the file
    recipe = dict(ckpt["recipe"]) if max_det is None else dict(ckpt["recipe"], max_det=int(max_det))
    small = {
        "model": {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["model"].items()},
        "recipe": recipe,
        "metrics": ckpt.get("metrics", {}),
        "maskrt_version": ckpt.get("maskrt_version", ""),
        "source": {"checkpoint": src.name, "iteration": ckpt.get("iteration"), "epoch": ckpt.get("epoch")},
    }
    with atomic_path(dst) as tmp:
        torch.save(small, tmp)
    return small
