"""Several camera streams against one Triton server vs the same streams each running a local Segmenter (issue 21).

For 1, 2 and 4 concurrent streams (threads, each with its own ``Segmenter``), every stream segments the same
synthetic frames one after another; the script reports the total FPS of all streams and each stream's
per-frame latency (preprocess + inference + postprocess, p50/p90), for:

- ``local``: each stream runs the model itself (ONNX Runtime, ``cores / streams`` threads each);
- ``triton``: each stream is a ``triton://`` client of one ``maskrt serve`` (PyTriton, dynamic batching up to
  ``--max-batch``) started here on free loopback ports, or of ``--url`` when given.

Both modes share the machine's cores with whatever else runs on it, so compare them within one run (the
ratios), not across machines. Run: ``python benchmarks/triton_scaling.py [--frames 8] [--streams 1,2,4]``;
writes ``benchmarks/results/triton_scaling.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from maskrt.atomic import write_text
from maskrt.export.scenes import synthetic_scenes
from maskrt.runtime import Segmenter
from maskrt.runtime.bench import system_info
from maskrt.runtime.serve.server import READY_LINE

RESULTS = Path(__file__).resolve().parent / "results"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def start_server(max_batch: int, model: Path | None, log: Path) -> tuple[subprocess.Popen[str], str]:
    """``maskrt serve`` on free loopback ports; returns the process and the model URL once it is ready."""
    grpc, http, metrics = free_ports(3)
    cmd = [sys.executable, "-m", "maskrt", "serve", *([str(model)] if model else []), "--host", "127.0.0.1",
           "--grpc-port", str(grpc), "--http-port", str(http), "--metrics-port", str(metrics),
           "--max-batch", str(max_batch)]
    with open(log, "w", encoding="utf-8") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(READY_LINE):
            url = next(proc.stdout).strip()
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
            return proc, url
    raise SystemExit(f"maskrt serve did not start; see {log}")


def run_streams(n: int, open_seg: Any, frames: list[np.ndarray], per_stream: int) -> dict[str, Any]:
    """``n`` threads, each opening its segmenter and segmenting ``per_stream`` frames; FPS and latencies."""
    latencies: list[list[float]] = [[] for _ in range(n)]
    counts = [0] * n
    barrier = threading.Barrier(n + 1)
    errors: list[BaseException] = []

    def stream(k: int) -> None:
        try:
            seg = open_seg(n)
            seg(frames[0])  # warm-up, untimed
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()
            return
        try:
            barrier.wait()
            for i in range(per_stream):
                t0 = time.perf_counter()
                inst = seg(frames[(i + k) % len(frames)])
                latencies[k].append((time.perf_counter() - t0) * 1e3)
                counts[k] += len(inst)
        finally:
            seg.close()

    threads = [threading.Thread(target=stream, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        raise SystemExit(f"a stream failed to start: {errors[0] if errors else '?'}") from None
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    every = np.concatenate([np.asarray(x) for x in latencies])
    return {"streams": n, "frames": int(every.size), "wall_s": round(wall, 3), "total_fps": round(every.size / wall, 2),
            "p50_ms": round(float(np.percentile(every, 50)), 1), "p90_ms": round(float(np.percentile(every, 90)), 1),
            "per_stream_p50_ms": [round(float(np.percentile(x, 50)), 1) for x in latencies],
            "instances": counts}


def to_markdown(rows: list[dict[str, Any]], info: str) -> str:
    header = ("| streams | local FPS (total) | local latency p50 / p90 ms | Triton FPS (total) | "
              "Triton latency p50 / p90 ms | Triton / local FPS |")
    lines = [info, "", header, "|---|---|---|---|---|---|"]
    by = {(r["mode"], r["streams"]): r for r in rows}
    for n in sorted({r["streams"] for r in rows}):
        loc, tri = by.get(("local", n)), by.get(("triton", n))
        if loc is None or tri is None:
            continue
        lines.append(f"| {n} | {loc['total_fps']:.2f} | {loc['p50_ms']:.0f} / {loc['p90_ms']:.0f} | "
                     f"{tri['total_fps']:.2f} | {tri['p50_ms']:.0f} / {tri['p90_ms']:.0f} | "
                     f"{tri['total_fps'] / loc['total_fps']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--streams", default="1,2,4", help="comma-separated numbers of concurrent streams")
    p.add_argument("--frames", type=int, default=8, help="timed frames per stream")
    p.add_argument("--model", type=Path, default=None, help="model artifact (default: the bundled model)")
    p.add_argument("--url", default=None, help="an existing triton:// model URL instead of starting maskrt serve")
    p.add_argument("--max-batch", type=int, default=4, help="maskrt serve --max-batch")
    p.add_argument("--size", default="480x600", help="frame size HxW")
    p.add_argument("--out", type=Path, default=RESULTS / "triton_scaling.json")
    args = p.parse_args()
    counts = [int(v) for v in args.streams.split(",")]
    h, w = (int(v) for v in args.size.split("x"))
    frames = [s.image for s in synthetic_scenes(4, (h, w), seed=21)]
    cores = os.cpu_count() or 1
    rows: list[dict[str, Any]] = []
    for n in counts:
        row = run_streams(n, lambda k: Segmenter(args.model, threads=max(1, cores // k)), frames, args.frames)
        rows.append({"mode": "local", **row})
        print(f"local  {n} streams: {row['total_fps']:.2f} FPS, p50 {row['p50_ms']:.0f} ms", flush=True)
    proc = None
    url = args.url
    if url is None:
        proc, url = start_server(args.max_batch, args.model, args.out.with_suffix(".server.log"))
    try:
        for n in counts:
            row = run_streams(n, lambda k: Segmenter(url), frames, args.frames)
            rows.append({"mode": "triton", **row})
            print(f"triton {n} streams: {row['total_fps']:.2f} FPS, p50 {row['p50_ms']:.0f} ms", flush=True)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    sysinfo = system_info()
    info = (f"{cores} CPU cores ({sysinfo.get('cpu', '?')}), frames {h}x{w}, {args.frames} timed frames per stream, "
            f"maskrt serve --max-batch {args.max_batch}; local streams use {cores}/streams ONNX Runtime threads each")
    doc = {"system": sysinfo, "url": url, "rows": rows, "note": info}
    write_text(args.out, json.dumps(doc, indent=2, default=str))
    md = to_markdown(rows, info)
    write_text(args.out.with_suffix(".md"), md)
    print(md)


if __name__ == "__main__":
    main()
