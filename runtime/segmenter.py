"""``Segmenter``: load a model artifact once, then segment frames (preprocess -> infer -> postprocess).

Example:
    >>> from maskrt.runtime import Segmenter
    >>> seg = Segmenter("bubbles.onnx", conf=0.5)      # or Segmenter() for the bundled model
    >>> inst = seg(frame)                               # BGR/grey uint8 (or 16-bit) numpy frame, any size
    >>> len(inst), inst.class_names, inst.boxes[:3], seg.timings
    >>> inst.phase, inst.void_fraction()                 # a model with a phase output: its per-pixel map
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from maskrt.artifact import ArtifactMeta
from maskrt.errors import MaskrtError
from maskrt.runtime.backends import Backend, is_triton_url, open_backend
from maskrt.runtime.backends.formats import check_model_format
from maskrt.runtime.instances import Instances
from maskrt.runtime.paste import PASTE_MODES
from maskrt.runtime.postprocess import postprocess
from maskrt.runtime.preprocess import letterbox, to_bgr

log = logging.getLogger(__name__)

BUNDLED_MODEL = Path(__file__).resolve().parent / "models" / "bubbles-lite.onnx"
"""The default model shipped inside the package (a small bubble segmenter)."""


def resolve_model(model: str | Path | None) -> Path:
    """Path of the model to load: ``model`` itself, or the bundled default when ``None``.

    A ``triton://host:port/model`` URL is returned as it is (a ``Path`` of it keeps the model name as ``.name``).
    """
    if is_triton_url(model):
        return Path(str(model))
    if model is None:
        if not BUNDLED_MODEL.is_file():
            raise MaskrtError(
                "no bundled default model in this installation; pass a model path (e.g. `--model model.onnx`)",
                path=BUNDLED_MODEL,
            )
        return BUNDLED_MODEL
    path = Path(model).expanduser()
    if not path.is_file():
        raise MaskrtError("model file not found; check the path or export one with `maskrt export`", path=path)
    return path


class Segmenter:
    """A loaded instance-segmentation model that turns frames into :class:`Instances`.

    Everything model-specific (classes, input size, thresholds, padding) comes from the artifact's
    metadata. The three stages are public so that a streaming pipeline can overlap them, and each call
    of the segmenter records their times in :attr:`timings` (milliseconds).

    Args:
        model: ``.onnx`` (ONNX Runtime, OpenVINO) or ``.engine`` (TensorRT) file; ``None`` for the bundled model;
            ``triton://host:8001/name`` for a model served by Triton (``maskrt serve`` or a Triton container).
        backend: ``auto`` (the fastest installed for the device: TensorRT for an engine, else OpenVINO on a CPU
            when installed, else ONNX Runtime), ``onnxruntime``, ``openvino`` or ``tensorrt``; the names of
            :data:`maskrt.runtime.backends.BACKEND_NAMES`.
        device: ``auto``, ``cpu``, ``cuda[:N]``, ``gpu[:N]``, ``npu`` or ``tensorrt`` (ONNX Runtime's TensorRT
            provider); see :mod:`maskrt.runtime.backends`.
        threads: CPU threads for ONNX Runtime and OpenVINO (``None``: all cores).
        conf: score threshold (default: the model's ``score_threshold``).
        mask_threshold: mask probability threshold (default: the model's ``mask_threshold``).
        classes: class names to keep (default: all).
        bit_depth: significant bits of 16-bit frames (e.g. 12 for a 12-bit camera); default: inferred
            per frame from its brightest pixel.
        spin: ONNX Runtime's idle threads busy-wait for the next frame, OpenVINO's stay pinned to cores
            (default; lowest latency). Pass ``False`` when other computation shares the cores between frames.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        backend: str = "auto",
        device: str = "auto",
        threads: int | None = None,
        conf: float | None = None,
        mask_threshold: float | None = None,
        classes: list[str] | None = None,
        bit_depth: int | None = None,
        spin: bool = True,
        paste: str = "precise",
    ) -> None:
        self.path = resolve_model(model)
        remote = is_triton_url(model)
        if not remote:
            check_model_format(self.path)  # an ONNX file named .engine: say so, not a TensorRT error
        self.backend: Backend = open_backend(str(model) if remote else self.path, backend=backend, device=device,
                                             threads=threads, spin=spin)
        try:
            self.meta = ArtifactMeta.from_props(self.backend.props, self.path)
            b, h, w, _ = self.backend.input_shape
            if (h, w) != tuple(self.meta.input_size):
                raise MaskrtError(
                    f"model input is {h}x{w} but its metadata says {self.meta.input_size}; re-export with "
                    "`maskrt export`",
                    path=self.path,
                )
        except MaskrtError:
            self.backend.close()  # a refused model must not keep GPU buffers
            raise
        self.batch_size = b
        self.input_hw: tuple[int, int] = (h, w)
        self.class_names: list[str] = list(self.meta.class_names)
        self.conf = float(self.meta.score_threshold if conf is None else conf)
        if self.conf < self.meta.graph_score_threshold:
            log.warning("%s drops detections below %.2f inside its graph (exported with --graph-conf %.2f): conf "
                        "%.2f gives what %.2f gives; re-export the checkpoint with a lower --graph-conf for more",
                        self.path, self.meta.graph_score_threshold, self.meta.graph_score_threshold, self.conf,
                        self.meta.graph_score_threshold)
        runtime, _, device = self.backend.name.partition(":")
        if self.meta.full_range_int8 and runtime in ("onnxruntime", "openvino") and "CPU" in device:
            from maskrt.runtime.bench.sysinfo import int8_dot_saturates

            if int8_dot_saturates():
                log.warning("%s has full-range 8-bit INT8 weights and this x86 CPU has no VNNI: its INT8 kernels "
                            "saturate on them (scores and boxes shift, detections are lost); re-export it with "
                            "`maskrt export ... --int8` (7-bit weights, the default)", self.path)
        self.mask_threshold = float(self.meta.mask_threshold if mask_threshold is None else mask_threshold)
        self.class_ids: list[int] | None = None
        if classes:
            unknown = [c for c in classes if c not in self.class_names]
            if unknown:
                self.backend.close()
                raise MaskrtError(
                    f"unknown class {', '.join(map(repr, unknown))}; this model knows {', '.join(self.class_names)}",
                    path=self.path,
                )
            self.class_ids = [self.class_names.index(c) for c in classes]
        self.bit_depth = bit_depth
        if paste not in PASTE_MODES:
            self.backend.close()
            raise MaskrtError(f"paste mode {paste!r}; choose one of {', '.join(PASTE_MODES)}")
        self.paste = paste
        self.timings: dict[str, float] = {"preprocess": 0.0, "infer": 0.0, "postprocess": 0.0}
        log.info(
            "loaded %s: %s, %d classes, input %dx%d, %s", self.path.name, self.meta.arch, len(self.class_names), h,
            w, self.backend.name,
        )

    # -- stages -------------------------------------------------------------------------------
    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """Frame (BGR/grey, uint8/uint16/float, any size) -> ``(input uint8 [1, H, W, 3], scale)``."""
        bgr = to_bgr(frame, self.bit_depth)
        image, scale = letterbox(bgr, self.input_hw, self.meta.pad_value)
        return image[None], scale

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on preprocessed ``images`` ``[n, H, W, 3]`` (``n <= batch size``; padded as needed)."""
        n = images.shape[0]
        if n < self.batch_size:
            pad = np.full((self.batch_size - n, *images.shape[1:]), self.meta.pad_value, dtype=np.uint8)
            images = np.concatenate([images, pad])
        elif n > self.batch_size:
            raise MaskrtError(f"{n} images for a model of batch size {self.batch_size}", path=self.path)
        return self.backend.infer(np.ascontiguousarray(images, dtype=np.uint8))

    def postprocess(
        self, outputs: dict[str, np.ndarray], scale: float, frame_hw: tuple[int, int], index: int = 0
    ) -> Instances:
        """Model outputs -> :class:`Instances` in the frame's pixels, thresholded and class-filtered.

        A model with the ``phase`` output also gives ``Instances.phase``, the frame's dispersed-phase map
        (``None`` otherwise).
        """
        return postprocess(
            outputs, scale, frame_hw, self.class_names, self.conf, self.mask_threshold, self.class_ids, index,
            self.paste, self.meta.phase_stride,
        )

    def __call__(self, frame: np.ndarray) -> Instances:
        """Segment one frame; stage times (ms) land in :attr:`timings`."""
        t0 = time.perf_counter()
        images, scale = self.preprocess(frame)
        t1 = time.perf_counter()
        outputs = self.infer(images)
        t2 = time.perf_counter()
        inst = self.postprocess(outputs, scale, (int(frame.shape[0]), int(frame.shape[1])))
        t3 = time.perf_counter()
        self.timings = {"preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3}
        return inst

    def batch(self, frames: Sequence[np.ndarray]) -> list[Instances]:
        """Segment several frames, ``batch_size`` per inference (models exported with a batch > 1).

        Frames may differ in size. :attr:`timings` holds the totals of the last batch.
        """
        results: list[Instances] = []
        totals = {"preprocess": 0.0, "infer": 0.0, "postprocess": 0.0}
        for start in range(0, len(frames), self.batch_size):
            chunk = frames[start : start + self.batch_size]
            t0 = time.perf_counter()
            prepared = [self.preprocess(f) for f in chunk]
            images = np.concatenate([x for x, _ in prepared])
            t1 = time.perf_counter()
            outputs = self.infer(images)
            t2 = time.perf_counter()
            for k, (frame, (_, scale)) in enumerate(zip(chunk, prepared)):
                results.append(self.postprocess(outputs, scale, (int(frame.shape[0]), int(frame.shape[1])), index=k))
            t3 = time.perf_counter()
            totals["preprocess"] += (t1 - t0) * 1e3
            totals["infer"] += (t2 - t1) * 1e3
            totals["postprocess"] += (t3 - t2) * 1e3
        self.timings = totals
        return results

    def warmup(self, n: int = 3) -> None:
        """Run ``n`` inferences on a blank input so that the first real frame is not slow."""
        blank = np.full((1, *self.input_hw, 3), self.meta.pad_value, dtype=np.uint8)
        for _ in range(max(0, n)):
            self.infer(blank)

    def close(self) -> None:
        """Release the backend (sessions, GPU buffers)."""
        self.backend.close()

    def __enter__(self) -> Segmenter:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Segmenter({self.path.name!r}, arch={self.meta.arch!r}, classes={self.class_names}, {self.backend.name})"
