"""Live sources as they really behave: pauses and drops in the timestamps, hostile servers, a camera not up yet.

Every server here is a local socket on 127.0.0.1 (a free port chosen by the system) that stops itself.
"""

from __future__ import annotations

import csv
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from typing_extensions import Self

import maskrt.runtime.stream as stream_pkg
from maskrt.cli import main
from maskrt.runtime.stream import sources
from maskrt.runtime.stream import spec as source_spec

BOUNDARY = b"maskrtframe"
MULTIPART = b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=maskrtframe\r\n\r\n"


class ScriptedServer:
    """Answers every connection on 127.0.0.1 with ``script(conn, server)`` in its own thread."""

    def __init__(
        self, script: Callable[[socket.socket, ScriptedServer], None], lifetime_s: float = 30.0
    ) -> None:
        self.script = script
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/video.mjpg"
        self.connections = 0
        self.t0 = time.monotonic()
        self.deadline = self.t0 + lifetime_s
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
        self.sock.close()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(2.0)
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            self.script(conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    def alive(self) -> bool:
        return not self.stopping.is_set() and time.monotonic() < self.deadline

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._thread.join(2.0)


def _jpeg_part(frame: np.ndarray) -> bytes:
    data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    head = b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data)
    return head + data + b"\r\n"


def _garbage(rng: np.random.Generator, n: int) -> bytes:
    """Random bytes with line breaks but never a multipart boundary."""
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes().replace(b"--", b"xx")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _video(path: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(path))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n, fps


@pytest.fixture()
def fast_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short open/read timeouts, so that a hostile server costs a test seconds, not minutes."""
    monkeypatch.setattr(sources, "OPEN_TIMEOUT_MS", 1500)
    monkeypatch.setattr(source_spec, "READ_TIMEOUT_MS", 1000)


@pytest.fixture()
def slow_segmenter(monkeypatch: pytest.MonkeyPatch, threshold_segmenter: type) -> None:
    """`maskrt run` with the thresholding segmenter at about 12 frames per second."""
    monkeypatch.setattr(stream_pkg, "load_segmenter", lambda *a, **k: threshold_segmenter(delay_s=0.08))


@pytest.mark.usefixtures("slow_segmenter")
def test_live_times_follow_the_wall_clock_through_a_pause_and_drops_are_counted(
    sequence: Any, tmp_path: Path
) -> None:
    """50 fps for 1 s, 2 s of silence on an open connection, 50 fps for 1 s, into a 12 fps segmenter."""
    frames = sequence.frames
    pause_s = 2.0

    def pausing(conn: socket.socket, server: ScriptedServer) -> None:
        if server.connections > 1:
            return  # the camera is gone after its one session
        conn.sendall(MULTIPART)
        for k in range(100):
            if k == 50:
                time.sleep(pause_s)
            conn.sendall(_jpeg_part(frames[k % len(frames)]))
            time.sleep(0.02)

    out = tmp_path / "out"
    with ScriptedServer(pausing) as server:
        code = main([
            "run", server.url, "--max-failures", "0", "--csv", str(out / "f.csv"), "--save", str(out / "v.mp4"),
            "--summary", str(out / "s.json"),
        ])  # fmt: skip
    assert code == 1  # the source was lost for good when the server hung up (everything is written)
    import json

    summary = json.loads((out / "s.json").read_text())
    rows = _rows(out / "f.csv")
    times = np.array([float(r["time_s"]) for r in rows])
    index = np.array([int(r["frame"]) for r in rows])
    dropped = np.array([int(r["dropped"]) for r in rows])
    assert summary["clock"] == "capture" and len(rows) == summary["processed"] >= 10
    # the pause is in the times: one step of about 2 s; in all, the times span the 3 s the server sent for
    steps = np.diff(times)
    assert (steps > 0).all()
    assert pause_s - 0.5 < steps.max() < pause_s + 1.0
    assert times[-1] - times[0] > 2.6
    # frames the segmenter could not keep up with are counted row by row
    assert (dropped == index - np.arange(len(rows))).all()
    assert dropped[-1] > 20 and dropped[-1] <= summary["dropped"]
    # the video lasts as long as the capture did (it was 100 frames at 50 fps before: 8 s of video shown in 2)
    n, fps = _video(out / "v.mp4")
    assert n >= 0.8 * len(rows)  # (a frame processed faster than the video's rate is shown by the next hold)
    assert n / fps == pytest.approx(times[-1] - times[0], abs=0.5)
    assert summary["video"]["timeline"].startswith("capture time")


def test_file_times_stay_the_source_position_and_the_physical_clock(
    image_folder: tuple[Path, Any], threshold_segmenter: type
) -> None:
    from maskrt.runtime.stream import Stream, StreamOptions

    folder, seq = image_folder
    s = Stream(threshold_segmenter(delay_s=0.01), str(folder), StreamOptions(fps=20))
    assert [r.stats["time_s"] for r in s] == pytest.approx([i / 20 for i in range(len(seq.frames))])
    fast = Stream(threshold_segmenter(), str(folder), StreamOptions(fps=20, fps_physical=5000))
    results = list(fast)
    assert [r.stats["time_s"] for r in results] == pytest.approx([i / 5000 for i in range(len(seq.frames))])
    assert {r.stats["dropped"] for r in results} == {0} and fast.summary["clock"] == "physical"


@pytest.mark.usefixtures("fast_timeouts", "slow_segmenter")
def test_multipart_then_garbage_is_retried_then_given_up_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`200 multipart/x-mixed-replace` and then random bytes forever: it used to hang `maskrt run` for good."""
    rng = np.random.default_rng(0)

    def garbage(conn: socket.socket, server: ScriptedServer) -> None:
        conn.sendall(MULTIPART)
        while server.alive():
            conn.sendall(_garbage(rng, 2000) + b"\r\n")
            time.sleep(0.005)

    t0 = time.monotonic()
    with ScriptedServer(garbage) as server:
        code = main(["run", server.url, "--max-failures", "1", "--csv", str(tmp_path / "f.csv")])
        connections = server.connections
    elapsed = time.monotonic() - t0
    text = capsys.readouterr()
    assert code == 1 and elapsed < 20
    assert connections >= 2  # connected, read garbage, reconnected once, gave up
    assert "Traceback" not in text.out + text.err
    lost = [ln for ln in (text.out + text.err).splitlines() if "no frames after 1 reopen attempts" in ln]
    assert lost and server.url in lost[0]
    assert (tmp_path / "f.csv").read_text().startswith("frame,time_s,dropped,count")  # header, no rows


