"""``maskrt export`` as a library call: checkpoint -> ONNX (FP32/FP16/INT8) -> checks -> parity -> engine.

Example:
    >>> result = export_checkpoint("runs/train/best.pt", ExportOptions(imgsz=512, max_det=100))
    >>> result.onnx_path, result.parity["passed"]
    >>> export_checkpoint("model.onnx", ExportOptions(int8=True)).int8["mask_ap50_int8"]   # INT8 from an FP32 artifact
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from maskrt.artifact import GRAPH_SCORE_THRESHOLD
from maskrt.errors import MaskrtError
from maskrt.options import ExportOptions  # declared torch-free for the CLI
from maskrt.runtime.backends.formats import ENGINE_SUFFIXES, MODEL_SUFFIXES

log = logging.getLogger(__name__)

FORMATS = ("onnx", "engine", "all", "triton")


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
    int8: dict[str, Any] | None = None
    """:meth:`maskrt.export.parity.Int8Parity.summary` of an INT8 export (what INT8 changes against FP32)."""
    int8_failures: list[str] = field(default_factory=list)
    calib_source: str = ""
    triton_path: Path | None = None
    """``fmt="triton"``: the model's folder in the Triton model repository (config.pbtxt, 1/model.*)."""


def output_paths(checkpoint: Path, opts: ExportOptions) -> tuple[Path, Path]:
    """``(onnx, engine)`` paths: from ``--out`` (a file or stem) or beside the checkpoint."""
    if opts.out is not None:
        out = Path(opts.out)
        stem = out.with_suffix("") if out.suffix in MODEL_SUFFIXES else out
    else:
        stem = checkpoint.with_suffix("")
    tag = ".fp16" if opts.half else ".int8" if opts.int8 else ""
    onnx_path = Path(f"{stem}{tag}.onnx")
    engine_path = Path(f"{stem}{tag}.engine")
    if opts.out is not None and Path(opts.out).suffix == ".onnx":
        onnx_path = Path(opts.out)
    if opts.out is not None and Path(opts.out).suffix in ENGINE_SUFFIXES:
        engine_path = Path(opts.out)
    return onnx_path, engine_path


def _check_graph_conf(checkpoint: Path, opts: ExportOptions) -> None:
    """``--graph-conf`` in [0, 1] and not above ``--conf``; on an .onnx only with ``--int8`` (rewritten there)."""
    g = float(opts.graph_score_threshold)
    if not 0.0 <= g <= 1.0:
        raise MaskrtError(f"--graph-conf {g:g} must be in [0, 1]; pass e.g. --graph-conf 0.3")
    if g > float(opts.score_threshold) and checkpoint.suffix.lower() != ".onnx":  # an .onnx keeps its own conf
        raise MaskrtError(f"--graph-conf {g:g} is above the runtime's default --conf {opts.score_threshold:g}: "
                          f"the default threshold would drop nothing; pass --graph-conf {opts.score_threshold:g} "
                          "or less")
    if g != GRAPH_SCORE_THRESHOLD and checkpoint.suffix.lower() == ".onnx" and (not opts.int8 or opts.fmt == "triton"):
        raise MaskrtError("--graph-conf on an .onnx file works with --int8 (its INT8 copy gets the threshold); "
                          "otherwise export the checkpoint (.pt) with it", path=checkpoint)


