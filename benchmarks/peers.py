"""Peers side by side: YOLO segmentation networks (YOLO26n-seg, YOLO11n-seg) timed next to maskrt in one run.

What a lab without an NVIDIA GPU would pick instead of maskrt is a YOLO segmentation model, so this
times both on the same frames, threads and CPU backends, interleaved frame by frame (the order
alternating) so that a changing load on a shared machine falls on every row alike:

* maskrt (the bundled ``bubbles-lite`` or ``--model``), through ``maskrt.runtime.Segmenter``: the network
  alone (its ``infer`` stage) and the whole frame (preprocess + infer + postprocess, masks pasted in
  frame pixels);
* each peer (``--peer FILE.onnx``, an Ultralytics ONNX export; Ultralytics itself is AGPL and never
  imported): the network alone on its letterboxed 640x640 float input, and the whole frame with our
  numpy/OpenCV post-processing (NMS for YOLO11, none for the NMS-free YOLO26, masks decoded from the
  prototypes inside each box): ``benchmarks/peers_yolo.py``. A peer file that is missing or not a
  YOLO-seg export is skipped with a message;
* backends: ONNX Runtime CPU always, OpenVINO CPU when ``openvino`` is importable (FP32 for every model:
  maskrt's OpenVINO backend runs an FP32 artifact in FP32, and so are the peers here).

Frames: the real bottom-view boiling frames (``tests/data/boiling-bottom-videosam``, or ``--real`` with
``images/`` + ``masks/``), split into isolated and dense by their vapour fraction, and synthetic
``boiling-bottom`` scenes of each regime (``maskrt synth --scene boiling-bottom --regime ...``). Each set
is its own table; every row's ratio is to the baseline (``--baseline``, default YOLO26n-seg's network on
ONNX Runtime) measured on the same set in the same run.

    python benchmarks/peers.py --peer /work/peers/yolo26n-seg.onnx --peer /work/peers/yolo11n-seg.onnx
    python benchmarks/peers.py --peer ... --quick            # a smoke run
    python benchmarks/peers.py --peer ... --sets real-dense synth-dense --iters 20 --peer-dets 300

Writes ``benchmarks/results/peers.json`` and ``peers.md`` (``--out``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script or loaded by a test: peers_yolo sits beside this file
    sys.path.insert(0, str(HERE))

from peers_yolo import PeerSpec, inspect_peer, peer_letterbox, peer_postprocess

from maskrt.atomic import write_text
from maskrt.errors import MaskrtError
from maskrt.runtime.bench.stats import latency_stats
from maskrt.runtime.bench.sysinfo import describe, system_info

log = logging.getLogger("peers")

RESULTS = HERE / "results"
REAL_DEFAULT = HERE.parent / "tests" / "data" / "boiling-bottom-videosam"
SETS = ("real-isolated", "real-dense", "synth-isolated", "synth-dense")
DENSE_VOID = 0.2
"""A real frame whose mask covers more than this fraction is dense (isolated frames: 3-5 %, dense 45-53 %)."""
NETWORK, WHOLE = "network", "whole frame"
DEFAULT_BASELINE = "yolo26n-seg/onnxruntime/network"


# -- frames ---------------------------------------------------------------------------------------------
@dataclass
class FrameSet:
    """Frames of one kind (real or synthetic, isolated or dense) and where they came from."""

    name: str
    frames: list[np.ndarray]
    source: str


def real_sets(folder: Path, limit: int) -> dict[str, FrameSet]:
    """Real frames of ``folder`` (``images/`` + ``masks/``), split by vapour fraction into isolated and dense.

    Raises:
        MaskrtError: the folder holds no ``images/`` with a readable image.
    """
    images = folder / "images"
    paths = sorted(images.glob("*.png")) + sorted(images.glob("*.jpg")) if images.is_dir() else []
    out: dict[str, list[np.ndarray]] = {"real-isolated": [], "real-dense": []}
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(folder / "masks" / p.name), cv2.IMREAD_GRAYSCALE)
        if img is None:
            continue
        # without its mask, the bright (vapour) share of the frame tells the regime
        void = float((mask > 127).mean()) if mask is not None else float((img[:, :, 0] > 200).mean())
        key = "real-dense" if void > DENSE_VOID else "real-isolated"
        if len(out[key]) < limit:
            out[key].append(img)
    if not any(out.values()):
        raise MaskrtError("no readable image in images/; pass --real a folder with images/ (+ masks/)", path=folder)
    return {k: FrameSet(k, v, str(folder)) for k, v in out.items() if v}


def synth_sets(count: int, size: int, seed: int) -> dict[str, FrameSet]:
    """``count`` synthetic ``boiling-bottom`` scenes per regime, as ``maskrt synth`` draws them."""
    from maskrt.train.synth import render_image  # numpy + OpenCV only: no torch is imported

    out = {}
    for regime in ("isolated", "dense"):
        frames = [render_image(i, size, "boiling-bottom", seed, regime=regime)[1].image for i in range(count)]
        out[f"synth-{regime}"] = FrameSet(f"synth-{regime}", frames, f"maskrt synth boiling-bottom {regime} {size}px")
    return out


# -- what is timed ----------------------------------------------------------------------------------------
Stages = dict[str, float]


@dataclass
class Contender:
    """One model on one backend: ``run(frame, index)`` -> (stage times in ms, detections)."""

    model: str
    backend: str
    run: Callable[[np.ndarray, int], tuple[Stages, int]]
    whole_label: str
    close: Callable[[], None] = lambda: None
    boxes: Callable[[], np.ndarray] = lambda: np.zeros((0, 4), np.float32)  # the last frame's boxes


def maskrt_contender(model: Path | None, backend: str, threads: int) -> Contender:
    """maskrt's model through ``Segmenter`` (idle threads do not spin: other rows share the cores)."""
    from maskrt.runtime import Segmenter

    seg = Segmenter(model, backend=backend, device="cpu", threads=threads, spin=False)
    last: list[np.ndarray] = [np.zeros((0, 4), np.float32)]

    def run(frame: np.ndarray, _index: int) -> tuple[Stages, int]:
        inst = seg(frame)
        last[0] = inst.boxes
        return dict(seg.timings), len(inst)

    return Contender(seg.path.stem, backend, run, "whole frame (Segmenter: pre + infer + post)", seg.close,
                     lambda: last[0])


