"""The PyTorch eager model of a checkpoint, run the way a plain torchvision user runs it: the one eager adapter.

Two callers compare an artifact with it: the export's parity agreement (:func:`run_eager`, detections as
numpy) and the ``torch-eager`` row of ``maskrt bench --torch`` and the ``benchmarks/`` scripts
(:class:`TorchEager`, called like a ``Segmenter``). Both go through :func:`eager_outputs`: torchvision's own
resize, network and full-resolution mask paste (after :func:`eager_input`). torch is imported when a model is run or loaded, so that
:func:`open_eager_row` can report a missing torch as a benchmark row.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from maskrt.runtime.bench.runner import BenchRow
    from maskrt.runtime.instances import Instances

log = logging.getLogger(__name__)


def eager_input(image: np.ndarray, device: Any = None) -> Any:
    """One ``[H, W, 3]`` uint8 BGR image as torchvision's input: a ``[3, H, W]`` float RGB tensor in [0, 1]."""
    import torch

    rgb = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1]))
    if device is not None:
        rgb = rgb.to(device)
    return rgb.permute(2, 0, 1).float().div_(255.0)


def eager_outputs(model: Any, x: Any, half: bool = False) -> dict[str, Any]:
    """torchvision's output dict (boxes, scores, 1-based labels, full-frame mask probabilities) for one input.

    Args:
        model: a torchvision Mask R-CNN in eval mode.
        x: an image from :func:`eager_input`, on the model's device.
        half: fp16 autocast (CUDA only).
    """
    import torch

    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=half):
        return model([x])[0]  # type: ignore[no-any-return]


def run_eager(model: Any, image: np.ndarray, mask_threshold: float = 0.5) -> dict[str, np.ndarray]:
    """The plain torchvision model on one BGR uint8 image, as parity's detections (``boxes``, ``scores``,
    ``labels`` 1-based, ``masks`` full-frame boolean)."""
    out = eager_outputs(model, eager_input(image))
    return {
        "boxes": out["boxes"].numpy().astype(np.float32),
        "scores": out["scores"].numpy().astype(np.float32),
        "labels": out["labels"].numpy().astype(np.int64),
        "masks": out["masks"][:, 0].numpy() > mask_threshold,
    }


class TorchEager:
    """The PyTorch eager baseline of a checkpoint, called like a ``Segmenter``: ``model(frame) -> Instances``.

    It runs :func:`eager_outputs`, then thresholds the masks into the runtime's ``Instances`` so the same
    drawing follows. Input size, score threshold and ``max_det`` are set to the compared artifact's, so both
    produce the same work.

    Args:
        checkpoint: a maskrt ``.pt`` checkpoint.
        input_size: longer side the model resizes to (default: the checkpoint's recipe).
        score_threshold: detections below it are dropped before the paste (default 0.5).
        mask_threshold: probability threshold of the masks.
        max_det: detections per image (default: the recipe's).
        device: ``cpu``, ``cuda`` or ``auto``.
        threads: torch CPU threads (``None``: leave torch's default).
        half: fp16 autocast on CUDA.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        input_size: int | None = None,
        score_threshold: float = 0.5,
        mask_threshold: float = 0.5,
        max_det: int | None = None,
        device: str = "auto",
        threads: int | None = None,
        half: bool = False,
    ) -> None:
        import torch

        from maskrt.train.checkpoint import load_model
        from maskrt.train.models import set_input_size, set_max_det

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = torch.device(device)
        self.half = bool(half and self.device.type == "cuda")
        model, recipe, _ = load_model(checkpoint, self.device)
        size = int(input_size or recipe.image_size)
        set_input_size(model, size)
        model.roi_heads.score_thresh = float(score_threshold)
        set_max_det(model, int(max_det or recipe.max_det))  # with the proposals the export keeps
        self.model = model
        self.recipe = recipe
        self.input_size = size
        self.mask_threshold = float(mask_threshold)
        self.class_names = list(recipe.classes)
        self.name = f"torch {self.device.type}{' fp16 autocast' if self.half else ''}"
        self.timings: dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def __call__(self, frame: np.ndarray) -> Instances:
        """Segment one BGR frame the way a plain torchvision user would; stage times land in ``timings``."""
        t0 = time.perf_counter()
        x = eager_input(frame, self.device)
        self._sync()
        t1 = time.perf_counter()
        out = eager_outputs(self.model, x, self.half)
        self._sync()
        t2 = time.perf_counter()
        inst = self._instances(out, frame.shape[:2])
        t3 = time.perf_counter()
        self.timings = {"preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3}
        return inst

    def gpu_memory_mb(self) -> float | None:
        """Peak CUDA memory of the model (torch's allocator), ``None`` on the CPU."""
        if self.device.type != "cuda":
            return None
        return float(self.torch.cuda.max_memory_allocated(self.device) / 2**20)

    def _instances(self, out: dict[str, Any], hw: tuple[int, int]) -> Instances:
        """torchvision's output dict -> the runtime's ``Instances`` (masks cropped to their boxes)."""
        from maskrt.runtime.instances import Instances

        boxes = out["boxes"].float().cpu().numpy()
        masks = (out["masks"][:, 0] > self.mask_threshold).cpu().numpy()
        h, w = hw
        regions = np.zeros((len(boxes), 4), dtype=np.int64)
        crops = []
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            r = (max(int(x0), 0), max(int(y0), 0), min(int(np.ceil(x1)) + 1, w), min(int(np.ceil(y1)) + 1, h))
            regions[i] = r
            crops.append(masks[i, r[1]:r[3], r[0]:r[2]])
        return Instances(boxes, out["scores"].float().cpu().numpy(), out["labels"].cpu().numpy() - 1,
                         self.class_names, hw, regions, crops)


def open_eager_row(
    ckpt: Path, meta: Any = None, imgsz: int | None = None, conf: float | None = None, device: str = "auto",
    half: bool = False, threads: int | None = None,
) -> tuple[BenchRow, TorchEager | None]:
    """The ``torch-eager`` benchmark row of a checkpoint and its model, set to the compared artifact's ``meta``.

    A failure (no torch, a bad checkpoint) is a row with its reason, not a crash.
    """
    from maskrt.runtime.bench.runner import TORCH_BACKEND, BenchRow, file_size_mb, reason_of

    row = BenchRow(model=str(ckpt), backend=TORCH_BACKEND, file_size_mb=file_size_mb(ckpt))
    try:
        import torch  # noqa: F401
    except ImportError:
        row.status, row.reason = "unavailable", "torch is not installed; pip install 'maskrt[train]'"
        return row, None
    try:
        t0 = time.perf_counter()
        eager = TorchEager(
            ckpt,
            input_size=imgsz or (max(meta.input_size) if meta else None),
            score_threshold=conf if conf is not None else meta.score_threshold if meta else 0.5,
            mask_threshold=meta.mask_threshold if meta else 0.5,
            max_det=meta.max_det if meta else None,
            device=device, threads=threads, half=half,
        )
    except Exception as exc:  # reported as a row like every other failure
        row.status, row.reason = "failed", reason_of(exc)
        log.debug("torch row failed", exc_info=True)
        return row, None
    row.load_s = time.perf_counter() - t0
    row.device, row.input_size, row.precision = eager.name, [eager.input_size] * 2, "fp16" if eager.half else "fp32"
    return row, eager
