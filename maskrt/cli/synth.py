"""`maskrt synth`: synthetic bubble and droplet scenes (a COCO dataset, or a video with per-frame ground truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskrt.cli.app import app
from maskrt.errors import MaskrtError

_SCENES = "boiling-side | boiling-bottom | droplets | taylor | mixed"


@app.command()
def synth(
    out: Annotated[Path | None, typer.Argument(
        help="Output folder for the COCO dataset (images + annotations.json).",
    )] = None,
    images: Annotated[int, typer.Option("--images", "-n", help="Number of images.")] = 200,
    size: Annotated[int, typer.Option("--size", help="Square image/frame side in pixels.")] = 512,
    scene: Annotated[str, typer.Option(
        "--scene",
        help=f"Scene type: {_SCENES} (mixed: random per image).",
    )] = "mixed",
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the same data.")] = 0,
    image_format: Annotated[str, typer.Option(
        "--format",
        help="Image files: jpg (with JPEG artefacts) or png.",
    )] = "jpg",
    min_area: Annotated[int, typer.Option(
        "--min-area",
        help="Leave out instances with fewer visible pixels.",
    )] = 8,
    workers: Annotated[int, typer.Option(
        "--workers",
        "-j",
        help="Dataset: processes rendering in parallel (same output).",
    )] = 1,
    video: Annotated[Path | None, typer.Option(
        "--video",
        help="Render a moving sequence to this .mp4 instead.",
    )] = None,
    frames: Annotated[int, typer.Option("--frames", help="Video: number of frames.")] = 120,
    fps: Annotated[float, typer.Option("--fps", help="Video: frames per second.")] = 30.0,
    frames_dir: Annotated[Path | None, typer.Option(
        "--frames-dir",
        help="Video: also write every frame as a PNG into this folder (image-sequence source).",
    )] = None,
    regime: Annotated[str, typer.Option(
        "--regime",
        help="Dataset, boiling-bottom images: isolated (small bubbles), dense (merging patches) or both.",
    )] = "both",
    bottom_style: Annotated[str, typer.Option(
        "--bottom-style",
        help="Dataset, boiling-bottom images: realistic (matched to real frames) or classic.",
    )] = "realistic",
) -> None:
    """Generate synthetic scenes with exact instance masks: the built-in default dataset.

    A dataset: `maskrt synth data-out/synth --images 500 --scene mixed --seed 0`

    A video with per-frame ground truth: `maskrt synth --video demo-out/boiling.mp4 --frames 300`

    Real-looking bottom-view frames at their real size: `maskrt synth out --scene boiling-bottom --size 256
    --regime dense` (grey; instances are connected components of the vapour, holes kept)
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from maskrt.paths import check_writable

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    if video is not None:
        if out is not None:
            raise MaskrtError("synth: give either OUT (a dataset folder) or --video OUT.mp4, not both")
        check_writable(video, kind="file", option="--video")
        if frames_dir is not None:
            check_writable(frames_dir, kind="folder", option="--frames-dir")
        from maskrt.train.synth.video import render_video

        with Progress(*columns, transient=True) as bar:
            task = bar.add_task("rendering video", total=frames)
            gt = render_video(
                video, frames=frames, size=size, scene=scene, fps=fps, seed=seed, frames_dir=frames_dir,
                min_area=min_area, progress=lambda done, total: bar.update(task, completed=done),
            )
        typer.echo(f"wrote {video} ({frames} frames) and ground truth {gt}")
        return
    if out is None:
        raise MaskrtError("synth: missing OUT folder; e.g. `maskrt synth data-out/synth --images 200`")
    check_writable(out, kind="folder", option="OUT")
    from maskrt.train.synth import generate_dataset

    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("rendering images", total=images)
        ann = generate_dataset(
            out, images=images, size=size, scene=scene, seed=seed, min_area=min_area, image_format=image_format,
            progress=lambda done, total: bar.update(task, completed=done), workers=workers, regime=regime,
            style=bottom_style,
        )
    import json

    info = json.loads(ann.read_text())
    counts: dict[str, int] = {}
    names = {c["id"]: c["name"] for c in info["categories"]}
    for a in info["annotations"]:
        counts[names[a["category_id"]]] = counts.get(names[a["category_id"]], 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no instances"
    typer.echo(f"wrote {images} images ({summary}) to {ann}")
