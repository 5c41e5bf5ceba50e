"""Which backends a benchmark row can use here, and why not when it cannot.

``maskrt bench`` names backends with the runtime's one vocabulary (:mod:`maskrt.runtime.backends`):
``auto``, ``onnxruntime``, ``openvino``, ``tensorrt`` with ``--device``, or a backend and device
together as a row name (``openvino:cpu``, ``onnxruntime:cuda``, as rows are labelled). The first bench
names ``ort-cpu``, ``ort-cuda``, ``ort-trt`` and ``trt`` still work as deprecated aliases. Without
``--backend`` a benchmark has a row for every backend installed for the device (:func:`default_rows`):
on a CPU, OpenVINO and ONNX Runtime side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from maskrt.errors import MaskrtError
from maskrt.runtime import backends as rt
from maskrt.runtime.backends import BACKEND_NAMES, ENGINE_SUFFIXES, has_nvidia_gpu, label

BACKENDS = BACKEND_NAMES
"""Every ``--backend`` name of ``maskrt bench`` (the runtime's names and the deprecated aliases)."""

DEFAULT_ROWS = (("openvino", "cpu"), ("onnxruntime", "cpu"), ("onnxruntime", "cuda"), ("tensorrt", "cuda"))
"""The rows of a benchmark without ``--backend``, where installed (ONNX Runtime's TensorRT provider only
when asked for: it builds an engine when the session opens)."""

__all__ = ["BACKENDS", "DEFAULT_ROWS", "ENGINE_SUFFIXES", "availability", "available_backends", "concrete_row",
           "default_rows", "has_nvidia_gpu", "is_backend_name", "resolve_auto", "row_names", "split_row"]


def is_backend_name(name: str) -> bool:
    """True for a name ``--backend`` accepts: a backend, an alias, or ``backend:device``."""
    try:
        split_row(name)
    except MaskrtError:
        return False
    return True


def split_row(name: str, device: str = "auto") -> tuple[str, str]:
    """A row name (``openvino``, ``ort-cuda``, ``onnxruntime:cuda:1``) -> canonical ``(backend, device)``.

    A device inside the name wins over ``device`` (the ``--device`` of the whole run).
    """
    backend, _, own_device = name.strip().lower().partition(":")
    return rt.parse_backend(backend, own_device or device)


def availability(backend: str, model: str | Path, device: str = "auto") -> str | None:
    """``None`` when the row ``backend`` can run ``model`` here, else the reason it cannot (one line, with the fix)."""
    try:
        name, dev = rt.resolve(model, *split_row(backend, device))
    except MaskrtError as exc:
        return str(exc)
    return rt.availability(name, dev, model)


def concrete_row(backend: str, model: str | Path, device: str = "auto") -> str | None:
    """The label of what a row name runs on (``openvino:cpu``); ``None`` when the name cannot be resolved."""
    try:
        return label(*rt.resolve(model, *split_row(backend, device)))
    except MaskrtError:
        return None


def resolve_auto(model: str | Path, device: str = "auto") -> str | None:
    """The row ``auto`` means for this model file here (e.g. ``openvino:cpu``), or ``None`` when nothing can run it."""
    return concrete_row("auto", model, device) if availability("auto", model, device) is None else None


def default_rows(model: str | Path, device: str = "auto") -> list[str]:
    """The rows of a benchmark without ``--backend``: every backend installed for ``device``, fastest first.

    With ``device`` ``auto`` that is each of :data:`DEFAULT_ROWS` that can run here; with a device,
    every backend that runs on it. When none can, one ``auto`` row (it will say why not).
    """
    if device == "auto":
        pairs = list(DEFAULT_ROWS)
    else:
        pairs = []
        for b in rt.BACKENDS[1:]:
            try:
                pairs.append(rt.resolve(model, b, device))
            except MaskrtError:
                continue
    rows = [label(b, d) for b, d in pairs if rt.availability(b, d, model) is None]
    return rows or ["auto" if device == "auto" else label("auto", device)]


def row_names(names: Sequence[str], model: str | Path, device: str = "auto") -> list[str]:
    """The rows to bench ``model`` with: each of ``names`` made concrete (``onnxruntime:cpu``), or
    :func:`default_rows` when there are none. ``auto`` stays ``auto`` (its row says what it picked)."""
    if not names:
        return default_rows(model, device)
    out = []
    for name in names:
        b, d = split_row(name, device)
        if b == "auto":
            out.append("auto" if d == "auto" else label("auto", d))
        else:
            out.append(concrete_row(name, model, device) or name)
    return out


def available_backends(model: str | Path, device: str = "auto") -> list[str]:
    """Every concrete row that can run ``model`` here (the rows of :func:`default_rows`, ``auto`` excluded)."""
    return [r for r in default_rows(model, device) if r != "auto"]