@pytest.mark.usefixtures("fast_timeouts")
def test_raw_garbage_instead_of_http_gives_one_clean_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Binary junk instead of a status line: no BadStatusLine traceback, no junk on the terminal."""
    rng = np.random.default_rng(1)

    def junk(conn: socket.socket, server: ScriptedServer) -> None:
        conn.sendall(_garbage(rng, 3000) + b"\r\n\r\n")
        while server.alive():
            time.sleep(0.05)

    with ScriptedServer(junk) as server:
        code = main(["run", server.url, "--max-failures", "1", "--csv", str(tmp_path / "f.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [ln for ln in err if ln.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in "\n".join(err)
    assert server.url in errors[0] and "did not answer with HTTP" in errors[0]
    assert "gave up after 2 attempts" in errors[0] and errors[0].isascii() and errors[0].isprintable()
    assert not (tmp_path / "f.csv").exists()  # refused before any output was opened


@pytest.mark.usefixtures("fast_timeouts")
def test_mjpeg_reader_gives_up_on_a_trickle_within_its_read_timeout(sequence: Any) -> None:
    """Valid frames, then a boundary-less trickle: each read returns None within the read timeout."""
    from maskrt.runtime.stream.mjpeg import MjpegHttpSource

    rng = np.random.default_rng(2)

    def trickle(conn: socket.socket, server: ScriptedServer) -> None:
        conn.sendall(MULTIPART + _jpeg_part(sequence.frames[0]))
        while server.alive():
            conn.sendall(_garbage(rng, 50))
            time.sleep(0.01)

    with ScriptedServer(trickle) as server:
        src = MjpegHttpSource(sources.parse_source(server.url))
        first = src.read()
        t0 = time.monotonic()
        second = src.read()
        took = time.monotonic() - t0
        src.close()
    assert first is not None and first.shape == sequence.frames[0].shape
    assert second is None and 0.9 < took < 3.0


@pytest.mark.usefixtures("slow_segmenter")
def test_first_connection_is_retried_like_a_reconnect(
    sequence: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A camera that answers 503 for its first second: --max-failures 3 waits for it, 0 refuses at once."""

    def late(conn: socket.socket, server: ScriptedServer) -> None:
        if time.monotonic() - server.t0 < 1.0:
            conn.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            return
        conn.sendall(MULTIPART)
        for k in range(40):
            conn.sendall(_jpeg_part(sequence.frames[k % len(sequence.frames)]))
            time.sleep(0.02)

    with ScriptedServer(late) as server:
        assert main(["run", server.url, "--max-failures", "0", "--csv", str(tmp_path / "no.csv")]) == 2
    err = capsys.readouterr().err
    assert "could not" in err and server.url in err
    with ScriptedServer(late) as server:
        code = main(
            ["run", server.url, "--max-failures", "3", "--max-frames", "5", "--csv", str(tmp_path / "f.csv")]
        )
    assert code == 0
    assert len(_rows(tmp_path / "f.csv")) >= 1
