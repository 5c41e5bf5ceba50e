"""A Triton Inference Server model repository from a maskrt artifact (``maskrt export --format triton``).

The repository serves the artifact on Triton's own backends (``onnxruntime`` for ``.onnx``, ``tensorrt``
for an engine), laid out as Triton expects::

    model_repository/
      bubbles-lite/
        config.pbtxt          platform, max_batch_size, inputs/outputs from maskrt.artifact, parameters
        1/model.onnx          (or 1/model.plan, the TensorRT engine)

Inputs, outputs, data types and shapes come from the artifact contract (:mod:`maskrt.artifact`), and every
``maskrt.*`` metadata key is carried along as a string ``parameters`` entry of ``config.pbtxt``, so a client
reads classes, input size and thresholds from the server's model configuration (the runtime's
``triton://`` backend does). Triton batches requests along a leading batch dimension only when the model
accepts any batch size up to ``max_batch_size``; a maskrt artifact has a static batch ``B`` (TensorRT
needs static shapes), so its configuration has ``max_batch_size: 0`` and the full ``[B, H, W, 3]`` shape,
and several model instances (``instance_group``) serve several cameras concurrently. An ONNX model with a
dynamic leading dimension gets ``max_batch_size`` and ``dynamic_batching`` instead. ``maskrt serve``
batches across clients for any artifact (it runs the batch in chunks of ``B``).

``config.pbtxt`` is protobuf text format; :func:`to_pbtxt` writes it and :func:`parse_pbtxt` reads it back
(the structural test, and anyone who wants the repository's config without Triton's protobuf classes).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maskrt.artifact import (
    INPUT_DTYPE,
    INPUT_NAME,
    OUTPUT_DTYPES,
    PHASE_OUTPUT,
    ArtifactMeta,
    engine_sidecar,
    sidecar_props,
)
from maskrt.atomic import atomic_path, write_text
from maskrt.errors import MaskrtError
from maskrt.runtime.backends.formats import ENGINE_SUFFIXES

log = logging.getLogger(__name__)

TRITON_TYPES = {"uint8": "TYPE_UINT8", "float32": "TYPE_FP32", "float16": "TYPE_FP16", "int32": "TYPE_INT32",
                "int64": "TYPE_INT64"}
"""numpy dtype name -> Triton ``data_type``."""

PLATFORMS = {".onnx": ("onnxruntime_onnx", "model.onnx"), **{s: ("tensorrt_plan", "model.plan") for s in ENGINE_SUFFIXES}}
"""Artifact suffix -> (Triton ``platform``, file name inside the version folder)."""

REPEATED = frozenset({"input", "output", "dims", "shape", "parameters", "instance_group", "preferred_batch_size",
                      "gpus"})
"""Fields of Triton's ModelConfig that are repeated: :func:`parse_pbtxt` always gives them as lists."""

