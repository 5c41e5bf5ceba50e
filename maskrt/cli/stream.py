"""`maskrt run [MODEL] SOURCE`: real-time segmentation of a camera, stream, video or image folder."""


from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from maskrt.cli.app import app
from maskrt.errors import MaskrtError
from maskrt.runtime.backends import BACKEND_HELP, DEVICE_HELP
from maskrt.runtime.stream.outputs import OutputOptions
from maskrt.runtime.stream.types import StreamOptions

_STREAM, _OUTPUTS = StreamOptions(), OutputOptions()
"""The defaults of the options that are a StreamOptions or an OutputOptions field as they are."""
_SOURCES = (
    "0 | /dev/video0 | csi://0 | rtsp://... | http://... | clip.mp4 | frames/ | 'img_*.png' | gst:<pipeline>"
)


@app.command(
    "run",
    epilog=(
        "Examples: maskrt run 0 --show  |  maskrt run model.onnx rtsp://cam/stream --csv frames.csv --save out.mp4  |  "
        "maskrt run clip.mp4 --track --wall y=420 --fps-physical 5000 --um-per-px 12 --instances inst.csv"
    ),
)
def run(
    inputs: Annotated[list[str], typer.Argument(
        metavar="[MODEL] SOURCE",
        help=f"Optional model, then a source: {_SOURCES}",
    )],
    model: Annotated[Path | None, typer.Option(
        "--model",
        "-m",
        help="Model (.onnx/.engine); default: bundled model.",
    )] = None,
    backend: Annotated[str, typer.Option("--backend", help=BACKEND_HELP)] = "auto",
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    threads: Annotated[int | None, typer.Option(
        "--threads",
        help="CPU threads for ONNX Runtime and OpenVINO.",
    )] = None,
    conf: Annotated[float | None, typer.Option(
        "--conf",
        help="Score threshold (default: the model's).",
    )] = None,
    mask_threshold: Annotated[float | None, typer.Option(
        "--mask-threshold",
        help="Mask probability threshold.",
    )] = None,
    classes: Annotated[str | None, typer.Option(
        "--classes",
        help="Comma-separated class names to keep.",
    )] = None,
    width: Annotated[int | None, typer.Option(
        "--width",
        help="Capture width (cameras) / resize (files).",
    )] = _STREAM.width,
    height: Annotated[int | None, typer.Option(
        "--height",
        help="Capture height (cameras) / resize (files).",
    )] = _STREAM.height,
    fps: Annotated[float | None, typer.Option(
        "--fps",
        help="Capture frame rate; also the rate of image folders.",
    )] = _STREAM.fps,
    loop: Annotated[bool, typer.Option(
        "--loop",
        help="Restart files and folders at their end.",
    )] = _STREAM.loop,
    realtime: Annotated[bool, typer.Option(
        "--realtime",
        help="Play files at their frame rate, dropping late frames.",
    )] = _STREAM.realtime,
    show: Annotated[bool, typer.Option(
        "--show",
        help="Show a window with the overlay (q quits).",
    )] = _OUTPUTS.show,
    save: Annotated[Path | None, typer.Option(
        "--save",
        help="Annotated video (.mp4/.avi/.mkv): files at their rate, live sources in capture time.",
    )] = _OUTPUTS.save,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Per-frame statistics CSV.")] = _OUTPUTS.csv,
    instances: Annotated[Path | None, typer.Option(
        "--instances",
        help="Per-instance measurements CSV.",
    )] = _OUTPUTS.instances,
    jsonl: Annotated[Path | None, typer.Option(
        "--jsonl",
        help="Everything per frame, one JSON line each (RLE masks).",
    )] = _OUTPUTS.jsonl,
    tracks: Annotated[Path | None, typer.Option(
        "--tracks",
        help="Per-track summary CSV (with --track).",
    )] = _OUTPUTS.tracks,
    save_masks: Annotated[Path | None, typer.Option(
        "--save-masks",
        help="Folder for per-frame label maps.",
    )] = _OUTPUTS.save_masks,
    masks_format: Annotated[str, typer.Option(
        "--masks-format",
        help="png (16-bit label map) | rle (COCO JSON).",
    )] = _OUTPUTS.masks_format,
    roi: Annotated[str | None, typer.Option("--roi", help="Analyse only x,y,w,h (pixels).")] = None,
    um_per_px: Annotated[float | None, typer.Option(
        "--um-per-px",
        help="Calibration, micrometres per pixel.",
    )] = None,
    mm_per_px: Annotated[float | None, typer.Option(
        "--mm-per-px",
        help="Calibration, millimetres per pixel.",
    )] = None,
    track: Annotated[bool, typer.Option(
        "--track",
        help="Persistent instance ids, growth, velocity, departures.",
    )] = _STREAM.track,
    wall: Annotated[str | None, typer.Option(
        "--wall",
        help="Departure line 'y=420' / 'x=100' or region 'x,y,w,h'.",
    )] = None,
    fps_physical: Annotated[float | None, typer.Option(
        "--fps-physical",
        help="True frame rate of a high-speed recording (for times and rates).",
    )] = _STREAM.fps_physical,
    track_high: Annotated[float, typer.Option(
        "--track-high",
        help="Score needed to start a track.",
    )] = _STREAM.track_high,
    boxes: Annotated[bool, typer.Option("--boxes", help="Draw boxes in the overlay.")] = _OUTPUTS.draw_boxes,
    labels: Annotated[str, typer.Option(
        "--labels",
        "--draw-labels",
        help="Labels in the overlay: auto (only where they fit) | all | none.",
    )] = _OUTPUTS.labels,
    max_frames: Annotated[int | None, typer.Option(
        "--max-frames",
        help="Stop after this many frames.",
    )] = _STREAM.max_frames,
    max_failures: Annotated[int, typer.Option(
        "--max-failures",
        help="Connection retries of a live source (at the start, after a loss) before giving up.",
    )] = _STREAM.max_failures,
    summary: Annotated[Path | None, typer.Option(
        "--summary",
        help="Write the final summary as JSON here.",
    )] = None,
) -> None:
    """Segment a live camera, stream, video or image folder in real time, with tracking and outputs.

    MODEL is optional: without it (or --model) the bundled model runs.

    Files and folders are processed frame by frame, in order; live sources keep only the newest frame.
    time_s in the tables is the capture time: wall clock for live sources, the position in files, or
    --fps-physical; the video of a live source follows the same clock.

    Ctrl-C or SIGTERM stops cleanly: every output is flushed and closed. Exit code 1 when a live source was lost.
    """
    from rich.console import Console

    from maskrt.runtime.draw import label_mode
    from maskrt.runtime.stream import Stream, Wall, load_segmenter, parse_source
    from maskrt.runtime.stream.capture import open_with_retry
    from maskrt.runtime.stream.outputs import Outputs, check_outputs

    console = Console(stderr=True)
    if len(inputs) > 2:
        raise MaskrtError(f"expected [MODEL] SOURCE, got {len(inputs)} arguments: {' '.join(inputs)}")
    if len(inputs) == 2:
        if model is not None:
            raise MaskrtError("give the model either as the first argument or with --model, not both")
        model = Path(inputs[0])
    source = inputs[-1]
    if um_per_px is not None and mm_per_px is not None:
        raise MaskrtError("give --um-per-px or --mm-per-px, not both")
    scale = um_per_px if um_per_px is not None else (mm_per_px * 1000.0 if mm_per_px is not None else None)
    if wall and not track:
        raise MaskrtError("--wall needs --track (departures are per track)")
    if tracks and not track:
        raise MaskrtError("--tracks needs --track")
    labels = label_mode(labels)
    options = StreamOptions(
        width=width, height=height, fps=fps, loop=loop, realtime=realtime, roi=_parse_roi(roi), um_per_px=scale,
        track=track, wall=Wall.parse(wall) if wall else None, fps_physical=fps_physical, track_high=track_high,
        max_frames=max_frames, max_failures=max_failures,
    )  # fmt: skip
    out_opts = OutputOptions(
        show=show, save=save, csv=csv_path, instances=instances, jsonl=jsonl, tracks=tracks, save_masks=save_masks,
        masks_format=masks_format, draw_boxes=boxes, labels=labels,
    )  # fmt: skip
    if out_opts.show:
        from maskrt.runtime.stream.outputs import check_display

        check_display()
    spec = parse_source(source, width=width, height=height, fps=fps, loop=loop)
    read = [spec.target] if spec.kind == "file" or (spec.kind == "images" and Path(spec.target).is_dir()) else []
    inputs = [p for p in (model, *read, *(spec.files if not read else ())) if p is not None]
    check_outputs(out_opts, {"--summary": summary}, inputs=inputs)  # before anything starts
    # open the source before loading the model: a wrong URL or a missing camera fails before the long part
    opened = open_with_retry(spec, max_failures=max_failures, backoff_s=options.backoff_s)
    try:
        seg = load_segmenter(
            model, backend=backend, device=device, threads=threads, conf=conf, mask_threshold=mask_threshold,
            classes=[c.strip() for c in classes.split(",") if c.strip()] if classes else None,
        )  # fmt: skip
    except BaseException:
        opened.close()
        raise
    stream = Stream(seg, opened, options)
    try:
        outs = Outputs(
            out_opts, fps=stream.source_fps, follow_clock=stream.spec.live, template=stream.template()
        )
    except BaseException:
        stream.close()
        raise
    stopper = _StopOnSignal(stream)
    try:
        try:
            _loop(stream, outs, console, stopper)
            outs.write_final_tracks(stream.finish_tracks())
        finally:
            outs.close()
        stopper.announce(console)
        info = stream.summary
        if outs.video is not None:
            info["video"] = outs.video.describe()
        _print_summary(info, console)
        if summary is not None:
            from maskrt.atomic import write_text

            write_text(summary, json.dumps(info, indent=2) + "\n")
    finally:
        stopper.restore()  # only now: a late SIGTERM must not kill the run while it writes its summary
    if info["source_lost"]:
        raise typer.Exit(1)  # the live source was lost for good (outputs are complete and closed)


