"""What INT8 changes: an INT8 artifact against the FP32 one it came from, scored through the runtime.

Two measurements (:class:`maskrt.export.parity.Int8Parity`):

* **matching**: both ONNX models on the same letterboxed images; FP32 detections matched one to one by
  INT8 ones (same label, box IoU >= 0.5; :data:`maskrt.export.parity.INT8_RULES`).
* **held-out mask AP**: COCO mask AP50/AP of each model on annotated held-out images (by default
  ``maskrt synth`` scenes of :data:`HELDOUT_SCENE`, seed :data:`HELDOUT_SEED`: the bundled model's card),
  each frame run by :class:`maskrt.runtime.Segmenter` exactly as ``maskrt predict`` runs it, so
  letterboxing, paste and thresholds are the runtime's.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from maskrt.export.parity import INT8_RULES, Int8Parity, ParityReport, artifact_dets, compare

log = logging.getLogger(__name__)

HELDOUT_SEED = 1000
HELDOUT_SCENE = "boiling-side"
"""Held-out scene type: isolated bubbles, which the model can score at its 100-detection limit (a dense droplet
scene has 300-450 objects, so a ``mixed`` sample's AP would measure the limit rather than the model)."""
AP_SCORE_THRESHOLD = 0.05
"""Score threshold for AP scoring (torchvision's ``box_score_thresh``): AP needs the low-scoring detections too."""


def _int8_runner(int8_path: str | Path, threads: int, backend: str) -> Any:
    """``image -> outputs`` (artifact order) of the INT8 model on ``backend`` (onnxruntime or openvino, CPU)."""
    if backend == "openvino":
        from maskrt.runtime.backends.openvino_backend import OpenVINOBackend

        ov = OpenVINOBackend(int8_path, "cpu", threads=threads, cache_dir=None)
        return lambda image: list(ov.infer(image[None]).values())
    if backend != "onnxruntime":
        raise ValueError(f"INT8 parity runs on onnxruntime or openvino, not {backend!r}")
    from maskrt.export.verify import ort_session, run_ort

    session = ort_session(int8_path, threads)
    return lambda image: run_ort(session, image)


def match_report(fp32_path: str | Path, int8_path: str | Path, images: Sequence[np.ndarray],
                 threads: int = 2, backend: str = "onnxruntime") -> ParityReport:
    """Match the INT8 model's detections (run on ``backend``) to the FP32 model's in ONNX Runtime on ``images``
    (letterboxed uint8 BGR)."""
    from maskrt.export.verify import ort_session, run_ort

    ref_s, test = ort_session(fp32_path, threads), _int8_runner(int8_path, threads, backend)
    report = ParityReport(INT8_RULES)
    for image in images:
        hw = (int(image.shape[0]), int(image.shape[1]))
        ref = artifact_dets(run_ort(ref_s, image), hw)
        report.images.append(compare(ref, artifact_dets(test(image), hw), INT8_RULES))
    return report


def artifact_results(model_path: str | Path, dataset: Any, threads: int = 2, backend: str = "onnxruntime") -> list[dict]:
    """COCO results (masks as RLE) of an artifact on every image of ``dataset``, through the runtime."""
    from maskrt.export.metadata import read_meta
    from maskrt.runtime import Segmenter

    floor = max(AP_SCORE_THRESHOLD, read_meta(model_path).graph_score_threshold)  # all the graph gives
    seg = Segmenter(model_path, backend=backend, device="cpu", threads=threads, conf=floor)
    names = list(seg.class_names)
    results: list[dict] = []
    for k, rec in enumerate(dataset.images):
        inst = seg(rec.load())
        for i in range(len(inst)):
            name = names[int(inst.class_ids[i])]
            if name not in dataset.classes:
                continue
            x0, y0, x1, y1 = (float(v) for v in inst.boxes[i])
            results.append({
                "image_id": k + 1,
                "category_id": dataset.classes.index(name) + 1,
                "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "score": round(float(inst.scores[i]), 5),
                "segmentation": inst.rle(i),
            })  # fmt: skip
    return results


def heldout_dataset(folder: Path, images: int, size: int, seed: int = HELDOUT_SEED, scene: str = HELDOUT_SCENE) -> Any:
    """``images`` annotated synthetic scenes of ``size`` px in ``folder`` (the project's held-out data)."""
    from maskrt.train.dataset import load_datasets
    from maskrt.train.synth.dataset import generate_dataset

    ann = generate_dataset(folder, images=images, size=size, scene=scene, seed=seed)
    return load_datasets([ann])


def int8_parity(
    fp32_path: str | Path,
    int8_path: str | Path,
    match_images: Sequence[np.ndarray],
    heldout_images: int = 20,
    heldout_size: int = 512,
    threads: int = 2,
    scene: str = HELDOUT_SCENE,
    backend: str = "onnxruntime",
) -> Int8Parity:
    """Compare ``int8_path`` with ``fp32_path``: detections matched on ``match_images``, held-out mask AP.

    The FP32 reference runs in ONNX Runtime; the INT8 model on ``backend`` (``onnxruntime`` or ``openvino``:
    the same Q/DQ file, which each backend fuses into its own INT8 kernels).

    AP is measured only when the model detects classes the synthetic scenes annotate (``bubble``,
    ``droplet``); ``heldout_images=0`` skips it.
    """
    from maskrt.export.metadata import read_meta
    from maskrt.train.evaluate import coco_metrics
    from maskrt.train.synth.scenes import CLASSES

    result = Int8Parity(match_report(fp32_path, int8_path, match_images, threads, backend))
    classes = read_meta(fp32_path).class_names
    if heldout_images <= 0:
        result.heldout_source = "skipped (no held-out images asked for)"
        return result
    if not set(classes) & set(CLASSES):
        log.warning("mask AP not measured: the model's classes %s are not in the synthetic scenes", classes)
        return result
    with tempfile.TemporaryDirectory(prefix="maskrt-int8-heldout-") as tmp:
        from maskrt.train.dataset import align_classes

        ds = align_classes(heldout_dataset(Path(tmp), heldout_images, heldout_size, scene=scene), list(classes))
        fp32 = coco_metrics(ds, artifact_results(fp32_path, ds, threads))["segm"]
        int8 = coco_metrics(ds, artifact_results(int8_path, ds, threads, backend))["segm"]
    result.heldout_images = heldout_images
    result.heldout_source = f"maskrt synth --scene {scene} --size {heldout_size} --seed {HELDOUT_SEED}"
    result.ap50_fp32, result.ap50_int8 = float(fp32["AP50"]), float(int8["AP50"])
    result.ap_fp32, result.ap_int8 = float(fp32["AP"]), float(int8["AP"])
    return result
