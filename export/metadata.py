"""Write and read the artifact metadata (:class:`maskrt.artifact.ArtifactMeta`) in ONNX files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from maskrt.artifact import GRAPH_SCORE_THRESHOLD, ArtifactMeta


def make_meta(
    recipe: Any,
    input_size: tuple[int, int],
    max_det: int,
    precision: str = "fp32",
    metrics: dict[str, Any] | None = None,
    score_threshold: float = 0.5,
    mask_threshold: float = 0.5,
    batch_size: int = 1,
    phase_stride: int = 0,
    graph_score_threshold: float = GRAPH_SCORE_THRESHOLD,
) -> ArtifactMeta:
    """Metadata for an export of a model built from ``recipe`` (a :class:`maskrt.train.models.ModelRecipe`)."""
    return ArtifactMeta(
        arch=recipe.arch,
        class_names=list(recipe.classes),
        input_size=(int(input_size[0]), int(input_size[1])),
        mask_size=int(recipe.mask_size),
        max_det=int(max_det),
        score_threshold=float(score_threshold),
        mask_threshold=float(mask_threshold),
        mean=tuple(float(v) for v in recipe.mean),  # type: ignore[arg-type]
        std=tuple(float(v) for v in recipe.std),  # type: ignore[arg-type]
        batch_size=int(batch_size),
        precision=precision,
        metrics=_jsonable(metrics or {}),
        phase_stride=int(phase_stride),
        graph_score_threshold=float(graph_score_threshold),
    )


def set_meta(model: onnx.ModelProto, meta: ArtifactMeta) -> None:
    """Replace the model's ``maskrt.*`` metadata_props with ``meta`` (other props are kept)."""
    props = meta.to_props()
    keep = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    for p in keep:
        model.metadata_props.add(key=p.key, value=p.value)
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)


def props_of(model: onnx.ModelProto) -> dict[str, str]:
    """All metadata_props as a dict."""
    return {p.key: p.value for p in model.metadata_props}


def read_meta(path: str | Path) -> ArtifactMeta:
    """Read and validate the metadata of an ONNX file (weights are not loaded)."""
    model = onnx.load(str(path), load_external_data=False)
    return ArtifactMeta.from_props(props_of(model), source=path)


def _jsonable(value: Any) -> Any:
    """Metrics as plain JSON types (checkpoints may hold numpy or torch scalars)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if hasattr(value, "item"):
        try:
            return value.item()
        except (ValueError, RuntimeError):
            pass
    return str(value)
