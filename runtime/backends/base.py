"""The interface every inference backend implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    """Runs a maskrt model artifact: one uint8 NHWC input, the contract's five outputs.

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
