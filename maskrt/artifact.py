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

Metadata (ONNX ``metadata_props``; beside an engine in ``<engine>.json``), all values strings,
JSON-encoded where not plain text: see :data:`REQUIRED_KEYS`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from maskrt.errors import MaskrtError

FORMAT_VERSION = 1
"""Version of this contract; the runtime refuses artifacts of another version."""

INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "scores", "labels", "masks", "num_dets")
INPUT_DTYPE = "uint8"
OUTPUT_DTYPES = {
    "boxes": "float32",
    "scores": "float32",
    "labels": "int32",
    "masks": "float32",
    "num_dets": "int32",
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
    "precision",  # "fp32" | "fp16"
    "metrics",  # JSON dict: the checkpoint's evaluation metrics (may be {})
)


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

    def to_props(self) -> dict[str, str]:
        """Encode as string key/value pairs (ONNX ``metadata_props``), keys prefixed ``maskrt.``."""
        from maskrt import __version__

        data = asdict(self)
        data["maskrt_version"] = self.maskrt_version or __version__
        out: dict[str, str] = {}
        for key in REQUIRED_KEYS:
            value = data[key]
            out[KEY_PREFIX + key] = value if isinstance(value, str) else json.dumps(value)
        return out

    @classmethod
    def from_props(cls, props: dict[str, str], source: str | Path = "model") -> ArtifactMeta:
        """Decode and validate metadata; raise :class:`MaskrtError` naming what is wrong and the fix."""
        values = {k[len(KEY_PREFIX) :]: v for k, v in props.items() if k.startswith(KEY_PREFIX)}
        if not values:
            raise MaskrtError(
                "no maskrt metadata in this model; export a maskrt checkpoint with `maskrt export CHECKPOINT`",
                path=source,
            )
        try:
            version = int(values.get("format_version", "-1"))
        except ValueError:
            version = -1
        if version != FORMAT_VERSION:
            raise MaskrtError(
                f"model artifact format version {values.get('format_version')!r}, this maskrt reads version "
                f"{FORMAT_VERSION}; re-export the checkpoint with this maskrt (`maskrt export`)",
                path=source,
            )
        missing = [k for k in REQUIRED_KEYS if k not in values]
        if missing:
            raise MaskrtError(
                f"model metadata lacks {', '.join(missing)}; re-export it with `maskrt export`", path=source
            )
        text_keys = {"maskrt_version", "arch", "input_layout", "channel_order", "resize", "letterbox_align",
                     "precision"}
        kwargs: dict[str, Any] = {}
        for key in REQUIRED_KEYS:
            raw = values[key]
            if key in text_keys:
                kwargs[key] = raw
                continue
            try:
                kwargs[key] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise MaskrtError(
                    f"metadata key maskrt.{key} is not valid JSON ({raw[:40]!r}); re-export the model",
                    path=source,
                ) from exc
        kwargs["input_size"] = tuple(int(v) for v in kwargs["input_size"])
        kwargs["mean"] = tuple(float(v) for v in kwargs["mean"])
        kwargs["std"] = tuple(float(v) for v in kwargs["std"])
        meta = cls(**kwargs)
        if meta.input_layout != "NHWC" or meta.channel_order != "BGR" or meta.resize != "letterbox":
            raise MaskrtError(
                f"unsupported input convention {meta.input_layout}/{meta.channel_order}/{meta.resize}; "
                "re-export the model with this maskrt",
                path=source,
            )
        if not meta.class_names:
            raise MaskrtError("model metadata lists no classes; re-export the checkpoint", path=source)
        return meta

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


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
