"""Score a model on real footage with semantic vapour masks: per regime, on held-out blocks never trained on.

The real data (``../shared/data/boiling-bottom-videosam``: 256x256 bottom-view pool-boiling frames with a
0/255 vapour mask each) has no instance labels, so instances are the connected components of the mask
(8-connectivity). Per regime (a contiguous block of frames), this prints and writes:

- union-mask IoU: the union of all predicted masks against the vapour mask, pooled over the block
  (sum of intersections / sum of unions), and its per-frame mean;
- void fraction: predicted vs true vapour area fraction, mean absolute error per frame;
- instance precision / recall / F1 at mask IoU 0.5 against components of ``--min-area`` px or more
  (predictions that match a smaller component, or are themselves smaller and match nothing, are
  ignored rather than counted as false positives: the ground truth does not list them);
- whole-frame latency p50 (preprocess + inference + postprocess) and detections per frame;
- for a model with a phase output (``maskrt.train.phase``): union IoU and void fraction of its per-pixel
  phase map as well, beside those of the instance masks;
- with ``--ceiling``: the same union IoU when the ground-truth components themselves are sampled
  through an M x M box mask (as the mask head's training targets are) and pasted back with the
  runtime's paste, for M = 28 and 56: the best any Mask R-CNN with that mask size can do.

The same module lays out the training data that keeps these blocks out (``--prepare-training-data``):
the frames outside the blocks and a guard band around them (consecutive frames are strongly
correlated) for training, the guard-band frames for validation during training, and the real
Taylor-bubble train split with its class named ``bubble`` so that it merges with the other data.

Example:
    python benchmarks/real_footage.py                                  # bundled model, default blocks
    python benchmarks/real_footage.py runs/x/model.onnx --ceiling --md real.md --json real.json
    python benchmarks/real_footage.py --prepare-training-data data-out  # what `make bundled-model` trains on
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "boiling-bottom-videosam"
TAYLOR = ROOT / "tests" / "data" / "taylor-bubbles-coco" / "train"
# contiguous held-out blocks (frame numbers, inclusive); training must never see them
DEFAULT_BLOCKS = {"isolated": (200, 248), "dense": (900, 998)}
ISOLATED_LAST = 248  # frames 0-248 of the recording are the isolated-bubble regime, 250-998 dense boiling


@dataclass
class BlockScore:
    """Scores of one regime's block."""

    regime: str
    frames: int
    union_iou: float = 0.0
    union_iou_mean: float = 0.0
    void_true: float = 0.0
    void_pred: float = 0.0
    void_abs_err: float = 0.0
    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0
    gt_instances_per_frame: float = 0.0
    detections_per_frame: float = 0.0
    latency_p50_ms: float = 0.0
    ceiling: dict[str, float] = field(default_factory=dict)
    # the model's per-pixel phase map (models with a phase output; None otherwise), thresholded at 0.5
    phase_union_iou: float | None = None
    phase_void_pred: float | None = None
    phase_void_abs_err: float | None = None


def frame_number(path: Path) -> int:
    """The frame number in a name like ``train_0248.png``."""
    m = re.search(r"(\d+)(?!.*\d)", path.stem)
    if not m:
        raise ValueError(f"{path}: no frame number in the name")
    return int(m.group(1))


