"""Fixtures for the stream tests: synthetic moving-circle sequences with ground truth, a thresholding
segmenter with the Segmenter's stage interface, and an MJPEG-over-HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from typing_extensions import Self

SIZE = 160


@dataclass
class Sequence:
    """Frames of white discs moving on a dark background, with per-frame ground truth."""

    frames: list[np.ndarray]
    counts: list[int]
    void: list[float]
    centres: list[list[tuple[float, float, int]]]  # (x, y, object id) per frame
    fps: float = 20.0
    paths: dict[str, Path] = field(default_factory=dict)


def render_sequence(n_frames: int = 24, size: int = SIZE, seed: int = 0) -> Sequence:
    """Discs enter, move with constant velocity (some grow), and leave; ground truth from the drawn masks."""
    rng = np.random.default_rng(seed)
    objs = []
    for k in range(5):
        objs.append(
            {
                "id": k + 1,
                "x": float(rng.uniform(25, size - 25)),
                "y": float(rng.uniform(25, size - 25)),
                "vx": float(rng.uniform(-2.5, 2.5)),
                "vy": float(rng.uniform(-2.5, 2.5)),
                "r": float(rng.uniform(6, 10)),
                "dr": 0.15 if k % 2 == 0 else 0.0,
                "start": 0 if k < 3 else int(rng.integers(4, n_frames // 2)),
            }
        )
    seq = Sequence([], [], [], [])
    for f in range(n_frames):
        img = np.full((size, size, 3), 20, np.uint8)
        union = np.zeros((size, size), bool)
        count, cents = 0, []
        for o in objs:
            if f < o["start"]:
                continue
            t = f - o["start"]
            x, y, r = o["x"] + o["vx"] * t, o["y"] + o["vy"] * t, o["r"] + o["dr"] * t
            if not (r < x < size - r and r < y < size - r):
                continue
            m = np.zeros((size, size), np.uint8)
            cv2.circle(m, (round(x), round(y)), round(r), 1, -1)
            if (union & cv2.dilate(m, np.ones((5, 5), np.uint8)).astype(bool)).any():  # keep discs apart
                continue
            union |= m.astype(bool)
            count += 1
            cents.append((x, y, o["id"]))
        img[union] = 235
        seq.frames.append(img)
        seq.counts.append(count)
        seq.void.append(float(union.mean()))
        seq.centres.append(cents)
    return seq


class ThresholdSegmenter:
    """Bright blobs -> instances, through the same preprocess/infer/postprocess stages as Segmenter.

    ``delay_s`` makes inference slower than a source (for drop tests).
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.class_names = ["bubble"]
        self.delay_s = delay_s
        self.calls = 0

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        return frame, 1.0

    def infer(self, image: np.ndarray) -> dict[str, np.ndarray]:
        if self.delay_s:
            time.sleep(self.delay_s)
        self.calls += 1
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        n, labels = cv2.connectedComponents((grey > 127).astype(np.uint8))
        return {"labels": labels.astype(np.int32), "n": np.array([n - 1])}

    def postprocess(self, outputs: dict[str, np.ndarray], scale: float, frame_hw: tuple[int, int]) -> Any:
        from maskrt.runtime import Instances

        n = int(outputs["n"][0])
        labels = outputs["labels"]
        masks = np.stack([labels == i + 1 for i in range(n)]) if n else np.zeros((0, *frame_hw), bool)
        if n == 0:
            return Instances.empty(frame_hw, self.class_names)
        return Instances.from_masks(masks, np.full(n, 0.9, np.float32), None, self.class_names)


@pytest.fixture()
def sequence() -> Sequence:
    return render_sequence()


@pytest.fixture()
def video_file(tmp_path: Path, sequence: Sequence) -> tuple[Path, Sequence]:
    """The sequence as an MJPG .avi (near-lossless at quality 100, so thresholds stay exact)."""
    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), sequence.fps, (SIZE, SIZE))
    w.set(cv2.VIDEOWRITER_PROP_QUALITY, 100)
    for f in sequence.frames:
        w.write(f)
    w.release()
    return path, sequence


@pytest.fixture()
def image_folder(tmp_path: Path, sequence: Sequence) -> tuple[Path, Sequence]:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(sequence.frames):
        cv2.imwrite(str(folder / f"f{i:04d}.png"), f)
    return folder, sequence