def open_peer_network(spec: PeerSpec, backend: str, threads: int) -> tuple[Callable[[np.ndarray], list[np.ndarray]],
                                                                          Callable[[], None]]:
    """``infer(x) -> [outputs]`` for a peer's ONNX file on ONNX Runtime or OpenVINO (CPU, FP32, no spinning)."""
    if backend == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(spec.path), sess_options=opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return (lambda x: sess.run(None, {name: x})), lambda: None
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    config = {hints.performance_mode: hints.PerformanceMode.LATENCY, hints.inference_precision: ov.Type.f32,
              props.inference_num_threads: threads, hints.enable_cpu_pinning: False}
    compiled = ov.Core().compile_model(str(spec.path), "CPU", config)
    request = compiled.create_infer_request()
    outputs = list(compiled.outputs)

    def infer(x: np.ndarray) -> list[np.ndarray]:
        res = request.infer({0: x})
        return [np.asarray(res[o]) for o in outputs]

    return infer, lambda: None


def peer_contender(
    spec: PeerSpec,
    backend: str,
    threads: int,
    post: bool,
    dets: Callable[[int], int | np.ndarray | None],
    conf: float,
) -> Contender:
    """A YOLO-seg peer: letterbox + network (+ our numpy/OpenCV post-processing when ``post``).

    ``dets(frame index)`` tells the post-processing what to keep on that frame: ``None`` (scores above
    ``conf``), a count (the best that many), or boxes in frame pixels (as many, masks decoded inside them).
    """
    infer, close = open_peer_network(spec, backend, threads)

    def run(frame: np.ndarray, index: int) -> tuple[Stages, int]:
        t0 = time.perf_counter()
        x, lb = peer_letterbox(frame, spec.input_hw)
        t1 = time.perf_counter()
        outputs = infer(x)
        t2 = time.perf_counter()
        n = 0
        if post:
            want = dets(index)
            ref = want if isinstance(want, np.ndarray) else None
            count = want if isinstance(want, int) else None
            d = peer_postprocess(outputs, lb, frame.shape[:2], spec.input_hw, spec.layout, spec.n_classes,
                                 conf=conf, n_dets=count, reference_boxes=ref)
            n = len(d)
        t3 = time.perf_counter()
        return {"preprocess": (t1 - t0) * 1e3, "infer": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3}, n

    what = "NMS + masks" if spec.layout == "raw" else "masks, NMS-free"
    label = f"whole frame (letterbox + infer + our numpy post: {what})" if post else ""
    return Contender(spec.name, backend, run, label, close)


