"""The model artifact contract: the one interface between ``maskrt.export`` and ``maskrt.runtime``.

Both sides import this module (it needs only the standard library), and both test suites check
against it. Bump :data:`FORMAT_VERSION` whenever a name, shape, dtype or meaning below changes.

Graph input (one tensor)
    ``images``: uint8, ``[B, H, W, 3]``, **BGR** (OpenCV's order), ``H = W = input_size``.
    The frame is letterboxed on the host: scaled by ``s = input_size / max(h, w)`` (aspect kept),
    placed at the top-left corner, and the rest filled with ``pad_value``. Conversion to float,
    BGR->RGB and mean/std normalisation happen inside the graph, so the host does no float work.

Graph outputs (all of fixed shape; ``D = max_det``, ``M = mask_size``)
    ``boxes``    float32 ``[B, D, 4]``  xyxy in input-image pixels (divide by ``s`` for the frame)
    ``scores``   float32 ``[B, D]``     sorted descending; padding rows are 0
    ``labels``   int32   ``[B, D]``     1-based index into ``class_names``; padding rows are 0
    ``masks``    float32 ``[B, D, M, M]`` mask probabilities inside each box (mask-head resolution)
    ``num_dets`` int32   ``[B]``        number of valid rows (the first ``num_dets`` of each)

Optional graph output (present when the metadata's ``phase_stride`` is set; older runtimes ignore it)
    ``phase``    float32 ``[B, H / S, W / S]`` (``S = phase_stride``) probability that a pixel of the
                 letterboxed input belongs to the dispersed phase: inside any instance of any class (the
                 vapour of bubbles, the liquid of droplets). A per-pixel map gives void fraction and dry area
                 directly, including merged patches with liquid islands that no box mask follows.

Metadata (ONNX ``metadata_props``; beside an engine in ``<engine>.json``), all values strings,
JSON-encoded where not plain text: see :data:`REQUIRED_KEYS`. Every reader decodes them with
:meth:`ArtifactMeta.from_props`, which checks each key's type and range (:data:`FIELD_RULES`) and answers a
wrong one with a :class:`MaskrtError` naming the model file, the key and what it should be.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from maskrt.errors import MaskrtError

FORMAT_VERSION = 1
"""Version of this contract; the runtime refuses artifacts of another version."""

INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "scores", "labels", "masks", "num_dets")
PHASE_OUTPUT = "phase"
"""The optional per-pixel phase output (see the module docstring)."""
INPUT_DTYPE = "uint8"
OUTPUT_DTYPES = {
    "boxes": "float32",
    "scores": "float32",
    "labels": "int32",
    "masks": "float32",
    "num_dets": "int32",
    PHASE_OUTPUT: "float32",
}

KEY_PREFIX = "maskrt."
REQUIRED_KEYS = (
    "format_version",  # int: FORMAT_VERSION of the exporter
    "maskrt_version",  # str: maskrt.__version__ that wrote it
    "arch",  # str: model preset, e.g. "lite"
    "class_names",  # JSON list[str]: names for labels 1..K
    "input_size",  # JSON [H, W]
    "batch_size",  # int
    "input_layout",  # "NHWC"
    "channel_order",  # "BGR"
    "resize",  # "letterbox"
    "letterbox_align",  # "top-left"
    "pad_value",  # int 0..255, grey level of the letterbox padding
    "mean",  # JSON [r, g, b] in 0..1 (applied inside the graph, for information)
    "std",  # JSON [r, g, b]
    "mask_size",  # int, M
    "max_det",  # int, D
    "score_threshold",  # float: default confidence threshold for the runtime
    "mask_threshold",  # float: default probability threshold for pasting masks
    "precision",  # "fp32" | "fp16" | "int8" (INT8: Q/DQ ONNX, see maskrt.export.int8)
    "metrics",  # JSON dict: the checkpoint's evaluation metrics (may be {})
)
OPTIONAL_KEYS = (
    "phase_stride",  # int: stride S of the ``phase`` output; absent (0) when the model has none
    "graph_score_threshold",  # float: detections below it are dropped inside the graph; absent: 0.05
    "int8_weight_bits",  # int 7 | 8: range of an INT8 artifact's weights; absent (0): 8 (exports before it existed)
)
GRAPH_SCORE_THRESHOLD = 0.05
"""Default score below which the graph drops detections before NMS and the mask head (``maskrt export
--graph-conf``): low, so that the runtime's threshold and COCO evaluation see nearly every detection. A higher
one runs the mask head on fewer RoIs (a faster frame) but the runtime's ``conf`` cannot go below it."""


