"""The ``maskrt serve`` server process: maskrt artifacts on Triton Inference Server through PyTriton.

Runs in the PyTriton environment (:mod:`maskrt.runtime.serve.env`), started by ``maskrt serve``::

    python -m maskrt.runtime.serve.server MODEL [MODEL ...] --grpc-port 8001 --http-port 8000 --metrics-port 8002

Each model is opened with the runtime's own backends (ONNX Runtime, OpenVINO, TensorRT) and bound as a
Triton model named after its file stem, with the contract's tensors (:mod:`maskrt.artifact`) minus the batch
dimension and Triton's dynamic batcher in front: requests of several clients are gathered into batches of up
to ``--max-batch`` and run in chunks of the artifact's static batch size. Every ``maskrt.*`` metadata key is a
string parameter of the model configuration, as in a repository from ``maskrt export --format triton``, so the
runtime's ``triton://`` client works against either. Prometheus metrics are served on ``--metrics-port``.
SIGINT and SIGTERM stop the server and its workers cleanly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np

from maskrt.artifact import INPUT_NAME, OUTPUT_DTYPES, PHASE_OUTPUT, ArtifactMeta
from maskrt.errors import MaskrtError

log = logging.getLogger("maskrt.serve")

READY_LINE = "maskrt serve: ready"
"""Printed on stdout (followed by the model URLs) once every model answers; ``maskrt serve`` and tests wait for it."""


def model_name(path: Path, taken: set[str]) -> str:
    """Triton model name for an artifact: its file stem up to the first dot (``bubbles-lite.fp16.onnx`` -> ``bubbles-lite``),
    made unique among ``taken``."""
    base = path.name.split(".")[0] or "model"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    return name


def output_tensors(meta: ArtifactMeta) -> list[tuple[str, Any, tuple[int, ...]]]:
    """``(name, dtype, shape without the batch)`` of each output the model serves: the contract's five, plus
    ``phase`` (``[H / S, W / S]``) when its metadata sets ``phase_stride``."""
    h, w = meta.input_size
    d, m = meta.max_det, meta.mask_size
    shapes: dict[str, tuple[int, ...]] = {"boxes": (d, 4), "scores": (d,), "labels": (d,), "masks": (d, m, m),
                                          "num_dets": (1,)}
    if meta.phase_stride:
        shapes[PHASE_OUTPUT] = (h // meta.phase_stride, w // meta.phase_stride)
    return [(name, np.dtype(OUTPUT_DTYPES[name]).type, shapes[name]) for name in meta.output_names]


def make_infer(backend: Any, meta: ArtifactMeta) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """A batch function ``images [n, H, W, 3] -> outputs [n, ...]`` that runs ``backend`` in chunks of its batch size.

    The outputs are :attr:`ArtifactMeta.output_names <maskrt.artifact.ArtifactMeta.output_names>`: ``phase``
    is batched like the others when the model has it.
    """
    b = int(backend.input_shape[0])
    names = meta.output_names

    def infer(images: np.ndarray) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for start in range(0, images.shape[0], b):
            chunk = images[start : start + b]
            n = chunk.shape[0]
            if n < b:
                pad = np.full((b - n, *chunk.shape[1:]), meta.pad_value, dtype=np.uint8)
                chunk = np.concatenate([chunk, pad])
            out = backend.infer(np.ascontiguousarray(chunk, dtype=np.uint8))
            for name in names:
                parts[name].append(np.asarray(out[name])[:n].copy())
        result = {name: np.concatenate(parts[name]).astype(OUTPUT_DTYPES[name], copy=False) for name in names}
        result["num_dets"] = result["num_dets"].reshape(-1, 1)  # a [1] tensor per request
        return result

    return infer


def _add_parameters(extra: dict[str, dict[str, str]]) -> None:
    """Carry each model's ``maskrt.*`` metadata into its Triton model configuration as string parameters.

    PyTriton's public ``ModelConfig`` has no parameters; its generated configuration does (``backend_parameters``
    of PyTriton 0.7's ``TritonModelConfig``), so they are added there.
    """
    from pytriton.models.model import Model

    original = Model._get_triton_model_config
    if getattr(original, "_maskrt", False):
        return

    def with_parameters(self: Any) -> Any:
        config = original(self)
        config.backend_parameters.update(extra.get(self.model_name, {}))
        return config

    with_parameters._maskrt = True  # type: ignore[attr-defined]
    Model._get_triton_model_config = with_parameters


def serve(
    models: list[Path],
    grpc_port: int = 8001,
    http_port: int = 8000,
    metrics_port: int = 8002,
    max_batch: int = 8,
    queue_delay_us: int = 2000,
    backend: str = "auto",
    device: str = "auto",
    threads: int | None = None,
    host: str = "0.0.0.0",
) -> None:
    """Serve ``models`` until SIGINT/SIGTERM (blocking)."""
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    from maskrt.runtime.backends import open_backend

    opened: list[tuple[str, Any, ArtifactMeta]] = []
    taken: set[str] = set()
    for path in models:
        be = open_backend(path, backend=backend, device=device, threads=threads, spin=False)
        meta = ArtifactMeta.from_props(be.props, path)
        name = model_name(path, taken)
        taken.add(name)
        opened.append((name, be, meta))
        log.info("%s: %s as model %s (%s, batch %d)", path, meta.arch, name, be.name, be.input_shape[0])
    _add_parameters({name: {**meta.to_props(), "maskrt.triton_batching": f"dynamic up to {max_batch}"}
                     for name, _, meta in opened})
    config = TritonConfig(grpc_port=grpc_port, http_port=http_port, metrics_port=metrics_port, allow_metrics=True,
                          grpc_address=host, http_address=host, exit_on_error=True, log_verbose=0)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        with Triton(config=config) as triton:
            for name, be, meta in opened:
                run = make_infer(be, meta)

                @batch
                def infer_func(images: np.ndarray, _run: Callable[..., Any] = run) -> dict[str, np.ndarray]:
                    return _run(images)

                h, w = meta.input_size
                triton.bind(
                    model_name=name,
                    infer_func=infer_func,
                    inputs=[Tensor(name=INPUT_NAME, dtype=np.uint8, shape=(h, w, 3))],
                    outputs=[Tensor(name=tname, dtype=dtype, shape=shape) for tname, dtype, shape in output_tensors(meta)],
                    config=ModelConfig(max_batch_size=max_batch,
                                       batcher=DynamicBatcher(max_queue_delay_microseconds=queue_delay_us)),
                    strict=True,
                )
            triton.run()
            shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
            print(READY_LINE, flush=True)
            for name, _, _ in opened:
                print(f"  triton://{shown}:{grpc_port}/{name}", flush=True)
            print(f"  metrics: http://{shown}:{metrics_port}/metrics", flush=True)
            triton.serve()
    except KeyboardInterrupt:
        pass
    finally:
        for _, be, _ in opened:
            be.close()
    log.info("maskrt serve: stopped")


def main(argv: list[str] | None = None) -> int:
    """Command line of the server process (``maskrt serve`` builds it); user errors are one line and exit 2."""
    p = argparse.ArgumentParser(prog="python -m maskrt.runtime.serve.server", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--grpc-port", type=int, default=8001)
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--metrics-port", type=int, default=8002)
    p.add_argument("--max-batch", type=int, default=8)
    p.add_argument("--queue-delay-us", type=int, default=2000)
    p.add_argument("--backend", default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("pytriton", "tritonclient"):
        logging.getLogger(noisy).setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        serve(args.models, args.grpc_port, args.http_port, args.metrics_port, args.max_batch, args.queue_delay_us,
              args.backend, args.device, args.threads, args.host)
    except MaskrtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
