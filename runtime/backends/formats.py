"""What a model file is by its content, not its name: an ONNX model or something else (a TensorRT engine).

A file's ending picks the backend, so an ONNX model saved as ``model.engine`` would be handed to
TensorRT and fail with an error about engines. :func:`check_model_format` reads the first bytes and
refuses such a file with a line that says what it is and how to name it.
"""

from __future__ import annotations

from pathlib import Path

from maskrt.errors import MaskrtError

ENGINE_SUFFIXES = (".engine", ".trt", ".plan")
"""The TensorRT engine endings every command accepts (predict, run, bench, export --out, serve): the one list."""
MODEL_SUFFIXES = (".onnx", *ENGINE_SUFFIXES)
"""Every model artifact ending: ONNX, then the engines."""

# ModelProto fields after ir_version (field 1) -> protobuf wire type (0 varint, 2 length-delimited)
_MODEL_FIELDS = {2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2}


def looks_like_onnx(path: str | Path) -> bool:
    """True when the file starts like a serialised ONNX ``ModelProto``.

    Every ONNX writer (protobuf serialises fields in number order) starts with ``ir_version``
    (field 1, a small varint: bytes ``08 NN``) followed by another ModelProto field such as the
    producer name or the graph. A TensorRT engine, an image or text does not.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(3)
    except OSError:
        return False
    if len(head) < 3 or head[0] != 0x08 or not 1 <= head[1] < 0x80:
        return False
    field, wire = head[2] >> 3, head[2] & 7
    return _MODEL_FIELDS.get(field) == wire


def check_model_format(path: str | Path) -> None:
    """Raise MaskrtError when a file named as a TensorRT engine holds an ONNX model."""
    path = Path(path)
    if path.suffix.lower() in ENGINE_SUFFIXES and looks_like_onnx(path):
        raise MaskrtError(
            f"is an ONNX model (by its content), not a TensorRT engine; rename it to {path.stem}.onnx (engines "
            "come from `maskrt export CHECKPOINT --format engine`)",
            path=path,
        )