# -- timing -----------------------------------------------------------------------------------------------
@dataclass
class Samples:
    """Per-frame times of one contender on one set."""

    network: list[float] = field(default_factory=list)
    whole: list[float] = field(default_factory=list)
    instances: list[int] = field(default_factory=list)


def time_set(contenders: Sequence[Contender], frames: Sequence[np.ndarray], iters: int, warmup: int) -> list[Samples]:
    """Time every contender on ``iters`` frames (cycling through ``frames``), in turns, the order alternating."""
    for c in contenders:
        for i in range(warmup):
            c.run(frames[i % len(frames)], i % len(frames))
    samples = [Samples() for _ in contenders]
    order = list(range(len(contenders)))
    for it in range(iters):
        k = it % len(frames)
        for j in order if it % 2 == 0 else order[::-1]:
            stages, n = contenders[j].run(frames[k], k)
            samples[j].network.append(stages["infer"])
            samples[j].whole.append(sum(stages.values()))
            samples[j].instances.append(n)
    return samples


def set_rows(contenders: Sequence[Contender], samples: Sequence[Samples]) -> list[dict[str, Any]]:
    """Rows of one set: each contender's network and (when it has one) whole-frame latency statistics."""
    rows = []
    for c, s in zip(contenders, samples):
        inst = float(np.mean(s.instances)) if s.instances else 0.0
        rows.append({"model": c.model, "backend": c.backend, "what": NETWORK, "label": NETWORK,
                     "instances_mean": inst, "latency": latency_stats(s.network).to_dict()})
        if c.whole_label:
            rows.append({"model": c.model, "backend": c.backend, "what": WHOLE, "label": c.whole_label,
                         "instances_mean": inst, "latency": latency_stats(s.whole).to_dict()})
    return rows


# -- baseline, table, document ----------------------------------------------------------------------------
def row_key(row: dict[str, Any]) -> str:
    """``model/backend/what``, the name a ``--baseline`` gives."""
    return f"{row['model']}/{row['backend']}/{row['what']}"


def pick_baseline(rows: Sequence[dict[str, Any]], wanted: str, maskrt_model: str) -> str:
    """The baseline row's key: ``wanted`` when present, else the first peer's ONNX Runtime network, else maskrt's.

    Raises:
        MaskrtError: no row at all.
    """
    keys = [row_key(r) for r in rows]
    if not keys:
        raise MaskrtError("nothing was timed, so there is no baseline; check the models and --sets")
    if wanted in keys:
        return wanted
    ort_net = [row_key(r) for r in rows if r["backend"] == "onnxruntime" and r["what"] == NETWORK]
    peers = [k for k in ort_net if not k.startswith(f"{maskrt_model}/")]
    picked = (peers or ort_net or keys)[0]
    log.info("baseline %s is not among the rows; ratios are to %s", wanted, picked)
    return picked


def add_ratios(rows: list[dict[str, Any]], baseline: str) -> None:
    """Each row's ``ratio``: its p50 over the baseline's p50 in the same set (above 1: slower than the baseline)."""
    base = next(r for r in rows if row_key(r) == baseline)["latency"]["p50"]
    for r in rows:
        r["ratio"] = r["latency"]["p50"] / base if base > 0 else None