def export_checkpoint(
    checkpoint: str | Path,
    opts: ExportOptions | None = None,
    on_step: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a maskrt checkpoint as described by ``opts``; raise :class:`MaskrtError` on user errors.

    Args:
        checkpoint: a ``.pt`` file written by ``maskrt train``; with ``opts.int8`` also an FP32 ``.onnx`` artifact.
        opts: export options (defaults: 512 px, 100 detections, FP32 ONNX, simplified, parity on).
        on_step: called with a short description before each step (for a progress display).
    """
    opts = opts or ExportOptions()
    step = on_step or (lambda s: log.info("%s", s))
    if opts.fmt not in FORMATS:
        raise MaskrtError(f"unknown format {opts.fmt!r}; choose one of {', '.join(FORMATS)}")
    checkpoint = Path(checkpoint)
    if opts.int8 and opts.half:
        raise MaskrtError("--int8 and --half exclude each other; pick one precision")
    if opts.int8:  # before anything is exported
        from maskrt.export.int8 import check_weight_bits

        check_weight_bits(opts.int8_weight_bits)
    _check_graph_conf(checkpoint, opts)
    if opts.fmt == "triton":
        return _triton(checkpoint, opts, step)
    if checkpoint.suffix.lower() == ".onnx":
        if not opts.int8:
            raise MaskrtError("an .onnx file can only be re-exported with --int8; export the checkpoint (.pt) "
                              "otherwise", path=checkpoint)
        return _int8_from_onnx(checkpoint, opts, step)
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
    wrapper = ExportWrapper(model, size, opts.max_det, recipe.mean, recipe.std,
                            score_thresh=opts.graph_score_threshold)
    meta = make_meta(recipe, size, opts.max_det, "fp32", ckpt.get("metrics") or {}, opts.score_threshold,
                     opts.mask_threshold, phase_stride=wrapper.phase_stride,
                     graph_score_threshold=opts.graph_score_threshold)
    onnx_path, engine_path = output_paths(checkpoint, opts)

    step(f"exporting ONNX ({size[0]}x{size[1]}, max_det {opts.max_det})")
    tmpdir = tempfile.TemporaryDirectory(prefix="maskrt-export-") if opts.int8 else None
    final_path = onnx_path
    if tmpdir is not None:  # the FP32 model is quantized from, then dropped
        onnx_path = Path(tmpdir.name) / "model.fp32.onnx"
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
    try:
        if opts.parity:  # of the FP32 model an INT8 one is made from: the INT8 report then compares with it
            step("checking parity with PyTorch")
            _parity(result, wrapper, size, opts, meta.pad_value)
        if tmpdir is not None:
            _quantize(result, onnx_path, final_path, opts, step, meta.pad_value)
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()
    _check(result, step)
    _engine(result, engine_path, opts, step)
    return result


def _check(result: ExportResult, step: Callable[[str], None]) -> None:
    step("checking TensorRT compatibility")
    from maskrt.export.check import check_model

    result.violations = [str(v) for v in check_model(result.onnx_path)]
    if result.violations:
        log.warning("%d TensorRT-compatibility problems in %s", len(result.violations), result.onnx_path)


def _engine(result: ExportResult, engine_path: Path, opts: ExportOptions, step: Callable[[str], None]) -> None:
    if opts.fmt in ("engine", "all"):
        step("building TensorRT engine")
        from maskrt.export.tensorrt_build import BuildOptions, build_engine

        info = build_engine(result.onnx_path, engine_path,
                            BuildOptions(fp16=opts.half, workspace_gb=opts.workspace_gb))
        result.engine_path, result.engine_info = engine_path, info


def _quantize(result: ExportResult, fp32_path: Path, dst: Path, opts: ExportOptions, step: Callable[[str], None],
              pad: int) -> None:
    """Quantize ``fp32_path`` into ``dst`` and fill ``result`` with the INT8 file and its report."""
    from maskrt.export.int8 import calibration_images, write_int8
    from maskrt.export.int8_report import int8_parity
    from maskrt.export.metadata import read_meta
    from maskrt.export.scenes import folder_images, synthetic_scenes

    meta = read_meta(fp32_path)
    hw = (int(meta.input_size[0]), int(meta.input_size[1]))
    step(f"calibrating INT8 on {opts.calib or 'synthetic scenes'}")
    images, source = calibration_images(hw, opts.calib_images, opts.calib, pad)
    step(f"quantizing to INT8 ({len(images)} calibration images)")
    q = write_int8(fp32_path, dst, images, source, opts.calib_method, opts.int8_weight_bits)
    result.onnx_path, result.size_bytes, result.precision, result.calib_source = q.path, q.size_bytes, "int8", source
    result.nodes = _node_count(q.path)
    step(f"comparing INT8 with FP32 (matching, held-out mask AP on {opts.heldout_images} scenes)")
    if opts.data is not None:
        scenes = folder_images(opts.data, hw, limit=opts.parity_images, pad_value=pad)
    else:
        scenes = synthetic_scenes(opts.parity_images, hw, seed=0)
    report = int8_parity(fp32_path, q.path, [s.image for s in scenes], heldout_images=opts.heldout_images,
                         heldout_size=min(hw), threads=opts.threads)
    result.int8, result.int8_failures = report.summary(), report.failures()
    result.int8["weight_bits"] = opts.int8_weight_bits


def _node_count(path: Path) -> int:
    import onnx

    return len(onnx.load(str(path), load_external_data=False).graph.node)


def _int8_from_onnx(src: Path, opts: ExportOptions, step: Callable[[str], None]) -> ExportResult:
    """``maskrt export model.onnx --int8``: quantize an FP32 artifact (the bundled one included)."""
    from maskrt.export.metadata import read_meta

    if not src.is_file():
        raise MaskrtError("ONNX model not found; check the path", path=src)
    if opts.fmt in ("engine", "all"):
        from maskrt.export.tensorrt_build import require_tensorrt

        require_tensorrt()
    meta = read_meta(src)
    if opts.out is not None and Path(opts.out).suffix == ".onnx":
        dst = Path(opts.out)
    else:
        stem = Path(opts.out).with_suffix("") if opts.out is not None else src.with_suffix("")
        dst = Path(f"{stem}.int8.onnx")
    if dst.resolve() == src.resolve():
        raise MaskrtError("--out names the source model; pass another file name", path=dst)
    nodes = _node_count(src)
    result = ExportResult(src, src.stat().st_size, nodes, nodes, False, meta.precision)
    from maskrt.export.int8 import with_graph_score_threshold

    gate = opts.graph_score_threshold if opts.graph_score_threshold != GRAPH_SCORE_THRESHOLD else None
    if gate is not None:  # the FP32 graph rewritten, then quantized and compared with
        step(f"setting the graph's score threshold to {gate:g}")
    with with_graph_score_threshold(src, gate) as fp32:
        _quantize(result, fp32, dst, opts, step, meta.pad_value)
    _check(result, step)
    engine_out = opts.out is not None and Path(opts.out).suffix in ENGINE_SUFFIXES
    _engine(result, Path(opts.out) if engine_out else dst.with_suffix(".engine"), opts, step)
    return result


def _triton(src: Path, opts: ExportOptions, step: Callable[[str], None]) -> ExportResult:
    """``--format triton``: a Triton model repository from a checkpoint (exported to ONNX first) or an artifact."""
    from maskrt.export.triton import PLATFORMS, read_artifact, write_repository

    repo = Path(opts.out) if opts.out is not None else src.parent / "model_repository"
    name = opts.triton_name or src.stem.split(".")[0]
    if repo.suffix.lower() in PLATFORMS:
        raise MaskrtError("--format triton writes a model repository folder; pass --out model_repository/",
                          path=repo)
    if src.suffix.lower() in PLATFORMS and not opts.int8:
        step(f"writing Triton model repository {repo}")
        folder = write_repository(src, repo, name, instances=opts.triton_instances)
        model = folder / "1" / PLATFORMS[src.suffix.lower()][1]
        meta, _ = read_artifact(src)
        return ExportResult(model, model.stat().st_size, 0, 0, False, meta.precision, triton_path=folder)
    with tempfile.TemporaryDirectory(prefix="maskrt-triton-") as tmp:
        inner = replace(opts, fmt="onnx", out=Path(tmp) / f"{name}.onnx")
        result = export_checkpoint(src, inner, step)
        step(f"writing Triton model repository {repo}")
        folder = write_repository(result.onnx_path, repo, name, instances=opts.triton_instances)
    result.onnx_path, result.triton_path = folder / "1" / "model.onnx", folder
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