def load_block(data: Path, first: int, last: int) -> list[tuple[Path, np.ndarray, np.ndarray]]:
    """``(path, frame, vapour mask)`` for every frame numbered ``first..last`` in ``data/images``."""
    out = []
    for p in sorted((data / "images").glob("*.png")):
        n = frame_number(p)
        if first <= n <= last:
            img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
            mask = cv2.imread(str(data / "masks" / p.name), cv2.IMREAD_GRAYSCALE)
            if img is None or mask is None:
                raise SystemExit(f"{p}: image or its mask unreadable")
            out.append((p, img, mask > 127))
    return out


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components of a boolean mask: ``(label map, areas)`` (label 0 = background)."""
    _n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return labels, stats[:, cv2.CC_STAT_AREA].astype(np.int64)


def match_instances(
    pred_regions: np.ndarray,
    pred_crops: list[np.ndarray],
    pred_scores: np.ndarray,
    gt_labels: np.ndarray,
    gt_areas: np.ndarray,
    min_area: int = 8,
    iou_thr: float = 0.5,
) -> tuple[int, int, int]:
    """Greedy one-to-one matching at mask IoU ``iou_thr``; returns ``(tp, fp, fn)``.

    Ground-truth components under ``min_area`` pixels are "ignore" regions: a prediction matching one
    is not counted, nor is an unmatched prediction under ``min_area`` pixels. Components of
    ``min_area`` or more that no prediction matches are the false negatives.
    """
    n_gt = len(gt_areas)
    matched = np.zeros(n_gt, dtype=bool)
    tp = fp = 0
    for i in np.argsort(-np.asarray(pred_scores), kind="stable"):
        x0, y0, x1, y1 = (int(v) for v in pred_regions[i])
        crop = pred_crops[i]
        area_p = int(crop.sum())
        if area_p == 0:
            continue
        under = gt_labels[y0:y1, x0:x1][crop]
        inter = np.bincount(under, minlength=n_gt)
        inter[0] = 0
        iou = inter / np.maximum(area_p + gt_areas - inter, 1)
        iou[matched] = 0.0
        j = int(np.argmax(iou))
        if iou[j] >= iou_thr:
            matched[j] = True
            if gt_areas[j] >= min_area:
                tp += 1
        elif area_p >= min_area:
            fp += 1
    big = gt_areas >= min_area
    big[0] = False
    fn = int((big & ~matched).sum())
    return tp, fp, fn


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / max(tp + fp, 1)
    r = tp / max(tp + fn, 1)
    return p, r, (2 * p * r / max(p + r, 1e-12))


def ceiling_union(mask: np.ndarray, mask_size: int) -> np.ndarray:
    """The vapour mask after each component goes through an ``M x M`` box mask and the runtime's paste."""
    import torch
    from torchvision.ops import roi_align

    from maskrt.runtime.paste import paste_masks

    labels, areas = components(mask)
    n = len(areas) - 1
    if n == 0:
        return np.zeros_like(mask)
    boxes: list[tuple[int, int, int, int]] = []
    for k in range(1, n + 1):
        ys, xs = np.nonzero(labels == k)
        boxes.append((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    boxes_np = np.asarray(boxes, dtype=np.float32)
    # the mask head's training target: roi_align of the instance's own full-frame mask over its box
    per = np.stack([(labels == k) for k in range(1, n + 1)]).astype(np.float32)[:, None]
    rois = torch.cat([torch.arange(n, dtype=torch.float32)[:, None], torch.from_numpy(boxes_np)], dim=1)
    probs = roi_align(torch.from_numpy(per), rois, (mask_size, mask_size), 1.0)[:, 0].numpy()
    out = np.zeros_like(mask)
    for (x0, y0, x1, y1), crop in paste_masks(probs, boxes_np, mask.shape):
        out[y0:y1, x0:x1] |= crop
    return out


def score_block(
    regime: str,
    frames: list[tuple[Path, np.ndarray, np.ndarray]],
    segment,
    min_area: int,
    ceiling: bool,
) -> BlockScore:
    inter = union = 0
    ious, void_t, void_p, lat, dets, gts = [], [], [], [], [], []
    tp = fp = fn = 0
    ceil_inter: dict[int, int] = {28: 0, 56: 0}
    ceil_union: dict[int, int] = {28: 0, 56: 0}
    ph_inter = ph_union = 0
    ph_void: list[float] = []
    for _, img, gt in frames:
        t0 = time.perf_counter()
        inst = segment(img)
        lat.append((time.perf_counter() - t0) * 1e3)
        pred = np.zeros_like(gt)
        for (x0, y0, x1, y1), crop in zip(inst.regions, inst.crops):
            pred[y0:y1, x0:x1] |= crop
        i, u = int((pred & gt).sum()), int((pred | gt).sum())
        inter, union = inter + i, union + u
        ious.append(i / u if u else 1.0)
        void_t.append(gt.mean())
        void_p.append(pred.mean())
        phase = getattr(inst, "phase", None)
        if phase is not None:
            ph = np.asarray(phase) > 0.5
            ph_inter, ph_union = ph_inter + int((ph & gt).sum()), ph_union + int((ph | gt).sum())
            ph_void.append(float(ph.mean()))
        labels, areas = components(gt)
        a, b, c = match_instances(inst.regions, inst.crops, inst.scores, labels, areas, min_area)
        tp, fp, fn = tp + a, fp + b, fn + c
        dets.append(len(inst))
        gts.append(int((areas[1:] >= min_area).sum()))
        if ceiling:
            for m in ceil_inter:
                c_mask = ceiling_union(gt, m)
                ceil_inter[m] += int((c_mask & gt).sum())
                ceil_union[m] += int((c_mask | gt).sum())
    p, r, f = prf(tp, fp, fn)
    s = BlockScore(
        regime=regime,
        frames=len(frames),
        union_iou=inter / max(union, 1),
        union_iou_mean=float(np.mean(ious)),
        void_true=float(np.mean(void_t)),
        void_pred=float(np.mean(void_p)),
        void_abs_err=float(np.mean(np.abs(np.subtract(void_p, void_t)))),
        precision=p,
        recall=r,
        f1=f,
        gt_instances_per_frame=float(np.mean(gts)),
        detections_per_frame=float(np.mean(dets)),
        latency_p50_ms=float(np.percentile(lat[1:] if len(lat) > 1 else lat, 50)),
    )
    if ceiling:
        s.ceiling = {f"union_iou_m{m}": ceil_inter[m] / max(ceil_union[m], 1) for m in ceil_inter}
    if ph_void:
        s.phase_union_iou = ph_inter / max(ph_union, 1)
        s.phase_void_pred = float(np.mean(ph_void))
        s.phase_void_abs_err = float(np.mean(np.abs(np.subtract(ph_void, void_t))))
    return s


GUARD = 10  # frames either side of a held-out block that are neither trained nor scored on


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def split_boiling(data: Path, out: Path, blocks: dict[str, tuple[int, int]], guard: int) -> tuple[int, int]:
    """Write the train and val folders, and the training frames of the isolated regime again on their own
    (``real-boiling-train-isolated``, to weight that sparse regime up); returns the train and val frame counts."""
    n_train = n_val = 0
    for img in sorted((data / "images").glob("*.png")):
        n = frame_number(img)
        held = any(a <= n <= b for a, b in blocks.values())
        near = any(a - guard <= n <= b + guard for a, b in blocks.values())
        if held:
            continue
        dest = out / ("real-boiling-val" if near else "real-boiling-train")
        _link(img, dest / "images" / img.name)
        _link(data / "masks" / img.name, dest / "masks" / img.name)
        if not near and n <= ISOLATED_LAST:
            _link(img, out / "real-boiling-train-isolated" / "images" / img.name)
            _link(data / "masks" / img.name, out / "real-boiling-train-isolated" / "masks" / img.name)
        n_val += near
        n_train += not near
    return n_train, n_val


def taylor_as_bubble(src: Path, out: Path) -> int:
    """Copy the Taylor train split with every category renamed ``bubble``; returns the image count."""
    coco = json.loads((src / "_annotations.coco.json").read_text())
    used = {a["category_id"] for a in coco["annotations"]}
    coco["categories"] = [dict(c, name="bubble") for c in coco["categories"] if c["id"] in used]
    for im in coco["images"]:
        _link(src / im["file_name"], out / im["file_name"])
    (out / "_annotations.coco.json").write_text(json.dumps(coco))
    return len(coco["images"])


def prepare(out: Path, data: Path, guard: int = GUARD) -> str:
    """Write ``out/real-boiling-train`` (and its isolated frames, ``-isolated``), ``out/real-boiling-val`` and
    ``out/taylor-train``; a summary line."""
    for name in ("real-boiling-train", "real-boiling-train-isolated", "real-boiling-val", "taylor-train"):
        shutil.rmtree(out / name, ignore_errors=True)
    n_train, n_val = split_boiling(data, out, DEFAULT_BLOCKS, guard)
    n_taylor = taylor_as_bubble(TAYLOR, out / "taylor-train")
    held = ", ".join(f"{k} {a}-{b}" for k, (a, b) in DEFAULT_BLOCKS.items())
    return (f"real boiling: {n_train} train, {n_val} val frames (held out: {held}, guard {guard}); "
            f"Taylor: {n_taylor} train images")


def markdown(scores: list[BlockScore], model: str, machine: str) -> str:
    lines = [
        f"Model: `{model}`. Machine: {machine}.",
        "",
        ("| regime (held-out block) | frames | union IoU | void fraction true / pred | abs. error | "
        "precision | recall | F1 | GT inst./frame | det./frame | p50 ms |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in scores:
        lines.append(
            f"| {s.regime} | {s.frames} | {s.union_iou:.3f} | {s.void_true:.3f} / {s.void_pred:.3f} | "
            f"{s.void_abs_err:.3f} | {s.precision:.3f} | {s.recall:.3f} | {s.f1:.3f} | "
            f"{s.gt_instances_per_frame:.0f} | {s.detections_per_frame:.0f} | {s.latency_p50_ms:.0f} |"
        )
    if any(s.phase_union_iou is not None for s in scores):
        lines += ["", "Phase map (the model's per-pixel output, thresholded at 0.5):", "",
                  "| regime | union IoU | void fraction true / pred | abs. error |", "|---|---|---|---|"]
        for s in scores:
            if s.phase_union_iou is not None:
                lines.append(f"| {s.regime} | {s.phase_union_iou:.3f} | {s.void_true:.3f} / {s.phase_void_pred:.3f} | "
                             f"{s.phase_void_abs_err:.3f} |")
    if any(s.ceiling for s in scores):
        lines += ["", "| regime | union IoU ceiling, 28x28 masks | 56x56 masks |", "|---|---|---|"]
        for s in scores:
            lines.append(f"| {s.regime} | {s.ceiling['union_iou_m28']:.3f} | {s.ceiling['union_iou_m56']:.3f} |")
    return "\n".join(lines) + "\n"


def parse_blocks(specs: list[str] | None) -> dict[str, tuple[int, int]]:
    if not specs:
        return dict(DEFAULT_BLOCKS)
    out = {}
    for spec in specs:
        name, _, rng = spec.partition("=")
        a, _, b = rng.partition("-")
        out[name] = (int(a), int(b))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=None, help="ONNX/engine artifact (default: the bundled model)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with images/ and masks/")
    ap.add_argument("--block", action="append", help="regime=first-last (frame numbers); repeatable")
    ap.add_argument("--min-area", type=int, default=8, help="smallest ground-truth component counted (px)")
    ap.add_argument("--conf", type=float, default=None, help="score threshold (default: the model's)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--paste", default="precise", help="mask paste: precise (runtime default) or torchvision")
    ap.add_argument("--ceiling", action="store_true", help="also the 28x28 / 56x56 mask ceiling (needs torch)")
    ap.add_argument("--prepare-training-data", type=Path, metavar="OUT",
                    help="only lay out the training data that excludes the blocks (and a guard band) in OUT")
    ap.add_argument("--md", type=Path, help="write the table here")
    ap.add_argument("--json", type=Path, help="write the scores here")
    args = ap.parse_args(argv)

    from maskrt.atomic import write_text
    from maskrt.runtime import Segmenter
    from maskrt.runtime.bench.sysinfo import cpu_model

    if not (args.data / "images").is_dir():
        print(f"{args.data}: no images/ folder; pass --data", file=sys.stderr)
        return 2
    if args.prepare_training_data:
        print(prepare(args.prepare_training_data, args.data))
        return 0
    seg = Segmenter(args.model, backend=args.backend, threads=args.threads, conf=args.conf, paste=args.paste)
    seg.warmup(2)
    scores = []
    for regime, (a, b) in parse_blocks(args.block).items():
        frames = load_block(args.data, a, b)
        s = score_block(f"{regime} ({a}-{b})", frames, seg, args.min_area, args.ceiling)
        scores.append(s)
        print(json.dumps(asdict(s)), flush=True)
    machine = f"{cpu_model()}, {seg.backend.name}"
    md = markdown(scores, str(seg.path.name), machine)
    print(md)
    if args.md:
        write_text(args.md, md)
    if args.json:
        write_text(args.json, json.dumps({"model": str(seg.path), "machine": machine,
                                          "blocks": [asdict(s) for s in scores]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