class MjpegServer:
    """Serves ``frames`` as multipart/x-mixed-replace JPEG on 127.0.0.1 at ``fps``.

    Each connection gets at most ``per_connection`` frames, then the server hangs up (a camera dropping
    out); after ``max_connections`` connections it refuses by closing at once. The server stops itself
    after ``lifetime_s``.
    """

    def __init__(
        self,
        frames: list[np.ndarray],
        fps: float = 100.0,
        per_connection: int | None = None,
        max_connections: int = 100,
        lifetime_s: float = 30.0,
    ) -> None:
        self.jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes() for f in frames]
        self.fps, self.per_connection, self.max_connections = fps, per_connection, max_connections
        self.connections = 0
        self.sent = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.connections += 1
                if server.connections > server.max_connections:
                    self.send_error(503)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=maskrtframe")
                self.end_headers()
                limit = server.per_connection or 10**9
                deadline = time.monotonic() + lifetime_s
                i = 0
                while i < limit and time.monotonic() < deadline and not server.stopping.is_set():
                    data = server.jpegs[server.sent % len(server.jpegs)]
                    head = f"--maskrtframe\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                    try:
                        self.wfile.write(head.encode() + data + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    server.sent += 1
                    i += 1
                    time.sleep(1.0 / server.fps)

        self.stopping = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/stream.mjpg"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._timer = threading.Timer(lifetime_s, self.close)
        self._timer.daemon = True

    def __enter__(self) -> Self:
        self._thread.start()
        self._timer.start()
        return self

    def close(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        if not self.stopping.is_set():
            self.close()


@pytest.fixture()
def mjpeg_server() -> type[MjpegServer]:
    return MjpegServer


@pytest.fixture()
def threshold_segmenter() -> type[ThresholdSegmenter]:
    return ThresholdSegmenter


@pytest.fixture()
def render() -> Any:
    return render_sequence


def write_constant_model(
    path: Path, dets: list[tuple[tuple[float, float, float, float], float]], size: int = 128, phase_stride: int = 0
) -> Path:
    """A tiny ONNX artifact (per maskrt.artifact) whose outputs are constants: real runtime path, no torch.

    With ``phase_stride`` S it also has the ``phase`` output: each S x S cell's mean grey level / 255 of the
    input (bright discs on a dark background give their union, as a phase head would).
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from maskrt.artifact import ArtifactMeta

    d, m = 8, 28
    yy, xx = np.mgrid[0:m, 0:m] + 0.5
    disc = (np.hypot(xx - m / 2, yy - m / 2) < m / 2 - 1).astype(np.float32)
    outs = {
        "boxes": np.zeros((1, d, 4), np.float32),
        "scores": np.zeros((1, d), np.float32),
        "labels": np.zeros((1, d), np.int32),
        "masks": np.zeros((1, d, m, m), np.float32),
        "num_dets": np.array([len(dets)], np.int32),
    }
    for k, (box, score) in enumerate(dets):
        outs["boxes"][0, k], outs["scores"][0, k], outs["labels"][0, k], outs["masks"][0, k] = (
            box,
            score,
            1,
            disc,
        )
    nodes = [
        helper.make_node("Constant", [], [n], value=numpy_helper.from_array(a, n + "_value"))
        for n, a in outs.items()
    ]
    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32}
    values = [helper.make_tensor_value_info(n, types[a.dtype], list(a.shape)) for n, a in outs.items()]
    if phase_stride:
        s = phase_stride
        nodes += [
            helper.make_node("Constant", [], ["inv255"], value=numpy_helper.from_array(np.array(1 / 255, np.float32))),
            helper.make_node("Constant", [], ["axes"], value=numpy_helper.from_array(np.array([1], np.int64))),
            helper.make_node("Cast", ["images"], ["images_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["images_f"], ["grey"], axes=[3], keepdims=1),
            helper.make_node("Transpose", ["grey"], ["grey_nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("Mul", ["grey_nchw", "inv255"], ["unit"]),
            helper.make_node("AveragePool", ["unit"], ["pooled"], kernel_shape=[s, s], strides=[s, s]),
            helper.make_node("Squeeze", ["pooled", "axes"], ["phase"]),
        ]
        values.append(helper.make_tensor_value_info("phase", TensorProto.FLOAT, [1, size // s, size // s]))
    graph = helper.make_graph(
        nodes,
        "constant_maskrt",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, size, size, 3])],
        values,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ArtifactMeta(
        arch="constant", class_names=["bubble"], input_size=(size, size), mask_size=m, max_det=d,
        phase_stride=phase_stride,
    )
    helper.set_model_props(model, meta.to_props())
    onnx.save(model, str(path))
    return path


@pytest.fixture()
def constant_model(tmp_path: Path) -> Path:
    """Two fixed discs (boxes in model-input pixels of a 128x128 input)."""
    return write_constant_model(
        tmp_path / "constant.onnx", [((10, 10, 40, 40), 0.9), ((60, 60, 100, 100), 0.8)]
    )


@pytest.fixture()
def phase_model(tmp_path: Path) -> Path:
    """The two fixed discs of ``constant_model`` plus a ``phase`` output (stride 4) read from the input."""
    return write_constant_model(
        tmp_path / "phase.onnx", [((10, 10, 40, 40), 0.9), ((60, 60, 100, 100), 0.8)], phase_stride=4
    )
