"""Read a model artifact's metadata without running it, so a baseline can match its settings."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from maskrt.artifact import ArtifactMeta, engine_sidecar, sidecar_props
from maskrt.runtime.bench.backends import ENGINE_SUFFIXES

log = logging.getLogger(__name__)


def onnx_props(path: str | Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file (with ``onnx`` when installed, else through ONNX Runtime)."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        return {p.key: p.value for p in model.metadata_props}
    except ImportError:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return dict(sess.get_modelmeta().custom_metadata_map)


def read_artifact_meta(path: str | Path) -> ArtifactMeta | None:
    """The artifact's :class:`ArtifactMeta`, or ``None`` (logged) when it cannot be read."""
    path = Path(path)
    try:
        if path.suffix.lower() in ENGINE_SUFFIXES:
            data = json.loads(engine_sidecar(path).read_text(encoding="utf-8"))
            return ArtifactMeta.from_props(sidecar_props(data), path)
        return ArtifactMeta.from_props(onnx_props(path), path)
    except Exception as exc:  # noqa: BLE001  (a broken artifact shows up as a failed row elsewhere)
        log.debug("cannot read metadata of %s: %s", path, exc)
        return None
