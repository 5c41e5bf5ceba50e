"""The interface every inference backend implements, and the outputs each one fetches."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from maskrt.artifact import KEY_PREFIX, OUTPUT_NAMES, PHASE_OUTPUT, ArtifactMeta
from maskrt.errors import MaskrtError


class Backend(Protocol):
    """Runs a maskrt model artifact: one uint8 NHWC input, the contract's outputs.

    The outputs are the five of :data:`maskrt.artifact.OUTPUT_NAMES`, plus ``phase`` when the metadata
    promises it (:attr:`maskrt.artifact.ArtifactMeta.output_names`; see :func:`wanted_outputs`).

    Attributes:
        props: the artifact's metadata (``maskrt.*`` string key/values), validated by the caller.
        input_shape: static ``(B, H, W, 3)`` input shape.
        name: what actually runs it, for logs and benchmark tables (e.g. ``onnxruntime:CPUExecutionProvider``).
    """

    props: dict[str, str]
    input_shape: tuple[int, int, int, int]
    name: str

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on ``images`` (uint8 ``input_shape``); return host arrays by output name."""
        ...

    def close(self) -> None:
        """Release device memory and sessions (idempotent)."""
        ...


def wanted_outputs(props: Mapping[str, str], source: str | Path = "model") -> tuple[str, ...]:
    """The graph outputs a backend fetches for a model with metadata ``props``.

    :attr:`ArtifactMeta.output_names <maskrt.artifact.ArtifactMeta.output_names>` (``phase`` joins the five
    required outputs when ``maskrt.phase_stride`` is set); the five alone when the metadata cannot be read, so
    that the caller (the ``Segmenter``) refuses the model with the metadata's own message, as before.
    """
    try:
        return ArtifactMeta.from_props(props, source).output_names
    except MaskrtError:
        return OUTPUT_NAMES


def outputs_text(wanted: tuple[str, ...] | list[str]) -> str:
    """How a contract error names the outputs it expects: ``boxes, ..., num_dets[, phase, as its metadata ...]``."""
    names = ", ".join(wanted)
    return names + (f", as its metadata sets {KEY_PREFIX}phase_stride" if PHASE_OUTPUT in wanted else "")
