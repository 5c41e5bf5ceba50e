"""`maskrt demo`: the whole runtime on a synthetic boiling video, offline, with the bundled model.

It renders a short moving scene with known ground truth (:func:`maskrt.train.synth.render_video`,
numpy + OpenCV only), runs the real-time stream pipeline on it with the bundled ``bubbles-lite``
model, writes the annotated video, per-frame and per-instance CSVs and PNG plots, scores the result
against the ground truth, and benchmarks the model on the same frames. Nothing here needs torch.

Example:
    >>> from maskrt.demo import run_demo
    >>> result = run_demo("demo-out", frames=60)
    >>> result.accuracy["f1"], result.summary["fps"]
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maskrt import rle as rle_codec
from maskrt.atomic import write_text

log = logging.getLogger(__name__)

IOU_MATCH = 0.5
"""A prediction counts as correct when its mask overlaps a ground-truth instance with IoU >= this."""


@dataclass
class DemoResult:
    """What the demo wrote and measured."""

    out: Path
    files: dict[str, Path]
    accuracy: dict[str, float]
    summary: dict[str, Any]
    bench: dict[str, Any] | None = None
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)


Boxed = tuple[Any, np.ndarray]
"""A mask as ``((x0, y0, x1, y1), crop)``: its bounding box (4 ints, exclusive; a tuple or a row of an
``Instances``' ``regions``) and the boolean mask inside it."""


def boxed(mask: np.ndarray) -> Boxed | None:
    """A full-frame boolean mask as :data:`Boxed` (``None`` when it is empty)."""
    m = np.asarray(mask, dtype=bool)
    ys, xs = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if not len(ys):
        return None
    y0, y1, x0, x1 = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
    return (x0, y0, x1, y1), m[y0:y1, x0:x1]


def match_boxed(pred: list[Boxed], gt: list[Boxed], iou: float = IOU_MATCH) -> int:
    """Number of one-to-one matches at mask IoU >= ``iou`` (greedy, best pairs first), from boxed masks.

    Only pairs whose boxes overlap are compared, each on the overlap of the two boxes, so a frame costs
    what its masks cover, not what the frame does (the demo scores every frame while it streams).
    """
    if not pred or not gt:
        return 0
    pb = np.asarray([b for b, _ in pred], dtype=np.int64)
    gb = np.asarray([b for b, _ in gt], dtype=np.int64)
    pa = np.asarray([int(c.sum()) for _, c in pred])
    ga = np.asarray([int(c.sum()) for _, c in gt])
    x0 = np.maximum(pb[:, None, 0], gb[None, :, 0])
    y0 = np.maximum(pb[:, None, 1], gb[None, :, 1])
    x1 = np.minimum(pb[:, None, 2], gb[None, :, 2])
    y1 = np.minimum(pb[:, None, 3], gb[None, :, 3])
    pairs: list[tuple[float, int, int]] = []
    for i, j in zip(*np.nonzero((x1 > x0) & (y1 > y0))):
        (px, py, _, _), pc = pred[i]
        (gx, gy, _, _), gc = gt[j]
        a0, b0, a1, b1 = int(x0[i, j]), int(y0[i, j]), int(x1[i, j]), int(y1[i, j])
        inter = int(np.count_nonzero(pc[b0 - py:b1 - py, a0 - px:a1 - px] & gc[b0 - gy:b1 - gy, a0 - gx:a1 - gx]))
        v = inter / max(int(pa[i] + ga[j]) - inter, 1)
        if v >= iou:
            pairs.append((v, int(i), int(j)))
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    used_p: set[int] = set()
    used_g: set[int] = set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
    return len(used_p)


def match_frame(pred_masks: list[np.ndarray], gt_masks: list[np.ndarray], iou: float = IOU_MATCH) -> int:
    """Number of one-to-one matches between predicted and true full-frame masks at ``iou`` (best pairs first)."""
    return match_boxed([b for b in map(boxed, pred_masks) if b is not None],
                       [b for b in map(boxed, gt_masks) if b is not None], iou)


class TruthScore:
    """Running comparison with the ground truth: instance masks matched at IoU 0.5, counts, void fraction.

    Args:
        gt: the ground-truth JSON of :func:`~maskrt.train.synth.render_video`.
    """

    def __init__(self, gt: dict[str, Any]) -> None:
        self.truth = {f["index"]: f for f in gt["frames"]}
        self.tp = self.n_pred = self.n_gt = 0
        self.count_err: list[int] = []
        self.rel_count: list[float] = []
        self.void_err: list[float] = []

    def add(self, index: int, pred_masks: list[np.ndarray], count: int, void_fraction: float) -> None:
        """Score one processed frame from full-frame masks (frames without ground truth are ignored)."""
        self.add_boxed(index, [b for b in map(boxed, pred_masks) if b is not None], count, void_fraction,
                       n_pred=len(pred_masks))

    def add_boxed(self, index: int, pred: list[Boxed], count: int, void_fraction: float,
                  n_pred: int | None = None) -> None:
        """Score one processed frame from boxed masks (an ``Instances``' regions and crops)."""
        t = self.truth.get(index)
        if t is None:
            return
        gt_masks = [rle_codec.decode(i["segmentation"]) for i in t["instances"]]
        self.tp += match_boxed(pred, [b for b in map(boxed, gt_masks) if b is not None])
        self.n_pred += len(pred) if n_pred is None else n_pred
        self.n_gt += len(gt_masks)
        self.count_err.append(abs(count - len(gt_masks)))
        self.rel_count.append(abs(count - len(gt_masks)) / max(len(gt_masks), 1))
        self.void_err.append(abs(void_fraction - float(t["void_fraction"])))

    def result(self) -> dict[str, float]:
        """Precision, recall, F1 (IoU 0.5), mean absolute count error (absolute and relative), void-fraction MAE."""
        precision = self.tp / self.n_pred if self.n_pred else 0.0
        recall = self.tp / self.n_gt if self.n_gt else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        n = len(self.count_err)
        return {
            "frames": float(n),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "count_mae": float(np.mean(self.count_err)) if n else 0.0,
            "count_rel_err": float(np.mean(self.rel_count)) if n else 0.0,
            "void_fraction_mae": float(np.mean(self.void_err)) if n else 0.0,
            "gt_instances_per_frame": self.n_gt / max(n, 1),
        }


INT8_CALIB_IMAGES = 32
"""Synthetic scenes the demo's INT8 copy is calibrated on (as ``maskrt export --int8`` by default)."""
INT8_GRAPH_CONF = 0.3
"""Score below which the demo's INT8 copy drops detections inside its graph (``maskrt export --graph-conf``)."""


def int8_cache_dir() -> Path:
    """Where INT8 copies go: ``$MASKRT_CACHE/int8``, else ``$XDG_CACHE_HOME/maskrt/int8`` (``~/.cache/maskrt/int8``)."""
    from maskrt.paths import user_cache_dir

    return user_cache_dir("int8")


def int8_copy(src: str | Path, cache: str | Path | None = None,
              calib_images: int | None = None) -> tuple[Path, bool]:
    """The INT8 Q/DQ artifact of the FP32 artifact ``src``, made once and cached; ``(path, made_now)``.

    The same quantizer and default calibration as ``maskrt export MODEL.onnx --int8`` (synthetic mixed scenes),
    written atomically under ``cache`` (default :func:`int8_cache_dir`) with a hash of ``src``, the quantizer's
    recipe and the calibration count in its name, so a changed model or quantizer gets a new copy and an
    unchanged one is reused. An INT8 artifact is returned as it is. The copy's graph drops detections below
    :data:`INT8_GRAPH_CONF` (at most the model's default conf, which the demo uses) before NMS and the mask head,
    as ``maskrt export --graph-conf`` does: every detection the demo shows is unchanged, the mask head runs on
    fewer RoIs.
    Needs the ``onnx`` package (not torch).
    """
    import hashlib

    from maskrt.errors import MaskrtError

    src = Path(src)
    if not src.is_file():
        raise MaskrtError("model not found; pass an ONNX artifact with --model", path=src)
    try:
        from maskrt.export.int8 import calibration_images, recipe_key, with_graph_score_threshold, write_int8
        from maskrt.export.metadata import read_meta
    except ImportError as exc:
        raise MaskrtError(f"--int8 needs the onnx package ({exc.name} is missing): pip install onnx",
                          path=src) from exc
    meta = read_meta(src)
    if meta.precision == "int8":
        return src, False
    n_calib = calib_images or INT8_CALIB_IMAGES
    gate = max(meta.graph_score_threshold, min(INT8_GRAPH_CONF, meta.score_threshold))
    key = hashlib.sha256(src.read_bytes())
    key.update(f"{recipe_key()} {n_calib} {gate}".encode())  # a changed quantizer or calibration: a new copy
    digest = key.hexdigest()[:16]
    dst = Path(cache) if cache is not None else int8_cache_dir()
    dst = dst / f"{src.stem}-{digest}-int8.onnx"
    if dst.is_file():
        return dst, False
    dst.parent.mkdir(parents=True, exist_ok=True)
    images, source = calibration_images(tuple(meta.input_size), n_calib)
    with with_graph_score_threshold(src, gate if gate != meta.graph_score_threshold else None) as fp32:
        write_int8(fp32, dst, images, source)
    return dst, True


def run_demo(
    out: str | Path = "demo-out",
    *,
    frames: int = 90,
    size: int = 512,
    scene: str = "boiling-side",
    seed: int = 7,
    model: str | Path | None = None,
    threads: int | None = None,
    bench_iters: int = 10,
    plots: bool = True,
    labels: str = "auto",
    int8: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoResult:
    """Render a synthetic video, segment it live with the bundled model, and write every output.

    Args:
        out: output folder (created).
        frames: video length in frames.
        size: frame side in pixels.
        scene: synthetic scene (``boiling-side``, ``boiling-bottom``, ``droplets``, ``taylor``).
        seed: scene seed.
        model: model artifact; None for the bundled model.
        threads: ONNX Runtime threads (None: its default).
        bench_iters: timed iterations of the benchmark table (0 skips it).
        plots: write the PNG plots (needs matplotlib; skipped with a note without it).
        labels: labels in the annotated video: ``auto`` (only where they fit), ``all`` or ``none``.
        int8: run an INT8 copy of the model (:func:`int8_copy`: made once, then cached); fastest on OpenVINO.
        progress: called as ``progress(stage, done, total)``.

    Returns:
        A :class:`DemoResult` with the files written, accuracy against ground truth and the stream summary.
    """
    from maskrt.runtime.draw import label_mode
    from maskrt.runtime.stream import Stream, StreamOptions, load_segmenter
    from maskrt.runtime.stream.outputs import OutputOptions, Outputs
    from maskrt.train.synth import render_video

    labels = label_mode(labels)  # before the long part
    t0 = time.perf_counter()
    notes: list[str] = []
    if int8:
        from maskrt.runtime.segmenter import resolve_model

        t_q = time.perf_counter()
        model, made = int8_copy(resolve_model(model))
        notes.append(f"INT8 copy {model} " + (f"made in {time.perf_counter() - t_q:.0f} s (cached for next time)"
                                                if made else "reused from the cache"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "input": out / "input.mp4",
        "video": out / "annotated.mp4",
        "frames_csv": out / "frames.csv",
        "instances_csv": out / "instances.csv",
        "summary": out / "summary.json",
    }
    cb = progress or (lambda stage, done, total: None)
    gt_path = render_video(
        files["input"], frames=frames, size=size, scene=scene, seed=seed,
        progress=lambda d, t: cb("render", d, t),
    )  # fmt: skip
    files["ground_truth"] = Path(gt_path)
    gt = json.loads(Path(gt_path).read_text())

    seg = load_segmenter(model, threads=threads)
    if int8 and str(getattr(getattr(seg, "backend", None), "name", "")).startswith("onnxruntime:CPU"):
        notes.append("INT8 on ONNX Runtime's CPU kernels is no faster than FP32 here; OpenVINO runs the same file "
                     "about 2x faster: pip install openvino")
    stream = Stream(seg, str(files["input"]), StreamOptions(track=True))
    outs = Outputs(
        OutputOptions(save=files["video"], csv=files["frames_csv"], instances=files["instances_csv"], labels=labels),
        fps=stream.source_fps,
    )
    score = TruthScore(gt)
    per_frame: list[dict[str, Any]] = []
    diameters: list[float] = []
    stage_rows: list[dict[str, float]] = []
    try:
        for result in stream:
            outs.write(result)
            inst = result.instances
            count, void = int(result.stats["count"]), float(result.stats["void_fraction"])
            score.add_boxed(result.index, list(zip(inst.regions, inst.crops)), count, void)
            per_frame.append({"index": result.index, "count": count, "void_fraction": void})
            diameters.extend(float(m["eq_diameter_px"]) for m in result.measurements if "eq_diameter_px" in m)
            stage_rows.append(dict(result.timings))
            cb("segment", len(per_frame), frames)
    finally:
        outs.close()
    summary = stream.summary
    summary["model"] = str(getattr(seg, "path", model) or "bundled")
    accuracy = score.result()

    if plots:
        try:
            files.update(_plots(out, per_frame, gt, diameters, stage_rows))
        except ImportError:
            notes.append("plots skipped: matplotlib is not installed (pip install 'maskrt[plot]')")

    bench_doc = None
    if bench_iters > 0:
        bench_doc = _bench(seg, per_frame_frames(files["input"], 8), bench_iters, threads)
        from maskrt.runtime.bench import write_json, write_markdown

        files["bench_json"] = write_json(out / "bench.json", bench_doc)
        files["bench_md"] = write_markdown(out / "bench.md", bench_doc)

    wall = time.perf_counter() - t0
    doc = {
        "scene": scene, "frames": frames, "size": size, "seed": seed,
        "model": str(getattr(seg, "path", model) or "bundled"),
        "accuracy": accuracy, "stream": summary, "wall_s": wall, "notes": notes,
    }  # fmt: skip
    write_text(files["summary"], json.dumps(doc, indent=2, default=str) + "\n")
    return DemoResult(out, files, accuracy, summary, bench_doc, wall, notes)


def per_frame_frames(video: Path, limit: int) -> list[np.ndarray]:
    """The first ``limit`` frames of a video, spread over its length, for the benchmark table."""
    from maskrt.runtime.bench import video_frames

    return video_frames(video, limit=limit)


def _bench(seg: Any, frames: list[np.ndarray], iters: int, threads: int | None) -> dict[str, Any]:
    """Time the already-loaded model on the demo's frames (the backend ``auto`` picked on this machine)."""
    from maskrt.runtime.bench import BenchRow, results_document, system_info
    from maskrt.runtime.bench.runner import bench_artifact

    path = str(getattr(seg, "path", "model"))
    row: BenchRow = bench_artifact(
        path, "auto", frames, threads=threads, warmup=2, iters=iters, loader=lambda *a, **k: seg
    )
    config = {"frames_desc": f"{len(frames)} frames of the demo video, rotated", "warmup": 2,
              "timed": f"{iters} timed frames", "iters": iters}
    return results_document([row], system_info(), config)


def _plots(
    out: Path,
    per_frame: list[dict[str, Any]],
    gt: dict[str, Any],
    diameters: list[float],
    stage_rows: list[dict[str, float]],
) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from maskrt.atomic import atomic_path

    written: dict[str, Path] = {}
    truth = {f["index"]: f for f in gt["frames"]}
    fps = float(gt.get("fps", 30.0)) or 30.0
    idx = [f["index"] for f in per_frame]
    t = np.asarray(idx, dtype=float) / fps

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    a1.plot(t, [f["count"] for f in per_frame], label="maskrt")
    a1.plot(t, [len(truth[i]["instances"]) if i in truth else np.nan for i in idx], "--", label="ground truth")
    a1.set_ylabel("instances")
    a1.legend(loc="upper left")
    a2.plot(t, [100 * f["void_fraction"] for f in per_frame], label="maskrt")
    a2.plot(t, [100 * float(truth[i]["void_fraction"]) if i in truth else np.nan for i in idx], "--",
            label="ground truth")
    a2.set_ylabel("void fraction (%)")
    a2.set_xlabel("time (s)")
    a2.legend(loc="upper left")
    fig.suptitle("Count and void fraction over time")
    written["plot_timeseries"] = _save(fig, out / "count_void.png", atomic_path)

    fig, ax = plt.subplots(figsize=(6, 4))
    gt_d = [2.0 * np.sqrt(float(i["area"]) / np.pi) for f in gt["frames"] for i in f["instances"]
            if f["index"] in set(idx)]
    bins = np.histogram_bin_edges(np.asarray(gt_d + diameters or [0.0, 1.0]), bins=30)
    ax.hist(gt_d, bins=bins, alpha=0.5, label="ground truth")
    ax.hist(diameters, bins=bins, alpha=0.5, label="maskrt")
    ax.set_xlabel("equivalent diameter (px)")
    ax.set_ylabel("instances (all frames)")
    ax.legend()
    ax.set_title("Bubble size distribution")
    written["plot_sizes"] = _save(fig, out / "sizes.png", atomic_path)

    fig, ax = plt.subplots(figsize=(6, 4))
    stages = [s for s in ("preprocess", "infer", "postprocess", "measure", "track", "output") if
              any(s in r for r in stage_rows)]
    extra = sorted({k for r in stage_rows for k in r} - set(stages))
    stages += extra
    means = [float(np.mean([r.get(s, 0.0) for r in stage_rows])) for s in stages]
    p99 = [float(np.percentile([r.get(s, 0.0) for r in stage_rows], 99)) for s in stages]
    ax.bar(stages, means, yerr=[np.zeros(len(means)), np.maximum(np.asarray(p99) - means, 0)], capsize=4)
    ax.set_ylabel("ms per frame (mean, p99 whisker)")
    ax.set_title("Latency per stage")
    ax.tick_params(axis="x", rotation=30)
    written["plot_latency"] = _save(fig, out / "latency.png", atomic_path)
    return written


def _save(fig: Any, path: Path, atomic_path: Any) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path
