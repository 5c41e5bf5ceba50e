"""benchmarks/peers.py without the peers: our YOLO-seg post-processing on tiny fake outputs, the skip
messages for unusable peer files, the interleaved timing loop and the table with its ratios.

The real YOLO exports are not in the repository (Ultralytics is AGPL); a fake YOLO-seg ONNX with constant
outputs stands in for them where a file is needed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from maskrt.errors import MaskrtError

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def yolo():
    yield _load("peers_yolo")


@pytest.fixture(scope="module")
def peers(yolo):
    try:
        yield _load("peers")  # it puts benchmarks/ on sys.path to import peers_yolo
    finally:
        while str(BENCH) in sys.path:
            sys.path.remove(str(BENCH))


def raw_output() -> tuple[np.ndarray, np.ndarray]:
    """A YOLO11-style output: 2 classes, 2 mask coefficients, 9 anchors, 32x32 input, 8x8 prototypes."""
    anchors = np.zeros((9, 8), np.float32)  # cx, cy, w, h, score class 0, score class 1, coef 0, coef 1
    anchors[0] = (8, 12, 8, 8, 0.9, 0.0, 1, 0)  # kept, mask on
    anchors[1] = (9, 12, 8, 8, 0.8, 0.0, 1, 0)  # IoU 0.78 with anchor 0, same class: suppressed
    anchors[2] = (8, 12, 8, 8, 0.0, 0.7, 1, 0)  # same box, other class: kept (class-aware NMS)
    anchors[3] = (24, 20, 8, 8, 0.6, 0.0, 0, 1)  # kept, mask off
    anchors[4] = (16, 16, 4, 4, 0.1, 0.0, 1, 0)  # below the 0.25 threshold
    protos = np.stack([np.ones((8, 8), np.float32), -np.ones((8, 8), np.float32)])[None]
    return anchors.T[None].copy(), protos


def test_raw_layout_thresholds_nms_per_class_and_maps_boxes_to_the_frame(yolo):
    det, protos = raw_output()
    frame = np.zeros((8, 16, 3), np.uint8)  # letterboxed into 32x32: scale 2, 8 px grey above and below
    x, lb = yolo.peer_letterbox(frame, (32, 32))
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32
    assert (lb.scale, lb.pad_x, lb.pad_y) == (2.0, 0.0, 8.0)
    assert np.allclose(x[0, :, :8], 114 / 255) and np.allclose(x[0, :, 8:24], 0)
    d = yolo.peer_postprocess([protos, det], lb, (8, 16), (32, 32), "raw", n_classes=2)
    assert len(d) == 3
    assert np.allclose(d.scores, [0.9, 0.7, 0.6]) and d.classes.tolist() == [0, 1, 0]
    assert np.allclose(d.boxes[0], [2, 0, 6, 4]) and np.allclose(d.boxes[2], [10, 4, 14, 8])
    assert d.mask_boxes.tolist() == [[2, 0, 6, 4], [2, 0, 6, 4], [10, 4, 14, 8]]
    assert d.masks[0].shape == (4, 4) and d.masks[0].all()
    assert d.masks[2].shape == (4, 4) and not d.masks[2].any()
    # a forced count keeps the best whatever the threshold
    one = yolo.peer_postprocess([det, protos], lb, (8, 16), (32, 32), "raw", n_classes=2, n_dets=1)
    assert len(one) == 1 and np.isclose(one.scores[0], 0.9)
    # maskrt's boxes on the frame: as many detections, masks decoded inside those boxes
    ref = np.array([[0, 0, 4, 4], [8, 2, 14, 8]], np.float32)
    m = yolo.peer_postprocess([det, protos], lb, (8, 16), (32, 32), "raw", n_classes=2, reference_boxes=ref)
    assert np.allclose(m.boxes, ref) and m.mask_boxes.tolist() == [[0, 0, 4, 4], [8, 2, 14, 8]]
    assert np.allclose(m.scores, [0.9, 0.7]) and [k.shape for k in m.masks] == [(4, 4), (6, 6)]
    assert all(k.all() for k in m.masks)  # both best candidates have the all-on coefficients


def test_end2end_layout_keeps_overlapping_boxes_without_nms(yolo):
    rows = np.zeros((1, 4, 8), np.float32)  # x0, y0, x1, y1, score, class, coef 0, coef 1
    rows[0, 0] = (4, 4, 12, 12, 0.5, 0, 1, 0)
    rows[0, 1] = (4, 4, 12, 13, 0.8, 0, 1, 0)  # nearly the same box: an NMS-free model keeps both
    rows[0, 2] = (0, 0, 32, 32, 0.2, 1, 1, 0)  # below 0.25
    protos = np.ones((1, 2, 8, 8), np.float32)
    lb = yolo.Letterbox(2.0, 0.0, 0.0)
    d = yolo.peer_postprocess([rows, protos], lb, (16, 16), (32, 32), "end2end")
    assert np.allclose(d.scores, [0.8, 0.5])
    assert d.mask_boxes.tolist() == [[2, 2, 6, 7], [2, 2, 6, 6]]
    assert [m.shape for m in d.masks] == [(5, 4), (4, 4)]


def test_mask_edge_lands_on_the_right_frame_pixel(yolo):
    # logits x - 3.5 over the 8 prototype columns: zero at input x = 16, i.e. frame x = 8 at scale 2
    protos = np.broadcast_to(np.arange(8, dtype=np.float32) - 3.5, (8, 8))[None, None].copy()
    lb = yolo.Letterbox(2.0, 0.0, 0.0)
    masks, boxes = yolo.decode_masks(np.ones((1, 1), np.float32), protos[0], np.array([[0, 0, 32, 32]], np.float32),
                                     lb, (16, 16), (32, 32))
    assert boxes.tolist() == [[0, 0, 16, 16]]
    assert not masks[0][:, :8].any() and masks[0][:, 8:].all()


def fake_yolo_onnx(path: Path, det_shape: tuple[int, ...], proto_shape: tuple[int, ...] = (1, 2, 8, 8)) -> Path:
    """An ONNX file shaped like a YOLO-seg export (input 'images' [1, 3, 32, 32]) whose outputs are constants."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    det, protos = raw_output()
    det_value = det if det.shape == det_shape else np.zeros(det_shape, np.float32)
    nodes = [helper.make_node("Constant", [], ["output0"], value=numpy_helper.from_array(det_value)),
             helper.make_node("Constant", [], ["output1"],
                              value=numpy_helper.from_array(np.resize(protos, proto_shape).astype(np.float32)))]
    graph = helper.make_graph(
        nodes, "fake-yolo", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(det_shape)),
         helper.make_tensor_value_info("output1", TensorProto.FLOAT, list(proto_shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_usable_and_unusable_peer_files(peers, tmp_path):
    good = fake_yolo_onnx(tmp_path / "yolo11n-seg.onnx", (1, 8, 9))
    e2e = fake_yolo_onnx(tmp_path / "yolo26n-seg.onnx", (1, 300, 38), (1, 32, 8, 8))
    other = fake_yolo_onnx(tmp_path / "detector.onnx", (1, 5, 5))  # no mask coefficients: not a -seg export
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    missing = tmp_path / "yolo26n-seg-missing.onnx"
    specs, skipped = peers.open_peers([good, e2e, other, broken, missing])
    assert [(s.name, s.layout, s.n_classes, s.n_coeffs, s.input_hw) for s in specs] == [
        ("yolo11n-seg", "raw", 2, 2, (32, 32)), ("yolo26n-seg", "end2end", 0, 32, (32, 32))]
    assert len(skipped) == 3
    assert skipped[0].startswith(str(other)) and "not a YOLO segmentation export" in skipped[0]
    assert skipped[1].startswith(str(broken)) and "cannot read" in skipped[1]
    assert skipped[2].startswith(str(missing)) and "not found, skipped" in skipped[2]
    assert all("yolo export model=yolo26n-seg.pt format=onnx imgsz=640" in m for m in skipped)


def test_peer_contender_times_pre_infer_post_on_onnxruntime(peers, tmp_path):
    spec = peers.inspect_peer(fake_yolo_onnx(tmp_path / "yolo11n-seg.onnx", (1, 8, 9)))
    c = peers.peer_contender(spec, "onnxruntime", 1, post=True, dets=lambda _i: None, conf=0.25)
    stages, n = c.run(np.zeros((8, 16, 3), np.uint8), 0)
    assert set(stages) == {"preprocess", "infer", "postprocess"} and all(v >= 0 for v in stages.values())
    assert n == 3  # the three detections of raw_output() above the threshold
    ref = peers.peer_contender(spec, "onnxruntime", 1, post=True, conf=0.25,
                               dets=lambda _i: np.array([[0, 0, 2, 2], [4, 4, 6, 6]], np.float32))
    assert ref.run(np.zeros((8, 16, 3), np.uint8), 0)[1] == 2
    bare = peers.peer_contender(spec, "onnxruntime", 1, post=False, dets=lambda _i: None, conf=0.25)
    assert bare.run(np.zeros((8, 16, 3), np.uint8), 0)[1] == 0 and bare.whole_label == ""


def fake_contender(peers, model: str, backend: str, calls: list, infer_ms: float, whole: bool = True):
    def run(frame, index):
        calls.append((model, backend, index))
        return {"preprocess": 1.0, "infer": infer_ms, "postprocess": 2.0}, 7

    return peers.Contender(model, backend, run, "whole frame (test)" if whole else "")


def test_rows_in_turns_with_ratios_to_the_named_baseline(peers):
    calls: list = []
    cs = [fake_contender(peers, "bubbles-lite", "onnxruntime", calls, 150.0),
          fake_contender(peers, "yolo26n-seg", "onnxruntime", calls, 50.0, whole=False)]
    samples = peers.time_set(cs, [np.zeros((4, 4, 3), np.uint8)] * 2, iters=4, warmup=1)
    timed = calls[2:]  # after one warm-up call each
    assert [c[0] for c in timed] == ["bubbles-lite", "yolo26n-seg", "yolo26n-seg", "bubbles-lite"] * 2
    assert [c[2] for c in timed[::2]] == [0, 1, 0, 1]  # frames cycled
    rows = peers.set_rows(cs, samples)
    assert [(r["model"], r["what"]) for r in rows] == [
        ("bubbles-lite", "network"), ("bubbles-lite", "whole frame"), ("yolo26n-seg", "network")]
    assert rows[1]["latency"]["p50"] == pytest.approx(153.0) and rows[0]["instances_mean"] == 7
    base = peers.pick_baseline(rows, "yolo26n-seg/onnxruntime/network", "bubbles-lite")
    peers.add_ratios(rows, base)
    assert [round(r["ratio"], 2) for r in rows] == [3.0, 3.06, 1.0]
    # a baseline that was not timed falls back to the first peer's ONNX Runtime network, not maskrt's
    assert peers.pick_baseline(rows, "yolo99-seg/onnxruntime/network", "bubbles-lite") == base
    assert peers.pick_baseline(rows[:2], "x", "bubbles-lite") == "bubbles-lite/onnxruntime/network"
    with pytest.raises(MaskrtError, match="nothing was timed"):
        peers.pick_baseline([], "x", "bubbles-lite")

    system = {"cpu": "Test CPU", "cpu_threads_used": 2, "cpu_cores_available": 2, "gpus": [],
              "versions": {"onnxruntime": "1.0"}}
    doc = {"created": "now", "config": {"threads": 2, "maskrt_name": "bubbles-lite"}, "system": system, "skipped": ["/x/y.onnx: peer file not found"],
           "sets": [{"name": "real-dense", "frames": 2, "frame_size": "4x4", "source": "test", "iters": 4,
                     "baseline": base, "rows": rows}]}
    md = peers.markdown(doc)
    assert "Machine: Test CPU (2 of 2 cores) | onnxruntime 1.0" in md
    assert "ratio to `yolo26n-seg/onnxruntime/network` of the same run" in md
    assert "| bubbles-lite | onnxruntime | whole frame (test) | 7 | 153.0 | 153.0 | 3.06x |" in md
    assert "| yolo26n-seg | onnxruntime | network | 7 | 50.0 | 50.0 | 1.00x |" in md
    assert ("bubbles-lite whole frame on its best backend (onnxruntime): 153.0 ms, 3.06x "
            "`yolo26n-seg/onnxruntime/network` (target <= 1.00x: not met)") in md
    assert "- skipped: /x/y.onnx: peer file not found" in md


def test_peer_dets_option(peers):
    assert peers.parse_dets("match") == "match" and peers.parse_dets("120") == 120
    with pytest.raises(Exception, match="use match, conf or a count"):
        peers.parse_dets("0")
