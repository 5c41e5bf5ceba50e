"""The one exception type for errors a user can cause and fix."""

from __future__ import annotations

from pathlib import Path


class MaskrtError(Exception):
    """A problem caused by input the user controls (a file, an option, a camera).

    The message names the file, the item and the fix, on one line. The CLI prints it and exits
    with code 2 instead of showing a traceback.

    Example:
        >>> raise MaskrtError("model.onnx: no maskrt metadata; export it with `maskrt export`")
    """

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        if path is not None and not message.startswith(str(path)):
            message = f"{path}: {message}"
        super().__init__(message)
        self.path = Path(path) if path is not None else None