def markdown(doc: dict[str, Any]) -> str:
    """The run as Markdown: the machine, then one table per frame set, then what was skipped."""
    lines = [f"Peers side by side, {doc['created']}, {doc['config']['threads']} threads, rows timed in turns",
             "", f"Machine: {describe(doc['system'])}", ""]
    for s in doc["sets"]:
        caption = (f"**{s['name']}** ({len_frames(s)}; {s['iters']} timed frames per row; ratio to "
                   f"`{s['baseline']}` of the same run)")
        lines += [caption, "",
                  "| model | backend | timed | inst. | p50 ms | p90 ms | x baseline |", "|---|---|---|---|---|---|---|"]
        for r in s["rows"]:
            lat, ratio = r["latency"], r.get("ratio")
            lines.append(f"| {r['model']} | {r['backend']} | {r['label']} | {r['instances_mean']:.0f} | "
                         f"{lat['p50']:.1f} | {lat['p90']:.1f} | {'-' if ratio is None else f'{ratio:.2f}x'} |")
        lines.append("")
        target = target_line(s["rows"], doc["config"].get("maskrt_name", ""), s["baseline"])
        if target:
            lines += [target, ""]
    for msg in doc["skipped"]:
        lines.append(f"- skipped: {msg}")
    return "\n".join(lines).rstrip() + "\n"


def target_line(rows: Sequence[dict[str, Any]], maskrt_name: str, baseline: str) -> str:
    """Issue 19's target: maskrt's whole frame on its best CPU backend against the baseline (at or below 1x)."""
    whole = [r for r in rows if r["model"] == maskrt_name and r["what"] == WHOLE]
    if not whole or baseline.startswith(f"{maskrt_name}/"):
        return ""
    best = min(whole, key=lambda r: r["latency"]["p50"])
    ratio = best.get("ratio")
    verdict = "" if ratio is None else (" (target <= 1.00x: met)" if ratio <= 1 else " (target <= 1.00x: not met)")
    return (f"{maskrt_name} whole frame on its best backend ({best['backend']}): {best['latency']['p50']:.1f} ms, "
            f"{'-' if ratio is None else f'{ratio:.2f}x'} `{baseline}`{verdict}")


def len_frames(s: dict[str, Any]) -> str:
    """'3 frames, 256x256, from ...' for a set's caption."""
    return f"{s['frames']} frames, {s['frame_size']}, {s['source']}"


# -- main -------------------------------------------------------------------------------------------------
def parse_dets(value: str) -> str | int:
    """``--peer-dets``: ``match``, ``conf`` or a count."""
    if value in ("match", "conf"):
        return value
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 1:
        raise argparse.ArgumentTypeError(f"--peer-dets {value!r}: use match, conf or a count >= 1")
    return n


def open_peers(paths: Sequence[Path]) -> tuple[list[PeerSpec], list[str]]:
    """The usable peer files, and one message per skipped one (missing, unreadable, not YOLO-seg)."""
    specs, skipped = [], []
    for p in paths:
        try:
            specs.append(inspect_peer(p))
        except MaskrtError as exc:
            skipped.append(str(exc))
    return specs, skipped


