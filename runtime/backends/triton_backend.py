"""Triton Inference Server client backend: ``Segmenter("triton://host:8001/bubbles-lite")``.

The model runs on a Triton server (an NGC container serving a repository from ``maskrt export --format
triton``, or ``maskrt serve``); letterboxing, mask pasting, measurements and tracking stay here, so one
uint8 image goes up and the contract's fixed-size outputs come down (gRPC). The model's metadata (classes,
input size, thresholds) is read from the server's model configuration (its ``maskrt.*`` string parameters).

Only ``tritonclient[grpc]`` is needed (``pip install 'maskrt[triton]'``), imported when a backend opens.
A server that goes away mid-stream is treated like a lost camera: each request is retried on a new
connection with exponential back-off (0.5 s doubling to 8 s, 10 retries: about a minute), each retry is one
warning line naming the URL, and :attr:`TritonBackend.stats` counts requests, retries and reconnects.

URL grammar: ``triton://HOST[:PORT]/MODEL[/VERSION]`` (gRPC port, default 8001).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maskrt.artifact import INPUT_NAME
from maskrt.errors import MaskrtError
from maskrt.runtime.backends.base import outputs_text, wanted_outputs

log = logging.getLogger(__name__)

SCHEME = "triton://"
DEFAULT_PORT = 8001
_URL = re.compile(r"^triton:/{1,2}(?P<host>\[[^\]]+\]|[^/:]+)(?::(?P<port>\d+))?/(?P<model>[^/]+)(?:/(?P<version>\d+))?/?$")
_NOT_RETRIED = ("StatusCode.INVALID_ARGUMENT",)


def is_triton_url(model: object) -> bool:
    """Whether ``model`` names a model on a Triton server (``triton://...``; also after ``Path()`` ate a slash)."""
    return isinstance(model, (str, Path)) and str(model).lower().startswith("triton:/")


@dataclass(frozen=True)
class TritonURL:
    """A parsed ``triton://host:port/model[/version]``."""

    host: str
    port: int
    model: str
    version: str = ""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{SCHEME}{self.address}/{self.model}" + (f"/{self.version}" if self.version else "")


def parse_url(model: str | Path) -> TritonURL:
    """Parse a Triton model URL; a :class:`MaskrtError` with the expected grammar otherwise."""
    m = _URL.match(str(model))
    if m is None:
        raise MaskrtError(f"{model}: not a Triton model URL; write triton://HOST[:PORT]/MODEL (gRPC port, default "
                          f"{DEFAULT_PORT}), e.g. triton://localhost:8001/bubbles-lite")
    return TritonURL(m["host"], int(m["port"] or DEFAULT_PORT), m["model"], m["version"] or "")


def _import_grpc() -> Any:
    try:
        import tritonclient.grpc as grpcclient
    except ImportError as exc:
        raise MaskrtError("tritonclient is not installed; pip install 'maskrt[triton]' to use triton:// models") from exc
    return grpcclient


def backoff_delay(failures: int, backoff_s: float, max_backoff_s: float) -> float:
    """Seconds to wait before retry number ``failures + 1`` (the camera-reconnect policy)."""
    return min(max_backoff_s, backoff_s * (2 ** min(failures, 16)))


def _status(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    try:
        return str(status()) if callable(status) else str(status or "")
    except Exception:  # noqa: BLE001 - a status we cannot read is just unknown
        return ""


def _one_line(exc: Exception) -> str:
    text = getattr(exc, "message", None)
    text = text() if callable(text) else str(exc)
    return (str(text).strip().splitlines() or [type(exc).__name__])[0][:160]


class TritonBackend:
    """Run a maskrt model served by Triton, behind the :class:`~maskrt.runtime.backends.base.Backend` interface.

    Args:
        url: ``triton://host:port/model[/version]``.
        timeout_s: deadline of one request.
        max_failures: retries of one request on a lost connection before giving up (then a MaskrtError).
        backoff_s, max_backoff_s: first wait before a retry, doubling per failure up to ``max_backoff_s``.

    Attributes:
        stats: ``requests`` answered, ``retries`` made, ``reconnects`` (outages survived), ``outage_s`` (total
            seconds spent waiting for the server).
    """

    def __init__(self, url: str | Path, timeout_s: float = 30.0, max_failures: int = 10, backoff_s: float = 0.5,
                 max_backoff_s: float = 8.0) -> None:
        self.url = parse_url(url)
        self._grpc = _import_grpc()
        self.timeout_s = float(timeout_s)
        self.max_failures = int(max_failures)
        self.backoff_s, self.max_backoff_s = float(backoff_s), float(max_backoff_s)
        self.stats: dict[str, float] = {"requests": 0, "retries": 0, "reconnects": 0, "outage_s": 0.0}
        self._client: Any = None
        self._connect()
        try:
            config = self._client.get_model_config(self.url.model, self.url.version, as_json=True,
                                                   client_timeout=self.timeout_s)["config"]
        except self._grpc_exception() as exc:
            self.close()
            raise MaskrtError(self._refusal(exc)) from None
        self.props: dict[str, str] = _parameters(config)
        if not any(k.startswith("maskrt.") for k in self.props):
            self.close()
            raise MaskrtError(f"{self.url}: the server's model configuration has no maskrt.* parameters; serve a "
                              "repository written by `maskrt export --format triton`, or use `maskrt serve`")
        self.max_batch_size = int(config.get("max_batch_size", 0) or 0)
        self.output_names = wanted_outputs(self.props, str(self.url))
        self.input_shape = self._input_shape(config)
        self.name = f"triton:{self.url.address}/{self.url.model}"
        log.info("%s: Triton model %s, input %s, max_batch_size %d", self.url, config.get("platform") or
                 config.get("backend", "?"), list(self.input_shape), self.max_batch_size)

    def _grpc_exception(self) -> type[Exception]:
        from tritonclient.utils import InferenceServerException

        return InferenceServerException

    def _connect(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):  # a dead channel may fail to close; a new one replaces it
                self._client.close()
        self._client = self._grpc.InferenceServerClient(self.url.address)

    def _refusal(self, exc: Exception) -> str:
        status, text = _status(exc), _one_line(exc)
        if "UNAVAILABLE" in status or "DEADLINE" in status:
            return (f"{self.url}: no Triton server answers at {self.url.address} ({text}); start one with "
                    "`maskrt serve` (or tritonserver) or check the host and gRPC port")
        return (f"{self.url}: the server has no model {self.url.model!r} ready ({text}); check the name "
                "(`maskrt serve` lists its models) or the model repository")

    def _input_shape(self, config: dict[str, Any]) -> tuple[int, int, int, int]:
        inputs = config.get("input") or []
        outputs = {o.get("name") for o in config.get("output") or []}
        if [i.get("name") for i in inputs] != [INPUT_NAME] or any(n not in outputs for n in self.output_names):
            self.close()
            raise MaskrtError(f"{self.url}: model tensors {[i.get('name') for i in inputs]} -> {sorted(outputs)} do "
                              f"not follow the maskrt contract (input {INPUT_NAME!r}, outputs "
                              f"{outputs_text(self.output_names)}); serve a maskrt artifact")
        dims = [int(d) for d in inputs[0].get("dims", [])]
        shape = [1, *dims] if self.max_batch_size > 0 else dims
        if len(shape) != 4 or shape[3] != 3 or any(d <= 0 for d in shape):
            self.close()
            raise MaskrtError(f"{self.url}: served input shape {shape} is not a static [B, H, W, 3]; re-export the "
                              "model with `maskrt export --format triton`")
        return (shape[0], shape[1], shape[2], shape[3])

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Send uint8 ``images`` (``[n, H, W, 3]``) to the server; return the outputs by name.

        A lost connection is retried with back-off on a new channel; after :attr:`max_failures` retries a
        :class:`MaskrtError` names the URL and what went wrong.
        """
        grpc = self._grpc
        inp = grpc.InferInput(INPUT_NAME, list(images.shape), "UINT8")
        inp.set_data_from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
        wanted = [grpc.InferRequestedOutput(n) for n in self.output_names]
        error = self._grpc_exception()
        failures, t_lost = 0, 0.0
        while True:
            try:
                result = self._client.infer(self.url.model, [inp], model_version=self.url.version, outputs=wanted,
                                            client_timeout=self.timeout_s)
                break
            except error as exc:
                status = _status(exc)
                if any(s in status for s in _NOT_RETRIED):
                    raise MaskrtError(f"{self.url}: the server refused the request ({_one_line(exc)}); the "
                                      "served model does not match this client's input") from None
                if failures == 0:
                    t_lost = time.perf_counter()
                if failures >= self.max_failures:
                    self.stats["outage_s"] += time.perf_counter() - t_lost
                    raise MaskrtError(f"{self.url}: connection lost ({_one_line(exc)}); gave up after "
                                      f"{failures} retries over {time.perf_counter() - t_lost:.0f} s; restart the "
                                      "server or check the network") from None
                delay = backoff_delay(failures, self.backoff_s, self.max_backoff_s)
                failures += 1
                self.stats["retries"] += 1
                log.warning("%s: connection lost (%s); retry %d of %d in %.1f s", self.url, _one_line(exc),
                            failures, self.max_failures, delay)
                time.sleep(delay)
                self._connect()
        if failures:
            self.stats["reconnects"] += 1
            lost = time.perf_counter() - t_lost
            self.stats["outage_s"] += lost
            log.warning("%s: reconnected after %d retries (%.1f s without the server)", self.url, failures, lost)
        self.stats["requests"] += 1
        out = {n: result.as_numpy(n) for n in self.output_names}
        out["num_dets"] = out["num_dets"].reshape(-1)  # [n] natively, [n, 1] from a batching Python model
        return out

    def close(self) -> None:
        """Close the gRPC channel (idempotent)."""
        if self._client is not None:
            with contextlib.suppress(Exception):  # closing a dead channel
                self._client.close()
            self._client = None


def _parameters(config: dict[str, Any]) -> dict[str, str]:
    """A model configuration's string parameters (Triton's JSON: ``{key: {"string_value": v}}``)."""
    raw = config.get("parameters") or {}
    if isinstance(raw, list):
        return {str(p.get("key")): str((p.get("value") or {}).get("string_value", "")) for p in raw}
    return {str(k): str((v or {}).get("string_value", "")) for k, v in raw.items() if isinstance(v, dict)}
