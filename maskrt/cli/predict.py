"""`maskrt predict`: segment still images (files, folders, globs) and write images, JSON, CSV and labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskrt.cli.app import app
from maskrt.errors import MaskrtError
from maskrt.runtime.backends import BACKEND_HELP, DEVICE_HELP
from maskrt.runtime.backends.formats import MODEL_SUFFIXES
from maskrt.runtime.outputs import OutputOptions

_OUTPUTS = OutputOptions()
"""Where --labels and --draw-labels take their defaults. The output flags are not the fields' (False: not
asked for); with none of them given, predict writes the annotated images and the JSON."""


def split_model_arg(sources: list[str], model: Path | None) -> tuple[Path | None, list[str]]:
    """``maskrt predict MODEL SOURCE...`` and ``maskrt predict SOURCE... [--model M]`` both work."""
    if model is None and sources and (Path(sources[0]).suffix.lower() in MODEL_SUFFIXES
                                      or sources[0].lower().startswith("triton://")):
        return Path(sources[0]), sources[1:]
    return model, sources


def _split_list(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


@app.command()
def predict(
    sources: Annotated[list[str], typer.Argument(
        help="[MODEL] then images, folders or glob patterns. A first argument ending in .onnx/.engine is the "
        "model; without one the bundled model is used.", show_default=False,
    )],
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Model artifact (.onnx or .engine).")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/predict"),
    conf: Annotated[float | None, typer.Option("--conf", help="Score threshold (default: the model's).")] = None,
    classes: Annotated[list[str] | None, typer.Option(
        "--classes", help="Keep only these classes (repeat or a,b).")] = None,
    save_images: Annotated[bool, typer.Option("--save-images", help="Write annotated images.")] = False,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Write predictions.json (COCO results) and stats.json.")] = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Write instances.csv (measurements) and images.csv.")] = False,
    labels: Annotated[str | None, typer.Option(
        "--labels", help="Also write editable annotations: labelme (labels/*.json) or coco.",
    )] = _OUTPUTS.labels,
    draw_labels: Annotated[str, typer.Option(
        "--draw-labels", help="Labels on the annotated images: auto (only where they fit) | all | none.",
    )] = _OUTPUTS.draw_labels,
    backend: Annotated[str, typer.Option("--backend", help=BACKEND_HELP)] = "auto",
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for ONNX Runtime and OpenVINO.")] = None,
    um_per_px: Annotated[float | None, typer.Option("--um-per-px", help="Calibration: micrometres per pixel.")] = None,
    mm_per_px: Annotated[float | None, typer.Option("--mm-per-px", help="Calibration: millimetres per pixel.")] = None,
    bit_depth: Annotated[int | None, typer.Option(
        "--bit-depth", help="Significant bits of 16-bit images (e.g. 12).")] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Search folders recursively.")] = False,
) -> None:
    """Segment images and measure every instance.

    With no output flag, --save-images and --json are assumed. Unreadable images are reported and skipped.
    """
    import logging

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from maskrt.runtime import Segmenter
    from maskrt.runtime.draw import LABEL_MODES, label_mode
    from maskrt.runtime.images import expand_sources, read_image
    from maskrt.runtime.outputs import PredictionWriter, check_outputs

    log = logging.getLogger("maskrt.cli.predict")
    model, sources = split_model_arg(list(sources), model)
    if not sources:
        raise MaskrtError("no images given; usage: maskrt predict [MODEL] SOURCE... (files, folders, globs)")
    if um_per_px is not None and mm_per_px is not None:
        raise MaskrtError("give --um-per-px or --mm-per-px, not both")
    calib = um_per_px if um_per_px is not None else (mm_per_px * 1000.0 if mm_per_px is not None else None)
    if calib is not None and calib <= 0:
        raise MaskrtError(f"calibration must be positive, got {calib}; check --um-per-px / --mm-per-px")
    if labels is not None and labels not in ("labelme", "coco"):
        hint = f" (for the text on the images: --draw-labels {labels})" if labels in LABEL_MODES else ""
        raise MaskrtError(f"--labels {labels!r} is not a format; use labelme or coco{hint}")
    draw_labels = label_mode(draw_labels, option="--draw-labels")
    if not (save_images or json_out or csv_out or labels):
        save_images = json_out = True
    files = expand_sources(sources, recursive=recursive)
    options = OutputOptions(save_images, json_out, csv_out, labels, calib, draw_labels)
    check_outputs(out, options, files)  # before the model loads: never over an input, never too late
    seg = Segmenter(model, backend=backend, device=device, threads=threads, conf=conf, classes=_split_list(classes),
                    bit_depth=bit_depth)
    writer = PredictionWriter(out, seg.class_names, options)
    unit = "um" if calib is not None else "px"
    console = Console()
    skipped = done = total_inst = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=len(files) < 3) as progress:
        task = progress.add_task("predict", total=len(files))
        for path in files:
            try:
                frame = read_image(path)
                inst = seg(frame)
            except MaskrtError as exc:
                log.warning("skipped %s", exc)
                skipped += 1
                progress.advance(task)
                continue
            result = writer.measure(path, inst, seg.timings)
            writer.add(result, frame)
            done += 1
            total_inst += len(inst)
            progress.console.print(_summary(path, result.stats, inst.frame_hw, seg.timings, unit), highlight=False,
                                   markup=False)
            progress.advance(task)
    written = writer.close()
    seg.close()
    if done == 0:
        raise MaskrtError(f"none of the {len(files)} images could be read; see the messages above")
    typer.echo(
        f"{done} image(s), {total_inst} instance(s)" + (f", {skipped} skipped" if skipped else "")
        + f"; {len(written)} file(s) in {out}"
    )


def _summary(path: Path, stats: dict, frame_hw: tuple[int, int], timings: dict[str, float], unit: str) -> str:
    """One line per image: name, size, counts per class, void fraction, Sauter diameter, time."""
    counts = ", ".join(f"{n} {name}" for name, n in stats["count_per_class"].items() if n) or "0 instances"
    d32 = stats.get(f"sauter_diameter_{unit}")
    d32_text = f"  d32 {d32:.1f} {unit}" if d32 is not None else ""
    ms = sum(timings.values())
    return (f"{path}  {frame_hw[1]}x{frame_hw[0]}  {counts}  void {100 * stats['void_fraction']:.1f}%{d32_text}"
            f"  {ms:.0f} ms")