def cpu_backends() -> list[str]:
    """ONNX Runtime always; OpenVINO when it is importable."""
    return ["onnxruntime"] + (["openvino"] if importlib.util.find_spec("openvino") else [])


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", type=Path, action="append", default=[], help="a YOLO-seg ONNX export (repeatable)")
    p.add_argument("--model", type=Path, default=None, help="maskrt model (default: the bundled bubbles-lite)")
    p.add_argument("--also-model", type=Path, action="append", default=[],
                   help="another maskrt model timed in the same turns, e.g. its INT8 export (repeatable)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", nargs="+", choices=("onnxruntime", "openvino"), default=None,
                   help="CPU backends (default: onnxruntime, and openvino when installed)")
    p.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS))
    p.add_argument("--real", type=Path, default=REAL_DEFAULT, help="real frames: a folder with images/ (+ masks/)")
    p.add_argument("--real-limit", type=int, default=8, help="real frames per regime")
    p.add_argument("--synth", type=int, default=3, help="synthetic scenes per regime")
    p.add_argument("--synth-size", type=int, default=256, help="synthetic scene side (the real frames are 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iters", type=int, default=12, help="timed frames per row and set")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-peer-post", action="store_true", help="time the peers' network only")
    p.add_argument("--peer-dets", type=parse_dets, default="match",
                   help="what the peers' post-processing keeps per frame: match (the boxes maskrt found on that "
                        "frame: random weights predict neither real scores nor real box sizes), conf (scores "
                        "above --peer-conf: trained peers), or a count (the best that many, their own boxes)")
    p.add_argument("--peer-conf", type=float, default=0.25)
    p.add_argument("--baseline", default=DEFAULT_BASELINE, help="model/backend/what of the ratio's baseline")
    p.add_argument("--quick", action="store_true", help="3 timed frames, 1 warm-up, 1 synthetic scene per regime")
    p.add_argument("--out", type=Path, default=RESULTS / "peers.json", help="JSON path (the .md goes beside it)")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time everything the arguments name; the results document."""
    if args.quick:
        args.iters, args.warmup, args.synth, args.real_limit = 3, 1, 1, min(args.real_limit, 2)
    specs, skipped = open_peers(args.peer)
    for msg in skipped:
        log.warning("%s", msg)
    backends = args.backend or cpu_backends()
    sets: dict[str, FrameSet] = {}
    if any(s.startswith("real") for s in args.sets):
        sets.update(real_sets(args.real, args.real_limit))
    if any(s.startswith("synth") for s in args.sets):
        sets.update(synth_sets(args.synth, args.synth_size, args.seed))
    chosen = [sets[s] for s in args.sets if s in sets]
    missing = [s for s in args.sets if s not in sets]
    skipped += [f"frame set {s}: no such frame in {args.real}" for s in missing]

    maskrt = [maskrt_contender(m, b, args.threads) for m in [args.model, *args.also_model] for b in backends]
    found: dict[int, np.ndarray] = {}  # maskrt's boxes per frame of the current set
    fixed = None if args.peer_dets in ("match", "conf") else int(args.peer_dets)

    def dets(index: int) -> int | np.ndarray | None:
        if args.peer_dets == "match":
            return found.get(index, np.zeros((0, 4), np.float32))
        return fixed

    peers = []
    for spec in specs:
        for b in backends:
            try:
                peers.append(peer_contender(spec, b, args.threads, not args.no_peer_post, dets, args.peer_conf))
            except Exception as exc:  # noqa: BLE001  (either runtime refusing a graph raises its own types)
                first = str(exc).strip().splitlines()
                skipped.append(f"{spec.path}: {b} cannot run this peer ({first[-1][:200] if first else exc!r}), "
                               "row skipped")
                log.warning("%s", skipped[-1])
    contenders = maskrt + peers
    doc_sets = []
    for fs in chosen:
        log.info("%s: %d frames, %d rows", fs.name, len(fs.frames), len(contenders))
        found.clear()
        for k, f in enumerate(fs.frames):  # maskrt's detections per frame, for --peer-dets match (a warm-up too)
            maskrt[0].run(f, k)
            found[k] = maskrt[0].boxes().copy()
        rows = set_rows(contenders, time_set(contenders, fs.frames, args.iters, args.warmup))
        baseline = pick_baseline(rows, args.baseline, maskrt[0].model)
        add_ratios(rows, baseline)
        h, w = fs.frames[0].shape[:2]
        doc_sets.append({"name": fs.name, "frames": len(fs.frames), "frame_size": f"{w}x{h}", "source": fs.source,
                         "iters": args.iters, "baseline": baseline, "rows": rows})
    for c in contenders:
        c.close()
    return {
        "benchmark": "peers",
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "system": system_info(args.threads),
        "config": {"threads": args.threads, "backends": backends, "model": str(args.model or "bundled"),
                   "also_models": [str(m) for m in args.also_model],
                   "maskrt_name": maskrt[0].model if maskrt else "",
                   "peers": [{"name": s.name, "path": str(s.path), "layout": s.layout, "input": list(s.input_hw)}
                             for s in specs],
                   "iters": args.iters, "warmup": args.warmup, "peer_post": not args.no_peer_post,
                   "peer_dets": args.peer_dets, "peer_conf": args.peer_conf, "interleaved": True},
        "sets": doc_sets,
        "skipped": skipped,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the Markdown, write the JSON and the Markdown; 2 on a user error."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = build_parser().parse_args(argv)
    try:
        doc = run(args)
        text = markdown(doc)
        write_text(args.out, json.dumps(doc, indent=2) + "\n")
        write_text(args.out.with_suffix(".md"), text)
    except MaskrtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(text)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
