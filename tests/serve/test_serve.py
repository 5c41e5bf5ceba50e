"""`maskrt serve` on loopback with the bundled model: metadata, parity of concurrent clients, restart, stop.

The server runs in the PyTriton environment (``maskrt serve --setup``, made here when missing), so these
tests skip only when Debian's ``/usr/bin/python3.11`` is absent and ``MASKRT_TRITON_PYTHON`` names no other.
One server serves the module; the last two tests kill it and restart it mid-stream, then stop it with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maskrt.errors import MaskrtError
from maskrt.export.parity import ParityReport, ParityRules, compare
from maskrt.export.scenes import synthetic_scenes
from maskrt.runtime import Segmenter
from maskrt.runtime.serve import env
from maskrt.runtime.serve.server import READY_LINE

pytest.importorskip("tritonclient.grpc", reason="the triton:// client needs tritonclient[grpc] (maskrt[triton])")
pytestmark = pytest.mark.timeout(240)

START_TIMEOUT_S = 90.0


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def group_gone(pgid: int, timeout_s: float) -> bool:
    """Whether every process of group ``pgid`` has exited within ``timeout_s``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def triton_env() -> Path:
    """The PyTriton interpreter (the venv is created when missing: about a minute, once)."""
    if not os.environ.get(env.PYTHON_VAR) and not env.BASE_PYTHON.is_file():
        pytest.skip(f"maskrt serve needs {env.BASE_PYTHON} (Debian's python3.11) for its PyTriton venv")
    try:
        return env.server_python()
    except MaskrtError:
        return env.setup()


class Server:
    """A ``maskrt serve`` process (in its own process group, so that a test can kill all of it at once)."""

    def __init__(self, ports: list[int], log: Path) -> None:
        self.grpc, self.http, self.metrics = ports
        self.log = log
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._checked = 0.0  # when answers() last asked the server

    def start(self) -> None:
        cmd = [sys.executable, "-m", "maskrt", "serve", "--host", "127.0.0.1", "--grpc-port", str(self.grpc),
               "--http-port", str(self.http), "--metrics-port", str(self.metrics), "--max-batch", "4"]
        self.lines = []
        with open(self.log, "a", encoding="utf-8") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
        ready = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line.rstrip())
                if line.startswith(READY_LINE):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        t0 = time.monotonic()
        while not ready.wait(0.2):
            if self.answers():  # serving already: on a restart the ready line has been seen to come late
                ready.wait(10.0)
                break
            if self.proc.poll() is not None or time.monotonic() - t0 > START_TIMEOUT_S:
                self.kill()
                tail = self.log.read_text(encoding="utf-8")[-2000:]
                pytest.fail(f"maskrt serve did not become ready (exit {self.proc.returncode}):\n{tail}")
        time.sleep(0.3)  # the URL lines follow the ready line

    def answers(self) -> bool:
        """Whether the model is ready on the gRPC port (checked at most once a second)."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return False
        self._checked = now
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException

        try:
            client = grpcclient.InferenceServerClient(f"127.0.0.1:{self.grpc}")
            try:
                return bool(client.is_model_ready("bubbles-lite"))
            finally:
                client.close()
        except InferenceServerException:  # not listening yet
            return False

    @property
    def url(self) -> str:
        return f"triton://127.0.0.1:{self.grpc}/bubbles-lite"

    def kill(self) -> None:
        """SIGKILL to the whole server (launcher, Python server, tritonserver, workers): a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture(scope="module")
def server(triton_env: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(free_ports(3), tmp_path_factory.mktemp("serve") / "server.log")
    srv.start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [s.image for s in synthetic_scenes(3, (480, 600), seed=11)]


def dets(inst: Any) -> dict[str, np.ndarray]:
    return {"boxes": inst.boxes, "scores": inst.scores, "labels": inst.class_ids + 1, "masks": inst.masks}


def test_ready_line_lists_the_model_url_and_metrics(server: Server) -> None:
    lines = [ln.strip() for ln in server.lines]
    assert server.url in lines
    assert f"metrics: http://127.0.0.1:{server.metrics}/metrics" in lines


def test_two_concurrent_clients_match_a_local_segmenter(server: Server, frames: list[np.ndarray]) -> None:
    with Segmenter(threads=1) as local:
        expected = [local(f) for f in frames]
        meta = local.meta
    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []

    def client(k: int) -> None:
        try:
            with Segmenter(server.url) as remote:
                assert remote.meta == meta  # classes, input size, thresholds: from the server's model config
                results[k] = [remote(f) for f in (frames if k == 0 else frames[::-1])]
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    rules = ParityRules()
    for k, got in results.items():
        order = expected if k == 0 else expected[::-1]
        report = ParityReport(rules, [compare(dets(e), dets(g), rules) for e, g in zip(order, got)])
        assert report.passed, report.failures()
        assert sum(im.matched for im in report.images) == sum(len(e) for e in expected) > 0
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics}/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    done = [ln for ln in metrics.splitlines() if ln.startswith("nv_inference_request_success{") and
            'model="bubbles-lite"' in ln]
    assert done and float(done[0].split()[-1]) >= 2 * len(frames)


def test_client_reconnects_when_the_server_is_killed_and_restarted(server: Server, frames: list[np.ndarray]) -> None:
    with Segmenter(server.url) as remote:
        before = len(remote(frames[0]))
        remote.backend.max_backoff_s = 2.0  # keep the test short: retry at least every 2 s
        server.kill()
        restarter = threading.Timer(1.0, server.start)
        restarter.start()
        t0 = time.monotonic()
        after = len(remote(frames[0]))  # blocks, retrying, until the new server answers
        restarter.join()
        assert after == before > 0
        assert remote.backend.stats["reconnects"] == 1 and remote.backend.stats["retries"] >= 1
        assert remote.backend.stats["outage_s"] <= time.monotonic() - t0 + 0.5


def test_sigterm_stops_the_server_cleanly_and_the_client_gives_up(server: Server, frames: list[np.ndarray]) -> None:
    assert server.proc is not None and server.proc.poll() is None  # the restarted server
    with Segmenter(server.url) as remote:
        remote.backend.max_failures, remote.backend.backoff_s = 2, 0.05
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0
        assert group_gone(server.proc.pid, 15.0)  # tritonserver, its Python stub and workers: all stopped
        with pytest.raises(MaskrtError) as err:
            remote(frames[0])
    text = str(err.value)
    assert text.startswith(server.url) and "gave up after 2 retries" in text and "\n" not in text
    assert remote.backend.stats["retries"] == 2
    with pytest.raises(MaskrtError, match="no Triton server answers"):
        Segmenter(server.url)