def _loop(stream: Any, outs: Any, console: Any, stopper: _StopOnSignal) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = None if stream.live else stream.frame_count
    if stream.options.max_frames is not None and total is not None:
        total = min(total, stream.options.max_frames)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    columns.append(TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as progress:
        task = progress.add_task(stream.spec.text[-40:], total=total, status="")
        last = 0.0
        for result in stream:
            outs.write(result)
            stopper.announce(console)
            now = time.perf_counter()
            if now - last > 0.25:
                s = result.stats
                status = (
                    f"n={s['count']} void={100 * s['void_fraction']:.1f}% dropped={stream.capture.dropped}"
                )
                progress.update(task, completed=stream.processed + 1, status=status)
                last = now
            if outs.quit_requested:
                stream.stop()
        progress.update(task, completed=stream.processed)


class _StopOnSignal:
    """SIGTERM and the first Ctrl-C stop the stream cleanly; a second Ctrl-C (0.5 s later) interrupts at once.

    The handler only sets flags and asks the stream to stop: it prints nothing (a signal that arrives
    while the main thread prints would make the print re-enter itself) and ignores repeats, such as the
    second SIGTERM of GNU ``timeout``, which signals the process and then its process group.
    :meth:`announce` prints the message from the main thread.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.signal_name: str | None = None
        self._first = 0.0
        self._announced = False
        self._previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (embedded use): no handlers
                pass

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signal_name is not None:
            if signum == signal.SIGINT and time.monotonic() - self._first > 0.5:
                raise KeyboardInterrupt  # a person pressing Ctrl-C again: stop waiting for frames in flight
            return
        self.signal_name = signal.Signals(signum).name
        self._first = time.monotonic()
        self.stream.stop()

    def announce(self, console: Any) -> None:
        """Print, once, that a signal is stopping the run."""
        if self.signal_name is not None and not self._announced:
            self._announced = True
            console.print(f"stopping ({self.signal_name}): finishing frames in flight, closing outputs")

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous = {}


def _parse_roi(text: str | None) -> tuple[int, int, int, int] | None:
    if not text:
        return None
    try:
        x, y, w, h = (int(float(v)) for v in text.split(","))
    except ValueError:
        raise MaskrtError(f"--roi {text!r}: give x,y,w,h in pixels, e.g. --roi 0,100,640,300") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise MaskrtError(f"--roi {text!r}: x and y must be >= 0, w and h > 0")
    return (x, y, x + w, y + h)


def _print_summary(info: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    console.print(
        f"{info['source']}: {info['frames_in']} frames in, {info['processed']} processed, {info['dropped']} dropped, "
        f"{info['reopens']} reopens; {info['fps']:.1f} FPS end to end over {info['wall_s']:.1f} s ({info['end_reason']})"
    )
    console.print(f"time_s is the {info['time_s']}")
    video = info.get("video")
    if video and video["frames"]:
        console.print(
            f"video {video['path']}: {video['frames']} frames at {video['fps']:g} fps "
            f"({video['duration_s']:.1f} s) for {video['processed']} processed frames; {video['timeline']}"
        )
    table = Table("stage", "mean ms", "p99 ms", "frames", title="per-stage timing", title_justify="left")
    for name, st in info["stages_ms"].items():
        table.add_row(name, f"{st['mean_ms']:.2f}", f"{st['p99_ms']:.2f}", str(st["n"]))
    console.print(table)
