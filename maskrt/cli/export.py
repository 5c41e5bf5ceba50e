"""`maskrt export`: checkpoint -> static ONNX (+ FP16 or INT8) -> checks -> parity -> TensorRT engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from maskrt.cli.app import app
from maskrt.errors import MaskrtError
from maskrt.options import ExportOptions

_DEFAULTS = ExportOptions()
"""Every option's default is the ExportOptions field's."""


@app.command()
def export(
    checkpoint: Annotated[Path | None, typer.Argument(
        help="Checkpoint (.pt) written by `maskrt train`; with --int8 also an FP32 .onnx artifact; with "
        "--format triton also a .onnx/.engine artifact.",
    )] = None,
    fmt: Annotated[str, typer.Option(
        "--format",
        "-f",
        help="onnx | engine | all (engine builds from the ONNX) | "
                            "triton (a Triton model repository folder: --out model_repository/).",
    )] = _DEFAULTS.fmt,
    name: Annotated[str | None, typer.Option(
        "--name",
        help="--format triton: the model's name on the server "
                                    "(default: the file stem).",
    )] = _DEFAULTS.triton_name,
    instances: Annotated[int, typer.Option(
        "--instances",
        help="--format triton: concurrent model instances.",
    )] = _DEFAULTS.triton_instances,
    imgsz: Annotated[int, typer.Option(
        "--imgsz",
        help="Fixed square input size (multiple of 32).",
    )] = _DEFAULTS.imgsz,
    max_det: Annotated[int, typer.Option(
        "--max-det",
        help="Detections per image in the fixed-shape outputs.",
    )] = _DEFAULTS.max_det,
    half: Annotated[bool, typer.Option(
        "--half",
        help="FP16 model (heavy layers FP16; box geometry, NMS FP32).",
    )] = _DEFAULTS.half,
    int8: Annotated[bool, typer.Option(
        "--int8",
        help="INT8 Q/DQ model (backbone/FPN/RPN/heads INT8; box decoding, "
                              "NMS inputs, mask logits FP32) for ONNX Runtime, OpenVINO and TensorRT.",
    )] = _DEFAULTS.int8,
    calib: Annotated[str | None, typer.Option(
        "--calib",
        help="INT8 calibration images: a folder, a glob or a dataset "
                                     "(default: synthetic scenes).",
    )] = _DEFAULTS.calib,
    calib_images: Annotated[int, typer.Option(
        "--calib-images",
        help="Number of INT8 calibration images.",
    )] = _DEFAULTS.calib_images,
    int8_weight_bits: Annotated[int, typer.Option(
        "--int8-weight-bits",
        help="INT8 weight range: 7 (default) runs exactly on every CPU; 8 (full range) only "
             "on CPUs with VNNI and on TensorRT (without VNNI, x86 INT8 kernels saturate on it).",
    )] = _DEFAULTS.int8_weight_bits,
    heldout: Annotated[int, typer.Option(
        "--int8-heldout",
        help="Held-out synthetic scenes scoring mask AP50 before "
                                "and after INT8 (0: skip).",
    )] = _DEFAULTS.heldout_images,
    simplify: Annotated[bool, typer.Option(
        "--simplify/--no-simplify",
        help="Simplify with onnxslim if smaller.",
    )] = _DEFAULTS.simplify,
    out: Annotated[Path | None, typer.Option(
        "--out",
        "-o",
        help="Output file (.onnx/.engine) or stem.",
    )] = _DEFAULTS.out,
    data: Annotated[Path | None, typer.Option(
        "--data",
        help="Folder of images for the parity check.",
    )] = _DEFAULTS.data,
    parity: Annotated[bool, typer.Option(
        "--parity/--no-parity",
        help="Compare with PyTorch on a few images.",
    )] = _DEFAULTS.parity,
    parity_images: Annotated[int, typer.Option(
        "--parity-images",
        help="Number of parity images.",
    )] = _DEFAULTS.parity_images,
    score_threshold: Annotated[float, typer.Option(
        "--conf",
        help="Default score threshold stored for the runtime.",
    )] = _DEFAULTS.score_threshold,
    graph_conf: Annotated[float, typer.Option(
        "--graph-conf",
        help="Detections below this score are dropped inside the graph, before NMS and the mask head: "
             "fewer RoIs, a faster frame (e.g. 0.3 with --conf 0.5); the runtime cannot go below it.",
    )] = _DEFAULTS.graph_score_threshold,
    workspace: Annotated[float, typer.Option(
        "--workspace",
        help="TensorRT workspace limit in GiB.",
    )] = _DEFAULTS.workspace_gb,
    check: Annotated[Path | None, typer.Option(
        "--check",
        help="Only check this ONNX file for TensorRT.",
    )] = None,
) -> None:
    """Export a checkpoint to a static, TensorRT-friendly ONNX model (and optionally an engine).

    `maskrt export --check model.onnx` lists every TensorRT-compatibility problem of any ONNX file.
    """
    if check is not None:
        _check_only(check)
        return
    if checkpoint is None:
        raise MaskrtError("pass a checkpoint to export (`maskrt export runs/train/best.pt`) or --check model.onnx")
    from rich.console import Console

    from maskrt.export.pipeline import export_checkpoint

    opts = ExportOptions(imgsz=imgsz, max_det=max_det, fmt=fmt, half=half, simplify=simplify, out=out, data=data,
                         parity=parity, parity_images=parity_images, score_threshold=score_threshold,
                         graph_score_threshold=graph_conf,
                         workspace_gb=workspace, int8=int8, calib=calib, calib_images=calib_images,
                         int8_weight_bits=int8_weight_bits,
                         heldout_images=heldout, triton_name=name, triton_instances=instances)
    console = Console(stderr=True)
    with console.status("exporting") as status:
        result = export_checkpoint(checkpoint, opts, on_step=lambda s: status.update(s + " ..."))
    if result.triton_path is not None and result.nodes == 0:  # from an existing artifact: nothing was exported
        typer.echo(f"triton    {result.triton_path}  config.pbtxt + 1/{result.onnx_path.name} "
                   f"({result.size_bytes / 1e6:.1f} MB, {result.precision})")
        return
    _print_report(result)
    if result.triton_path is not None:
        typer.echo(f"triton    {result.triton_path}  config.pbtxt + 1/{result.onnx_path.name}")
    if result.violations:
        raise MaskrtError(f"{len(result.violations)} TensorRT-compatibility problems (listed above); "
                          "please report this as a maskrt bug", path=result.onnx_path)
    if result.parity is not None and not result.parity["passed"]:
        why = "; ".join(result.parity_failures[:3])
        raise MaskrtError(f"parity with PyTorch failed ({why}); the file is kept for inspection",
                          path=result.onnx_path)
    if result.int8_failures:
        raise MaskrtError(f"INT8 accuracy below target: {result.int8_failures[0]}; the file is kept",
                          path=result.onnx_path)


def _check_only(path: Path) -> None:
    from maskrt.export.check import check_model

    problems = check_model(path)
    if not problems:
        typer.echo(f"{path}: TensorRT-compatible (static shapes, no Loop/If/Scan, supported operators)")
        return
    for p in problems:
        typer.echo(str(p))
    raise MaskrtError(f"{len(problems)} TensorRT-compatibility problems (listed above)", path=path)


def _fmt(summary: dict[str, Any]) -> str:
    return (f"{summary['matched']}/{summary['detections']} detections matched, {summary['missing']} missing, "
            f"{summary['extra']} extra; min box IoU {summary['min_box_iou']:.4f}, min mask IoU "
            f"{summary['min_mask_iou']:.4f}, max score diff {summary['max_score_diff']:.2e}")


def _fmt_int8(s: dict[str, Any], calib: str) -> str:
    bits = s.get("weight_bits", 8)
    where = "exact on every CPU" if bits == 7 else "full range: VNNI CPUs, TensorRT"
    lines = [f"int8      {bits}-bit weights ({where}), calibrated on {calib}",
             (f"          vs FP32 on {s['images']} images: {s['matched']}/{s['detections']} detections (score >= 0.5) "
              f"matched at box IoU 0.5, {s['missing']} missing, {s['extra']} extra; mean mask IoU "
              f"{s['mean_mask_iou']:.3f}, max score diff {s['max_score_diff']:.3f}")]
    if s["mask_ap50_fp32"] is None:
        why = ("--int8-heldout 0" if str(s.get("heldout_source", "")).startswith("skipped")
               else "the model's classes are not in the synthetic scenes")
        lines.append(f"          held-out mask AP50: not measured ({why})")
    else:
        verdict = "PASS" if s["passed"] else "FAIL"
        lines.append(f"          held-out mask AP50 {verdict}: FP32 {s['mask_ap50_fp32']:.3f} -> INT8 "
                     f"{s['mask_ap50_int8']:.3f} ({-s['ap50_drop'] * 100:+.1f} points, allowed "
                     f"-{s['max_ap50_drop'] * 100:.0f}); mask AP {s['mask_ap_fp32']:.3f} -> {s['mask_ap_int8']:.3f} "
                     f"on {s['heldout_images']} scenes ({s['heldout_source']})")
    return "\n".join(lines)


def _print_report(result: Any) -> None:
    typer.echo(f"ONNX      {result.onnx_path}  {result.size_bytes / 1e6:.1f} MB, {result.precision}, "
               f"{result.nodes} nodes" + (f" (onnxslim from {result.nodes_before_simplify})" if result.simplified
                                          else ""))
    typer.echo("TensorRT  " + ("compatible" if not result.violations else f"{len(result.violations)} problems"))
    for v in result.violations:
        typer.echo(f"  {v}")
    if result.parity is not None:
        verdict = "PASS" if result.parity["passed"] else "FAIL"
        r = result.parity["rules"]
        typer.echo(f"parity    {verdict} vs PyTorch on {result.parity['images']} images: {_fmt(result.parity)} "
                   f"(rules: box IoU >= {r['box_iou']}, mask IoU >= {r['mask_iou']}, score diff <= {r['score_tol']})")
        for line in result.parity_failures:
            typer.echo(f"  {line}")
    if result.agreement is not None:
        typer.echo(f"eager     model([image]) vs ONNX + host paste: {_fmt(result.agreement)}")
    if result.int8 is not None:
        typer.echo(_fmt_int8(result.int8, result.calib_source))
    if result.engine_path is not None:
        info = result.engine_info or {}
        typer.echo(f"engine    {result.engine_path}  TensorRT {info.get('tensorrt_version')}, "
                   f"{info.get('gpu_name', 'GPU ?')} (sm {info.get('compute_capability', '?')})")