class _Bad(ValueError):
    """A metadata value of the wrong type or out of range (turned into a MaskrtError naming the key)."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or (isinstance(v, float) and math.isfinite(v))


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise _Bad
    return v


def _name(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _Bad
    return v


def _choice(*options: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in options:
            raise _Bad
        return str(v)

    return check


def _int_of(*options: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if not _is_int(v) or v not in options:
            raise _Bad
        return int(v)

    return check


def _int_in(lo: int, hi: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if not _is_int(v) or not lo <= v <= hi:
            raise _Bad
        return int(v)

    return check


def _unit(v: Any) -> float:
    if not _is_number(v) or not 0.0 <= v <= 1.0:
        raise _Bad
    return float(v)


def _rgb(positive: bool) -> Callable[[Any], tuple[float, float, float]]:
    def check(v: Any) -> tuple[float, float, float]:
        if not isinstance(v, (list, tuple)) or len(v) != 3 or not all(_is_number(x) for x in v):
            raise _Bad
        if any((x <= 0.0) if positive else not 0.0 <= x <= 1.0 for x in v):
            raise _Bad
        return (float(v[0]), float(v[1]), float(v[2]))

    return check


def _input_size(v: Any) -> tuple[int, int]:
    if not isinstance(v, (list, tuple)) or len(v) != 2 or not all(_is_int(x) and 0 < x <= MAX_SIDE for x in v):
        raise _Bad
    return (int(v[0]), int(v[1]))


def _class_names(v: Any) -> list[str]:
    if not isinstance(v, (list, tuple)) or not v or not all(isinstance(c, str) and c.strip() for c in v):
        raise _Bad
    if len(set(v)) != len(v):
        raise _Bad
    return list(v)


def _metrics(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise _Bad
    return dict(v)


MAX_SIDE = 16384
"""Largest input side (pixels) the contract accepts: larger is a corrupt value, not a model."""

FIELD_RULES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "format_version": (f"the integer {FORMAT_VERSION}", _int_in(FORMAT_VERSION, FORMAT_VERSION)),
    "maskrt_version": ("a string", _text),
    "arch": ("a non-empty string (the model preset)", _name),
    "class_names": ("a non-empty JSON list of distinct, non-empty class names (strings)", _class_names),
    "input_size": (f"a JSON list [H, W] of two integers in 1..{MAX_SIDE}", _input_size),
    "batch_size": ("an integer in 1..4096", _int_in(1, 4096)),
    "input_layout": ('"NHWC"', _choice("NHWC")),
    "channel_order": ('"BGR"', _choice("BGR")),
    "resize": ('"letterbox"', _choice("letterbox")),
    "letterbox_align": ('"top-left"', _choice("top-left")),
    "pad_value": ("an integer in 0..255", _int_in(0, 255)),
    "mean": ("a JSON list of three numbers in [0, 1]", _rgb(positive=False)),
    "std": ("a JSON list of three positive numbers", _rgb(positive=True)),
    "mask_size": ("an integer in 1..1024", _int_in(1, 1024)),
    "max_det": ("an integer in 1..100000", _int_in(1, 100_000)),
    "score_threshold": ("a number in [0, 1]", _unit),
    "mask_threshold": ("a number in [0, 1]", _unit),
    "precision": ('"fp32", "fp16" or "int8"', _choice("fp32", "fp16", "int8")),
    "metrics": ("a JSON object", _metrics),
    "phase_stride": ("an integer in 0..64 (0: no phase output)", _int_in(0, 64)),
    "graph_score_threshold": ("a number in [0, 1]", _unit),
    "int8_weight_bits": ("7 or 8 (0: not recorded)", _int_of(0, 7, 8)),
}
"""Per metadata key: what it must be (in words, for the message) and the check that returns its value."""

TEXT_KEYS = frozenset({"maskrt_version", "arch", "input_layout", "channel_order", "resize", "letterbox_align",
                       "precision"})
"""Keys stored as plain text; every other key is JSON-encoded."""


def check_field(key: str, value: Any, source: str | Path = "model") -> Any:
    """``value`` of metadata ``key`` checked and normalised; a :class:`MaskrtError` naming ``source`` and the key."""
    expected, check = FIELD_RULES[key]
    try:
        return check(value)
    except _Bad:
        try:
            shown = repr(value[:40]) if isinstance(value, str) else json.dumps(value, default=str)[:40]
        except (ValueError, RecursionError):
            shown = "?"
        raise MaskrtError(
            f"metadata key {KEY_PREFIX}{key} is {shown} ({type(value).__name__}), expected {expected}; "
            "re-export the model with `maskrt export`",
            path=source,
        ) from None


@dataclass(frozen=True)
class ArtifactMeta:
    """Everything the runtime needs to know about a model, read from the artifact itself."""

    arch: str
    class_names: list[str]
    input_size: tuple[int, int]
    mask_size: int = 28
    max_det: int = 100
    score_threshold: float = 0.5
    mask_threshold: float = 0.5
    pad_value: int = 114
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    batch_size: int = 1
    precision: str = "fp32"
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    maskrt_version: str = ""
    input_layout: str = "NHWC"
    channel_order: str = "BGR"
    resize: str = "letterbox"
    letterbox_align: str = "top-left"
    phase_stride: int = 0
    graph_score_threshold: float = GRAPH_SCORE_THRESHOLD
    int8_weight_bits: int = 0

    def __post_init__(self) -> None:
        """Every field checked against :data:`FIELD_RULES` (the exporter builds metadata through here too)."""
        for f in fields(self):
            object.__setattr__(self, f.name, check_field(f.name, getattr(self, f.name), "artifact metadata"))

    def to_props(self) -> dict[str, str]:
        """Encode as string key/value pairs (ONNX ``metadata_props``), keys prefixed ``maskrt.``."""
        from maskrt import __version__

        data = asdict(self)
        data["maskrt_version"] = self.maskrt_version or __version__
        out: dict[str, str] = {}
        for key in REQUIRED_KEYS:
            value = data[key]
            out[KEY_PREFIX + key] = value if isinstance(value, str) else json.dumps(value)
        if self.phase_stride:
            out[KEY_PREFIX + "phase_stride"] = json.dumps(self.phase_stride)
        if self.graph_score_threshold != GRAPH_SCORE_THRESHOLD:
            out[KEY_PREFIX + "graph_score_threshold"] = json.dumps(self.graph_score_threshold)
        if self.int8_weight_bits:
            out[KEY_PREFIX + "int8_weight_bits"] = json.dumps(self.int8_weight_bits)
        return out

    @property
    def full_range_int8(self) -> bool:
        """An INT8 artifact with full-range 8-bit weights (recorded as 8, or from before the key existed):
        x86 CPUs without VNNI can saturate on it (:func:`maskrt.runtime.bench.sysinfo.int8_dot_saturates`)."""
        return self.precision == "int8" and self.int8_weight_bits != 7

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str | Path = "model") -> ArtifactMeta:
        """Decode and validate metadata; raise :class:`MaskrtError` naming the file, the key and the fix.

        The one reader of the contract's metadata: the runtime backends, ``maskrt bench`` and the exporter
        all come through here, so a wrong-typed value is refused the same way everywhere.
        """
        if not isinstance(props, Mapping):
            raise MaskrtError("model metadata is not a set of key/value pairs; re-export it with `maskrt export`",
                              path=source)
        values = {k[len(KEY_PREFIX) :]: v for k, v in props.items() if isinstance(k, str) and k.startswith(KEY_PREFIX)}
        if not values:
            raise MaskrtError(
                "no maskrt metadata in this model; export a maskrt checkpoint with `maskrt export CHECKPOINT`",
                path=source,
            )
        not_text = sorted(k for k, v in values.items() if k in FIELD_RULES and not isinstance(v, str))
        if not_text:
            raise MaskrtError(
                f"metadata key {KEY_PREFIX}{not_text[0]} is not a string (metadata values are text, JSON where "
                "not plain text); re-export the model with `maskrt export`",
                path=source,
            )
        version = values.get("format_version")
        if not isinstance(version, str) or version.strip() != str(FORMAT_VERSION):
            raise MaskrtError(
                f"model artifact format version {version!r}, this maskrt reads version "
                f"{FORMAT_VERSION}; re-export the checkpoint with this maskrt (`maskrt export`)",
                path=source,
            )
        missing = [k for k in REQUIRED_KEYS if k not in values]
        if missing:
            raise MaskrtError(
                f"model metadata lacks {', '.join(missing)}; re-export it with `maskrt export`", path=source
            )
        kwargs: dict[str, Any] = {}
        for key in REQUIRED_KEYS + tuple(k for k in OPTIONAL_KEYS if k in values):
            raw = values[key]
            if key in TEXT_KEYS:
                value: Any = raw
            else:
                try:
                    value = json.loads(raw)
                except (ValueError, RecursionError):  # JSONDecodeError, or digits/nesting past Python's limits
                    raise MaskrtError(
                        f"metadata key {KEY_PREFIX}{key} is not valid JSON ({raw[:40]!r}), expected "
                        f"{FIELD_RULES[key][0]}; re-export the model with `maskrt export`",
                        path=source,
                    ) from None
            kwargs[key] = check_field(key, value, source)
        return cls(**kwargs)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def output_names(self) -> tuple[str, ...]:
        """The graph outputs a backend fetches: :data:`OUTPUT_NAMES`, plus ``phase`` when the model has it."""
        return OUTPUT_NAMES + ((PHASE_OUTPUT,) if self.phase_stride else ())


def letterbox_scale(frame_hw: tuple[int, int], input_hw: tuple[int, int]) -> float:
    """Scale factor that fits a frame of ``frame_hw`` inside ``input_hw`` keeping its aspect."""
    return min(input_hw[0] / frame_hw[0], input_hw[1] / frame_hw[1])


ENGINE_KEYS = (
    "tensorrt_version",  # str: tensorrt.__version__ that built the engine
    "gpu_name",  # str: e.g. "Orin" or "NVIDIA H100 80GB HBM3" (absent when it could not be read)
    "compute_capability",  # str "major.minor", e.g. "8.7" (absent when it could not be read)
)
"""Keys (unprefixed) that the engine sidecar JSON adds to the ``maskrt.*`` metadata props."""


def engine_sidecar(engine_path: str | Path) -> Path:
    """Path of the JSON file that carries an engine's metadata and build environment.

    It is one flat JSON object of strings: the ONNX model's ``maskrt.*`` props (so
    ``ArtifactMeta.from_props(json.load(f))`` works) plus :data:`ENGINE_KEYS`.
    """
    p = Path(engine_path)
    return p.with_name(p.name + ".json")


def sidecar_props(data: Any) -> dict[str, str]:
    """The ``maskrt.*`` metadata of an engine sidecar (under ``props``/``metadata``, or at the top level), as text.

    Values that are not strings are JSON-encoded, so ``ArtifactMeta.from_props(sidecar_props(data))`` checks
    them like an ONNX file's; anything that is not a JSON object gives ``{}`` (no metadata).
    """
    if not isinstance(data, dict):
        return {}
    raw = data.get("props", data.get("metadata", data))
    if not isinstance(raw, dict):
        return {}
    out: dict[str, str] = {}
    for k, v in raw.items():
        try:
            out[str(k)] = v if isinstance(v, str) else json.dumps(v)
        except (ValueError, TypeError, RecursionError):
            out[str(k)] = repr(v)[:80]  # refused by from_props as invalid JSON, naming the key
    return out
