"""`maskrt demo`: the whole runtime on a synthetic boiling video, offline, with the bundled model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskrt.cli.app import app


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo-out"),
    frames: Annotated[int, typer.Option("--frames", help="Length of the synthetic video in frames.")] = 90,
    size: Annotated[int, typer.Option("--size", help="Frame side in pixels.")] = 512,
    scene: Annotated[str, typer.Option(
        "--scene",
        help="boiling-side | boiling-bottom | droplets | taylor",
    )] = "boiling-side",
    seed: Annotated[int, typer.Option("--seed", help="Scene seed.")] = 7,
    model: Annotated[Path | None, typer.Option(
        "--model",
        help="Model artifact (default: the bundled bubbles-lite).",
    )] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="CPU threads for ONNX Runtime.")] = None,
    bench_iters: Annotated[int, typer.Option(
        "--bench-iters",
        help="Timed frames for the benchmark table (0: skip).",
    )] = 10,
    labels: Annotated[str, typer.Option(
        "--labels",
        "--draw-labels",
        help="Labels in the video: auto (only where they fit) | all | none.",
    )] = "auto",
    int8: Annotated[bool, typer.Option(
        "--int8",
        help="Run an INT8 copy of the model (as `maskrt export MODEL.onnx --int8` makes it), quantized on "
        "synthetic scenes the first time (about a minute) and cached in ~/.cache/maskrt/int8; about 2x the FPS "
        "on OpenVINO. Needs the onnx package.",
    )] = False,
) -> None:
    """Render a boiling video, segment it live with the bundled model, and write video, CSVs and plots.

    Everything runs offline. Outputs in --out: annotated.mp4, frames.csv, instances.csv, count_void.png,
    sizes.png, latency.png, bench.json/bench.md, summary.json.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from maskrt.demo import run_demo

    console = Console()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        tasks: dict[str, int] = {}

        def cb(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done)

        result = run_demo(
            out, frames=frames, size=size, scene=scene, seed=seed, model=model, threads=threads,
            bench_iters=bench_iters, labels=labels, int8=int8, progress=cb,
        )  # fmt: skip
    a, s = result.accuracy, result.summary
    model_name = result.summary.get("model") or (str(model) if model else "bundled bubbles-lite")
    console.print(f"[bold]maskrt demo[/bold]: {scene}, {frames} frames of {size}x{size}, model {model_name}")
    console.print(
        f"accuracy vs ground truth: precision {a['precision']:.3f}, recall {a['recall']:.3f}, F1 {a['f1']:.3f} "
        f"(mask IoU >= 0.5); count error {a['count_mae']:.2f} per frame "
        f"({100 * a['count_rel_err']:.1f}% of {a['gt_instances_per_frame']:.1f}); "
        f"void fraction error {100 * a['void_fraction_mae']:.2f} points"
    )
    stages = ", ".join(f"{k} {v['mean_ms']:.1f}" for k, v in s["stages_ms"].items() if isinstance(v, dict))
    console.print(
        f"stream: {s['processed']} frames in {s['wall_s']:.1f} s = {s['fps']:.2f} FPS end to end; "
        f"mean ms per stage: {stages}"
    )
    if result.bench is not None:
        from maskrt.runtime.bench import to_markdown

        console.print(to_markdown(result.bench, compact=True), markup=False, highlight=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}")
    names = ", ".join(p.name for k, p in result.files.items() if k != "input")
    console.print(f"wrote to {result.out}/: {names} (total {result.wall_s:.0f} s)")
