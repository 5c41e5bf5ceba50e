"""`maskrt serve`: run Triton Inference Server on this machine (PyTriton) for several cameras and clients."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from maskrt.cli.app import app
from maskrt.errors import MaskrtError
from maskrt.runtime.backends import BACKEND_HELP, DEVICE_HELP, parse_backend
from maskrt.runtime.backends.formats import MODEL_SUFFIXES


def server_command(python: Path, models: list[Path], grpc_port: int, http_port: int, metrics_port: int,
                   max_batch: int, queue_delay_us: int, backend: str, device: str, threads: int | None,
                   host: str) -> list[str]:
    """The server process's command line (run in the PyTriton environment)."""
    cmd = [str(python), "-m", "maskrt.runtime.serve.server", *(str(m.resolve()) for m in models),
           "--grpc-port", str(grpc_port), "--http-port", str(http_port), "--metrics-port", str(metrics_port),
           "--max-batch", str(max_batch), "--queue-delay-us", str(queue_delay_us), "--backend", backend,
           "--device", device, "--host", host]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    return cmd


@app.command()
def serve(
    models: Annotated[list[Path] | None, typer.Argument(
        help="Model artifacts (.onnx/.engine) to serve, each named after its file stem; default: the bundled "
        "model.",
        show_default=False,
    )] = None,
    grpc_port: Annotated[int, typer.Option(
        "--grpc-port",
        help="gRPC port (clients: triton://HOST:PORT/MODEL).",
    )] = 8001,
    http_port: Annotated[int, typer.Option(
        "--http-port",
        help="HTTP/REST port (KServe v2 protocol).",
    )] = 8000,
    metrics_port: Annotated[int, typer.Option(
        "--metrics-port",
        help="Prometheus metrics port (/metrics).",
    )] = 8002,
    max_batch: Annotated[int, typer.Option(
        "--max-batch",
        help="Largest batch the dynamic batcher gathers from clients.",
    )] = 8,
    queue_delay_us: Annotated[int, typer.Option(
        "--queue-delay-us",
        help="How long the batcher waits to fill a batch.",
    )] = 2000,
    backend: Annotated[str, typer.Option("--backend", "-b", help=BACKEND_HELP)] = "auto",
    device: Annotated[str, typer.Option("--device", help=DEVICE_HELP)] = "auto",
    threads: Annotated[int | None, typer.Option(
        "--threads",
        help="CPU inference threads (default: all cores).",
    )] = None,
    host: Annotated[str, typer.Option(
        "--host",
        help="Address to listen on (127.0.0.1: this machine only).",
    )] = "0.0.0.0",
    setup: Annotated[bool, typer.Option(
        "--setup",
        help="Create or update the PyTriton environment, then exit.",
    )] = False,
) -> None:
    """Serve models on Triton Inference Server (PyTriton), with dynamic batching and Prometheus metrics.

    Clients use `triton://HOST:GRPC_PORT/MODEL` as the model of predict, run and bench, or
    `Segmenter("triton://...")`. PyTriton runs in an environment of its own (numpy<2, Debian's python3.11):
    `maskrt serve --setup` makes it in ~/.cache/maskrt/triton-venv, or MASKRT_TRITON_PYTHON names one.
    Ctrl-C or SIGTERM stops the server cleanly.
    """
    from maskrt.runtime.segmenter import resolve_model
    from maskrt.runtime.serve import env

    if setup:
        python = env.setup()
        typer.echo(f"PyTriton environment ready: {python}")
        return
    parse_backend(backend, device)  # the one backend vocabulary, checked before a server starts
    ports = {"--grpc-port": grpc_port, "--http-port": http_port, "--metrics-port": metrics_port}
    for opt, port in ports.items():
        if not 1 <= port <= 65535:
            raise MaskrtError(f"{opt} {port} is not a TCP port; pass 1..65535")
    if len(set(ports.values())) != len(ports):
        raise MaskrtError("--grpc-port, --http-port and --metrics-port must differ")
    if not 1 <= max_batch <= 1024:
        raise MaskrtError(f"--max-batch {max_batch}; pass 1..1024")
    paths = [resolve_model(m) for m in (models or [None])]
    for p in paths:
        if p.suffix.lower() not in MODEL_SUFFIXES:
            raise MaskrtError("maskrt serve serves .onnx or .engine artifacts (a triton:// model is already served)",
                              path=p)
    python = env.server_python()
    proc = subprocess.Popen(server_command(python, paths, grpc_port, http_port, metrics_port, max_batch,
                                           queue_delay_us, backend, device, threads, host))

    def forward(signum: int, frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # Ctrl-C reaches the server too (same process group): wait for it
                forward(signal.SIGINT, None)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code == 2:  # a user error, which the server has already printed as one line
        raise typer.Exit(2)
    if code not in (0, -signal.SIGINT, -signal.SIGTERM):
        raise MaskrtError(f"the Triton server stopped with exit code {code} (its log is above)")
