"""Run an exported ONNX model and its PyTorch source on the same images and compare (see parity.py).

The plain eager model runs through :func:`maskrt.export.eager.run_eager`, the adapter ``maskrt bench --torch``
uses too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskrt.export.eager import run_eager
from maskrt.export.parity import ParityReport, ParityRules, artifact_dets, compare, phase_map_iou
from maskrt.export.wrapper import ExportWrapper

log = logging.getLogger(__name__)


def ort_options(threads: int = 2, spin: bool = True) -> Any:
    """CPU ONNX Runtime session options: ``threads`` intra-op threads, one inter-op, quiet.

    ``spin=False`` stops its threads from busy-waiting between runs: set it when PyTorch (or
    anything else) computes on the same cores between two runs, as the benchmarks' alternation does.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def ort_session(path: str | Path, threads: int = 2, spin: bool = True) -> Any:
    """A CPU ONNX Runtime session for ``path`` (options: :func:`ort_options`)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), sess_options=ort_options(threads, spin), providers=["CPUExecutionProvider"])


def run_ort(session: Any, image: np.ndarray) -> list[np.ndarray]:
    """Artifact outputs for one ``[H, W, 3]`` uint8 BGR image."""
    return session.run(None, {session.get_inputs()[0].name: image[None]})  # type: ignore[no-any-return]


@torch.inference_mode()
def run_wrapper(wrapper: ExportWrapper, image: np.ndarray) -> list[np.ndarray]:
    """The PyTorch wrapper's outputs for one image, as numpy."""
    out = wrapper(torch.from_numpy(np.ascontiguousarray(image))[None])
    return [o.numpy() for o in out]


def check_parity(
    onnx_path: str | Path,
    wrapper: ExportWrapper,
    images: Sequence[np.ndarray],
    rules: ParityRules | None = None,
    eager: bool = True,
    threads: int = 2,
) -> tuple[ParityReport, ParityReport | None]:
    """Compare ONNX Runtime with the PyTorch wrapper (the gate) and, if ``eager``, with ``model([image])``.

    Returns:
        ``(gate, agreement)``; ``agreement`` is ``None`` when ``eager`` is false.
    """
    rules = rules or ParityRules()
    session = ort_session(onnx_path, threads)
    gate = ParityReport(rules)
    agree = ParityReport(rules) if eager else None
    for k, image in enumerate(images):
        hw = (int(image.shape[0]), int(image.shape[1]))
        test_out, ref_out = run_ort(session, image), run_wrapper(wrapper, image)
        test = artifact_dets(test_out, hw, mask_threshold=rules.mask_threshold)
        ref = artifact_dets(ref_out, hw, mask_threshold=rules.mask_threshold)
        gate.images.append(compare(ref, test, rules, wrapper.max_det))
        if len(ref_out) > 5 and len(test_out) > 5:  # the phase map: ONNX Runtime against the wrapper
            gate.images[-1].phase_iou = phase_map_iou(ref_out[5], test_out[5])
        if agree is not None:
            eager_dets = run_eager(wrapper.model, image, rules.mask_threshold)
            agree.images.append(compare(eager_dets, test, rules, wrapper.max_det))
        log.debug("parity image %d: %s", k, gate.images[-1])
    return gate, agree
