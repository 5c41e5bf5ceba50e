"""A small MJPEG-over-HTTP reader, used when OpenCV cannot open an ``http(s)://`` stream itself.

Many lab cameras, Raspberry Pi streamers and phone apps serve ``multipart/x-mixed-replace`` JPEG
frames. OpenCV reads them through FFmpeg; an OpenCV built without FFmpeg (common on Jetson) cannot,
so this reader parses the multipart stream with the standard library and decodes JPEGs with OpenCV.
A URL that answers with a single image (a snapshot endpoint) is polled once per ``read``.

A server that is not an MJPEG stream cannot hang or crash it: every ``read`` must produce a frame
within ``READ_TIMEOUT_MS`` (wall time, however the bytes trickle in) and within ``MAX_PART_BYTES``;
otherwise it returns None and the capture stage reconnects with back-off. An answer that is not
HTTP at all is a :class:`MaskrtError` naming the URL, never the server's bytes.
"""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.request
from typing import IO

import cv2
import numpy as np

from maskrt.errors import MaskrtError
from maskrt.runtime.stream import spec as source_spec
from maskrt.runtime.stream.spec import DEFAULT_FPS, SourceSpec, normalise_frame

log = logging.getLogger(__name__)

MAX_PART_BYTES = 64 * 1024 * 1024


class MjpegHttpSource:
    """Frames from an HTTP MJPEG (multipart) stream or a JPEG snapshot URL."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._resp: IO[bytes] | None = None
        self._boundary: bytes | None = None
        self._snapshot = False
        self._buf = bytearray()
        self._deadline = float("inf")
        self._connect()

    def _connect(self) -> None:
        url = str(self.spec.target)
        try:
            # the socket timeout bounds the connect and each blocking receive; read() adds a deadline per frame
            resp = urllib.request.urlopen(url, timeout=source_spec.READ_TIMEOUT_MS / 1000)
        except http.client.HTTPException as exc:  # e.g. BadStatusLine: its text is the server's raw bytes
            raise MaskrtError(
                f"{url}: the server did not answer with HTTP ({type(exc).__name__}); check the URL and port "
                "of the MJPEG stream"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise MaskrtError(f"{url}: could not connect ({getattr(exc, 'reason', exc)})") from None
        ctype = resp.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            boundary = _param(ctype, "boundary")
            if not boundary:
                resp.close()
                raise MaskrtError(f"{url}: multipart stream without a boundary in Content-Type '{ctype}'")
            self._boundary = b"--" + boundary.lstrip("-").encode("latin-1")
        elif ctype.startswith("image/"):
            self._snapshot = True
        else:
            resp.close()
            raise MaskrtError(f"{url}: Content-Type '{ctype}' is neither an MJPEG stream nor an image")
        self._resp = resp

    @property
    def fps(self) -> float:
        """The requested frame rate, or 30 (MJPEG carries no timing)."""
        return float(self.spec.fps or DEFAULT_FPS)

    @property
    def frame_count(self) -> int | None:
        """Always None: a network stream has no length."""
        return None

    def read(self) -> np.ndarray | None:
        """Next decoded frame, or None when the stream ends, stalls, sends garbage or something undecodable."""
        self._deadline = time.monotonic() + source_spec.READ_TIMEOUT_MS / 1000
        try:
            data = self._read_part()
        except (OSError, ValueError, http.client.HTTPException, MaskrtError) as exc:
            log.debug("%s: read failed (%s)", self.spec.text, type(exc).__name__)
            return None
        if not data:
            return None
        frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            log.debug("%s: part of %d bytes is not a decodable image", self.spec.text, len(data))
            return None
        return normalise_frame(frame, self.spec)

    def _read_part(self) -> bytes | None:
        if self._snapshot:
            if self._resp is None:
                self._connect()
            try:
                while self._fill():  # to the end of the answer, within the deadline and the size limit
                    pass
                return bytes(self._buf)
            finally:
                self._buf.clear()
                self.close()
        if self._resp is None:
            return None
        # skip to the boundary line, then read the part headers
        skipped = 0
        while True:
            line = self._readline()
            if not line:
                return None
            if line.strip().startswith(self._boundary or b"--"):
                break
            skipped += len(line)
            if skipped > MAX_PART_BYTES:
                raise ValueError(f"no multipart boundary in {skipped} bytes")
        length = None
        while True:
            line = self._readline()
            if not line:
                return None
            if not line.strip():
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is not None:
            if not 0 < length <= MAX_PART_BYTES:
                raise ValueError(f"part of {length} bytes")
            return self._read_exact(length)
        return self._read_until(b"\xff\xd9")  # a JPEG without Content-Length ends at its EOI marker

    def _fill(self) -> bool:
        assert self._resp is not None
        if time.monotonic() > self._deadline:
            raise TimeoutError(f"no frame within {source_spec.READ_TIMEOUT_MS} ms")
        chunk = self._resp.read1(65536) if hasattr(self._resp, "read1") else self._resp.read(4096)
        if not chunk:
            return False
        self._buf += chunk
        if len(self._buf) > MAX_PART_BYTES:
            raise ValueError("no frame boundary within the size limit")
        return True

    def _readline(self) -> bytes:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[: end + 1])
                del self._buf[: end + 1]
                return line
            if not self._fill():
                return b""

    def _read_exact(self, n: int) -> bytes | None:
        while len(self._buf) < n:
            if not self._fill():
                return None
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _read_until(self, marker: bytes) -> bytes | None:
        start = 0
        while True:
            end = self._buf.find(marker, start)
            if end >= 0:
                return self._read_exact(end + len(marker))
            start = max(0, len(self._buf) - len(marker) + 1)
            if not self._fill():
                return None

    def close(self) -> None:
        """Close the connection."""
        if self._resp is not None:
            self._resp.close()
            self._resp = None


def _param(header: str, key: str) -> str | None:
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == key:
            return value.strip().strip('"')
    return None