ENUMS = frozenset({"data_type", "kind"})
"""Fields written as bare enum identifiers (``TYPE_UINT8``, ``KIND_AUTO``) rather than strings."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def contract_shapes(meta: ArtifactMeta, batch: int | None = None) -> dict[str, list[int]]:
    """Every tensor's full shape (batch first) by name, as :mod:`maskrt.artifact` defines it."""
    b = meta.batch_size if batch is None else batch
    h, w = meta.input_size
    d, m = meta.max_det, meta.mask_size
    shapes = {INPUT_NAME: [b, h, w, 3], "boxes": [b, d, 4], "scores": [b, d], "labels": [b, d],
              "masks": [b, d, m, m], "num_dets": [b]}
    if meta.phase_stride:
        shapes[PHASE_OUTPUT] = [b, h // meta.phase_stride, w // meta.phase_stride]
    return shapes


@dataclass
class TritonModelConfig:
    """What ``config.pbtxt`` says about one maskrt model (the fields Triton's ModelConfig names)."""

    name: str
    platform: str
    max_batch_size: int
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    parameters: dict[str, str] = field(default_factory=dict)
    instances: int = 1
    instance_kind: str = "KIND_AUTO"
    dynamic_batching: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The configuration as Triton's JSON model configuration spells it (field order of config.pbtxt)."""
        out: dict[str, Any] = {"name": self.name, "platform": self.platform, "max_batch_size": self.max_batch_size,
                               "input": self.inputs, "output": self.outputs,
                               "instance_group": [{"count": self.instances, "kind": self.instance_kind}]}
        if self.dynamic_batching is not None:
            out["dynamic_batching"] = self.dynamic_batching
        out["parameters"] = [{"key": k, "value": {"string_value": v}} for k, v in self.parameters.items()]
        return out


def model_config(
    name: str,
    meta: ArtifactMeta,
    platform: str = "onnxruntime_onnx",
    max_batch_size: int = 0,
    instances: int = 1,
    queue_delay_us: int = 2000,
) -> TritonModelConfig:
    """Triton's configuration of a maskrt artifact: contract tensors, metadata parameters, batching.

    Args:
        name: the model's name on the server (its folder in the repository).
        meta: the artifact's metadata.
        platform: ``onnxruntime_onnx`` or ``tensorrt_plan``.
        max_batch_size: 0 for a static-batch artifact (full shapes, no batching by Triton); ``N > 0`` for a
            model that takes any batch up to ``N`` (dims without the batch, dynamic batching on).
        instances: model instances Triton runs concurrently (one per stream it serves at once).
        queue_delay_us: how long the dynamic batcher waits to fill a batch.
    """
    if not _NAME_RE.match(name):
        raise MaskrtError(f"Triton model name {name!r}: use letters, digits, '.', '_' and '-' (pass --name)")
    if instances < 1:
        raise MaskrtError(f"{instances} model instances; pass 1 or more")
    shapes = contract_shapes(meta)
    batched = max_batch_size > 0

    def tensor(tname: str, dtype: str) -> dict[str, Any]:
        dims = shapes[tname][1:] if batched else shapes[tname]
        spec: dict[str, Any] = {"name": tname, "data_type": TRITON_TYPES[dtype], "dims": dims or [1]}
        if batched and not dims:  # [B] per-image scalars: Triton wants dims [1] reshaped to []
            spec["reshape"] = {"shape": []}
        return spec

    params = dict(meta.to_props())
    params["maskrt.triton_batching"] = (f"dynamic up to {max_batch_size}" if batched else
                                        f"none: static batch {meta.batch_size}, send [{meta.batch_size}, H, W, 3]")
    return TritonModelConfig(
        name=name, platform=platform, max_batch_size=int(max_batch_size),
        inputs=[tensor(INPUT_NAME, INPUT_DTYPE)],
        outputs=[tensor(n, OUTPUT_DTYPES[n]) for n in meta.output_names],
        parameters=params, instances=int(instances),
        dynamic_batching={"max_queue_delay_microseconds": int(queue_delay_us)} if batched else None,
    )


# -- protobuf text format ------------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    """A protobuf text-format string literal (C escapes; non-ASCII as octal UTF-8 bytes)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def _value(key: str, value: Any, indent: int) -> str:
    if isinstance(value, dict):
        return "{\n" + _fields(value, indent + 1) + "  " * indent + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if key in ENUMS:
        return str(value)
    return _quote(str(value))


def _fields(data: dict[str, Any], indent: int) -> str:
    pad = "  " * indent
    lines = []
    for key, value in data.items():
        if isinstance(value, list):
            if value and all(isinstance(v, dict) for v in value):
                items = (",\n").join(pad + "  " + _value(key, v, indent + 1) for v in value)
                lines.append(f"{pad}{key} [\n{items}\n{pad}]\n")
            else:
                lines.append(f"{pad}{key}: [ {', '.join(_value(key, v, indent) for v in value)} ]\n")
        elif isinstance(value, dict):
            lines.append(f"{pad}{key} {_value(key, value, indent)}\n")
        else:
            lines.append(f"{pad}{key}: {_value(key, value, indent)}\n")
    return "".join(lines)


def to_pbtxt(config: TritonModelConfig) -> str:
    """``config.pbtxt`` text (protobuf text format of Triton's ModelConfig)."""
    head = "# written by `maskrt export --format triton`; maskrt.* parameters are the artifact's metadata\n"
    return head + _fields(config.as_dict(), 0)


_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"#]+')


def _unquote(literal: str) -> str:
    raw = literal[1:-1]
    out = bytearray()
    i = 0
    simple = {"n": b"\n", "t": b"\t", "r": b"\r", '"': b'"', "'": b"'", "\\": b"\\"}
    while i < len(raw):
        ch = raw[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        nxt = raw[i + 1]
        if nxt in simple:
            out += simple[nxt]
            i += 2
        elif nxt in "01234567":
            j = i + 1
            while j < len(raw) and j < i + 4 and raw[j] in "01234567":
                j += 1
            out.append(int(raw[i + 1 : j], 8))
            i = j
        elif nxt == "x":
            out.append(int(raw[i + 2 : i + 4], 16))
            i += 4
        else:
            raise ValueError(f"unknown escape \\{nxt}")
    return out.decode("utf-8")


def _scalar(token: str) -> Any:
    if token.startswith('"'):
        return _unquote(token)
    if token in ("true", "false"):
        return token == "true"
    for conv in (int, float):
        try:
            return conv(token)
        except ValueError:
            pass
    return token  # an enum identifier


def parse_pbtxt(text: str) -> dict[str, Any]:
    """Read protobuf text format into nested dicts (repeated fields of :data:`REPEATED` as lists).

    Raises:
        MaskrtError: the text is not protobuf text format.
    """
    tokens = [t for t in _TOKEN.findall(text) if t.strip() and not t.startswith("#")]
    pos = 0

    def peek() -> str:
        return tokens[pos] if pos < len(tokens) else ""

    def take(expected: str | None = None) -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("unexpected end")
        tok = tokens[pos]
        if expected is not None and tok != expected:
            raise ValueError(f"expected {expected!r}, got {tok!r}")
        pos += 1
        return tok

    def value() -> Any:
        if peek() == "{":
            take("{")
            msg = message("}")
            take("}")
            return msg
        if peek() == "[":
            take("[")
            items = []
            while peek() != "]":
                items.append(value())
                if peek() == ",":
                    take(",")
            take("]")
            return items
        return _scalar(take())

    def message(end: str) -> dict[str, Any]:
        msg: dict[str, Any] = {}
        while pos < len(tokens) and peek() != end:
            key = take()
            if peek() == ":":
                take(":")
            elif peek() not in ("{", "["):
                raise ValueError(f"expected ':' or '{{' after {key!r}")
            val = value()
            if key in REPEATED:
                msg.setdefault(key, []).extend(val if isinstance(val, list) else [val])
            elif key in msg:
                raise ValueError(f"field {key!r} given twice")
            else:
                msg[key] = val
            if peek() in (",", ";"):
                take()
        return msg

    try:
        out = message("")
    except (ValueError, IndexError) as exc:
        raise MaskrtError(f"not protobuf text format ({exc}); write it with `maskrt export --format triton`") from None
    return out


def parameters_of(config: dict[str, Any]) -> dict[str, str]:
    """The string ``parameters`` of a model configuration (parsed pbtxt or Triton's JSON config) as a dict."""
    raw = config.get("parameters") or []
    if isinstance(raw, dict):  # Triton's JSON: {"key": {"string_value": "..."}}
        return {str(k): str((v or {}).get("string_value", "")) for k, v in raw.items()}
    return {str(p.get("key")): str((p.get("value") or {}).get("string_value", "")) for p in raw}


# -- the repository ------------------------------------------------------------------------------------------------


def read_artifact(path: Path) -> tuple[ArtifactMeta, bool]:
    """The artifact's metadata and whether its ONNX input has a dynamic leading (batch) dimension."""
    suffix = path.suffix.lower()
    if suffix not in PLATFORMS:
        raise MaskrtError("a Triton repository is made from a .onnx or .engine artifact (or a checkpoint)", path=path)
    if not path.is_file():
        raise MaskrtError("model file not found; check the path", path=path)
    if suffix == ".onnx":
        import onnx

        from maskrt.export.metadata import props_of

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises DecodeError and others on a file that is not ONNX
            raise MaskrtError(f"not an ONNX model ({type(exc).__name__}); pass a maskrt .onnx artifact",
                              path=path) from exc
        meta = ArtifactMeta.from_props(props_of(model), source=path)
        inputs = [i for i in model.graph.input if i.name == INPUT_NAME]
        dims = inputs[0].type.tensor_type.shape.dim if inputs else []
        dynamic = bool(dims) and (bool(dims[0].dim_param) or dims[0].dim_value <= 0)
        return meta, dynamic
    side = engine_sidecar(path)
    if not side.is_file():
        raise MaskrtError(f"no metadata beside this engine ({side.name}); build it with `maskrt export --format "
                          "engine`", path=path)
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MaskrtError("engine sidecar is not readable JSON; rebuild the engine with `maskrt export`",
                          path=side) from exc
    return ArtifactMeta.from_props(sidecar_props(data), source=side), False


def write_repository(
    artifact: str | Path,
    out: str | Path,
    name: str | None = None,
    instances: int = 1,
    max_batch_size: int = 8,
    version: int = 1,
) -> Path:
    """Write ``out/<name>/config.pbtxt`` and ``out/<name>/<version>/model.onnx|model.plan`` for ``artifact``.

    Args:
        artifact: a maskrt ``.onnx`` or ``.engine`` (with its ``.engine.json`` sidecar).
        out: the model repository folder (created; other models in it are kept).
        name: model name on the server (default: the artifact's file stem, e.g. ``bubbles-lite``).
        instances: concurrent model instances (``instance_group`` count).
        max_batch_size: used only for an ONNX model with a dynamic batch dimension (dynamic batching).
        version: the version folder.

    Returns:
        The model's folder.
    """
    src = Path(artifact)
    meta, dynamic = read_artifact(src)
    platform, filename = PLATFORMS[src.suffix.lower()]
    model_name = name or src.stem.split(".")[0]
    config = model_config(model_name, meta, platform, max_batch_size=max_batch_size if dynamic else 0,
                          instances=instances)
    folder = Path(out) / model_name
    target = folder / str(int(version)) / filename
    if target.exists() and target.resolve() == src.resolve():
        raise MaskrtError("--out would overwrite the artifact it reads; pass another repository folder", path=src)
    with atomic_path(target) as tmp:
        shutil.copyfile(src, tmp)
    write_text(folder / "config.pbtxt", to_pbtxt(config))
    log.info("Triton model %s: %s (%s, max_batch_size %d)", model_name, target, platform, config.max_batch_size)
    return folder


def check_config(config: dict[str, Any], meta: ArtifactMeta) -> list[str]:
    """Every way a parsed ``config.pbtxt`` disagrees with the artifact contract for ``meta`` (empty: none)."""
    problems: list[str] = []
    batched = int(config.get("max_batch_size", 0)) > 0
    shapes = contract_shapes(meta)
    want = {INPUT_NAME: INPUT_DTYPE, **{n: OUTPUT_DTYPES[n] for n in meta.output_names}}
    got = {t.get("name"): t for t in [*config.get("input", []), *config.get("output", [])]}
    if [t.get("name") for t in config.get("input", [])] != [INPUT_NAME]:
        problems.append(f"inputs {[t.get('name') for t in config.get('input', [])]}, expected [{INPUT_NAME!r}]")
    for tname, dtype in want.items():
        spec = got.get(tname)
        if spec is None:
            problems.append(f"tensor {tname} missing")
            continue
        if spec.get("data_type") != TRITON_TYPES[dtype]:
            problems.append(f"{tname}: data_type {spec.get('data_type')}, expected {TRITON_TYPES[dtype]}")
        dims = list(spec.get("dims", []))
        expected = shapes[tname][1:] if batched else shapes[tname]
        if dims != (expected or [1]):
            problems.append(f"{tname}: dims {dims}, expected {expected or [1]}")
    params = parameters_of(config)
    for key, value in meta.to_props().items():
        if key != "maskrt.maskrt_version" and params.get(key) != value:
            problems.append(f"parameter {key} is {params.get(key)!r}, expected {value!r}")
    return problems
