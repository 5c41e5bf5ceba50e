"""``maskrt export`` as a library call: checkpoint -> ONNX (FP32/FP16) -> checks -> parity -> engine.

Example:
    >>> result = export_checkpoint("runs/train/best.pt", ExportOptions(imgsz=512, max_det=100))
    >>> result.onnx_path, result.parity["passed"]
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maskrt.errors import MaskrtError

log = logging.getLogger(__name__)

FORMATS = ("onnx", "engine", "all")


@dataclass
class ExportOptions:
    """What to export and how to verify it (the CLI's options)."""

    imgsz: int = 512
    max_det: int = 100
    fmt: str = "onnx"
    half: bool = False
    simplify: bool = True
    out: Path | None = None
    data: Path | None = None
    parity_images: int = 4
    parity: bool = True
    score_threshold: float = 0.5
    mask_threshold: float = 0.5
    workspace_gb: float = 4.0
    threads: int = 2


@dataclass
class ExportResult:
    """Files written and what the checks found."""

    onnx_path: Path
    size_bytes: int
    nodes: int
    nodes_before_simplify: int
    simplified: bool
    precision: str
    violations: list[str] = field(default_factory=list)
    parity: dict[str, Any] | None = None
    parity_failures: list[str] = field(default_factory=list)
    agreement: dict[str, Any] | None = None
    engine_path: Path | None = None
    engine_info: dict[str, Any] | None = None


def output_paths(checkpoint: Path, opts: ExportOptions) -> tuple[Path, Path]:
    """``(onnx, engine)`` paths: from ``--out`` (a file or stem) or beside the checkpoint."""
    if opts.out is not None:
        out = Path(opts.out)
        stem = out.with_suffix("") if out.suffix in (".onnx", ".engine", ".plan") else out
    else:
        stem = checkpoint.with_suffix("")
    tag = ".fp16" if opts.half else ""
    onnx_path = Path(f"{stem}{tag}.onnx")
    engine_path = Path(f"{stem}{tag}.engine")
    if opts.out is not None and Path(opts.out).suffix == ".onnx":
        onnx_path = Path(opts.out)
    if opts.out is not None and Path(opts.out).suffix in (".engine", ".plan"):
        engine_path = Path(opts.out)
    return onnx_path, engine_path


def export_checkpoint(
    checkpoint: str | Path,
    opts: ExportOptions | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a maskrt checkpoint as described by ``opts``; raise :class:`MaskrtError` on user errors.

    Args:
        checkpoint: a ``.pt`` file written by ``maskrt train``.
        opts: export options (defaults: 512 px, 100 detections, FP32 ONNX, simplified, parity on).
        on_step: called with a short description before each step (for a progress display).
    """
    opts = opts or ExportOptions()
    step = on_step or (lambda s: log.info("%s", s))
    if opts.fmt not in FORMATS:
        raise MaskrtError(f"unknown format {opts.fmt!r}; choose one of {', '.join(FORMATS)}")
    checkpoint = Path(checkpoint)
    if opts.fmt in ("engine", "all"):  # fail before the slow part when TensorRT cannot run here
        from maskrt.export.tensorrt_build import require_tensorrt

        require_tensorrt()

    step("loading checkpoint")
    from maskrt.export.metadata import make_meta
    from maskrt.export.onnx_export import export_onnx
    from maskrt.export.wrapper import ExportWrapper
    from maskrt.train.checkpoint import load_model

    model, recipe, ckpt = load_model(checkpoint)
    size = (int(opts.imgsz), int(opts.imgsz))
    wrapper = ExportWrapper(model, size, opts.max_det, recipe.mean, recipe.std)
    meta = make_meta(recipe, size, opts.max_det, "fp32", ckpt.get("metrics") or {}, opts.score_threshold,
                     opts.mask_threshold)
    onnx_path, engine_path = output_paths(checkpoint, opts)

    step(f"exporting ONNX ({size[0]}x{size[1]}, max_det {opts.max_det})")
    if opts.half:
        from maskrt.export.fp16 import write_fp16

        with tempfile.TemporaryDirectory(prefix="maskrt-export-") as tmp:
            fp32 = export_onnx(wrapper, meta, Path(tmp) / "model.onnx", simplify=opts.simplify)
            step("converting to FP16")
            write_fp16(fp32.path, onnx_path)
        nodes, before, simplified = fp32.nodes, fp32.nodes_before_simplify, fp32.simplified
    else:
        res = export_onnx(wrapper, meta, onnx_path, simplify=opts.simplify)
        nodes, before, simplified = res.nodes, res.nodes_before_simplify, res.simplified
    result = ExportResult(onnx_path, onnx_path.stat().st_size, nodes, before, simplified,
                          "fp16" if opts.half else "fp32")

    step("checking TensorRT compatibility")
    from maskrt.export.check import check_model

    result.violations = [str(v) for v in check_model(onnx_path)]
    if result.violations:
        log.warning("%d TensorRT-compatibility problems in %s", len(result.violations), onnx_path)

    if opts.parity:
        step("checking parity with PyTorch")
        _parity(result, wrapper, size, opts, meta.pad_value)

    if opts.fmt in ("engine", "all"):
        step("building TensorRT engine")
        from maskrt.export.tensorrt_build import BuildOptions, build_engine

        info = build_engine(onnx_path, engine_path, BuildOptions(fp16=opts.half, workspace_gb=opts.workspace_gb))
        result.engine_path, result.engine_info = engine_path, info
    return result


def _parity(result: ExportResult, wrapper: Any, size: tuple[int, int], opts: ExportOptions, pad: int) -> None:
    from maskrt.export.parity import FP16_RULES, ParityRules
    from maskrt.export.scenes import folder_images, synthetic_scenes
    from maskrt.export.verify import check_parity

    if opts.data is not None:
        scenes = folder_images(opts.data, size, limit=opts.parity_images, pad_value=pad)
    else:
        scenes = synthetic_scenes(opts.parity_images, size, seed=0)
    rules = FP16_RULES if opts.half else ParityRules(mask_threshold=opts.mask_threshold)
    gate, agree = check_parity(result.onnx_path, wrapper, [s.image for s in scenes], rules, eager=True,
                               threads=opts.threads)
    result.parity = gate.summary()
    result.parity_failures = gate.failures()
    result.agreement = agree.summary() if agree is not None else None
