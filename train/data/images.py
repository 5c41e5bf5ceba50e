"""Find the image files an annotation file names, prove each one decodes, and read its real size.

Every image is decoded once, fully, with OpenCV when it is imported, so a file that would stop training
later (truncated, corrupt, not an image) is skipped at import with a problem line instead. PNG and
JPEG files are also checked for a cut-off end first: OpenCV 4 decodes a cut JPEG without complaint
(the missing rows come out grey) and both libraries print to the terminal when they hit one. Nothing
decoded is kept. Images embedded in an annotation file (labelme ``imageData``, VIA ``base64_img_data``)
are written once to a cache folder and used from there. :func:`header_size` reads a size from the
header alone, for callers that only need a size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from pathlib import Path

import cv2
import numpy as np

from maskrt.atomic import atomic_path
from maskrt.train.data.problems import ProblemLog


def default_cache_dir() -> Path:
    """Where decoded embedded images go: :func:`maskrt.paths.user_cache_dir` ``("embedded-images")``."""
    from maskrt.paths import user_cache_dir

    return user_cache_dir("embedded-images")


def resolve_image(name: str, search_dirs: list[Path]) -> Path | None:
    """First existing file for ``name`` in ``search_dirs`` (as given, then by its base name), else ``None``."""
    name = name.replace("\\", "/")
    p = Path(name)
    candidates = [p] if p.is_absolute() else []
    candidates += [d / name for d in search_dirs] + [d / p.name for d in search_dirs]
    for c in candidates:
        try:
            if c.is_file():
                return c
        except (OSError, ValueError):  # a name too long or not encodable for this file system is no file
            continue
    return None


def _jpeg_orientation(app1: bytes) -> int:
    """EXIF orientation (1..8) from a JPEG APP1 payload, 1 when absent."""
    if not app1.startswith(b"Exif\x00\x00"):
        return 1
    tiff = app1[6:]
    if len(tiff) < 8:
        return 1
    endian = "<" if tiff[:2] == b"II" else ">" if tiff[:2] == b"MM" else None
    if endian is None:
        return 1
    (ifd,) = struct.unpack(endian + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (n,) = struct.unpack(endian + "H", tiff[ifd : ifd + 2])
    for i in range(n):
        off = ifd + 2 + 12 * i
        if off + 12 > len(tiff):
            break
        tag, typ = struct.unpack(endian + "HH", tiff[off : off + 4])
        if tag == 0x0112 and typ == 3:
            (val,) = struct.unpack(endian + "H", tiff[off + 8 : off + 10])
            return int(val) if 1 <= val <= 8 else 1
    return 1


def header_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` as OpenCV will decode it, from the header only; ``None`` when not parsed here."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
                w, h = struct.unpack(">II", head[16:24])
                return int(w), int(h)
            if head[:6] in (b"GIF87a", b"GIF89a"):
                w, h = struct.unpack("<HH", head[6:10])
                return int(w), int(h)
            if head[:2] == b"BM" and len(head) >= 26:
                w, h = struct.unpack("<ii", head[18:26])
                return abs(int(w)), abs(int(h))
            if head[:2] == b"\xff\xd8":
                return _jpeg_size(f)
    except OSError:
        return None
    return None


def _jpeg_size(f) -> tuple[int, int] | None:  # type: ignore[no-untyped-def]
    f.seek(2)
    orientation = 1
    while True:
        b = f.read(1)
        while b and b != b"\xff":
            b = f.read(1)
        while b == b"\xff":
            b = f.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        seg = f.read(2)
        if len(seg) < 2:
            return None
        (length,) = struct.unpack(">H", seg)
        if marker == 0xE1 and orientation == 1:
            orientation = _jpeg_orientation(f.read(length - 2))
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            data = f.read(5)
            if len(data) < 5:
                return None
            h, w = struct.unpack(">HH", data[1:5])
            return (int(h), int(w)) if orientation >= 5 else (int(w), int(h))
        f.seek(length - 2, 1)


def _png_complete(data: bytes) -> bool:
    """Whether a PNG's chunks all fit in the file up to its ``IEND`` (a cut-off file ends inside one)."""
    pos, n = 8, len(data)
    while pos + 8 <= n:
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 12 + length  # length, type, data, CRC
        if end > n:
            return False
        if data[pos + 4 : pos + 8] == b"IEND":
            return True
        pos = end
    return False


def _jpeg_complete(data: bytes) -> bool:
    """Whether a JPEG's end-of-image marker follows its first scan (a cut-off file has none).

    Segments are walked up to the first scan (so a thumbnail in EXIF, which has its own end marker, is
    skipped); inside scan data a 0xFF byte is always followed by 0x00 or a restart marker, so the first
    ``FF D9`` after it is the real end, whatever is appended after that (motion photos append a video).
    """
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return True  # not laid out as expected: leave the verdict to the decoder
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", pos + 2 + length) != -1
        pos += 2 + length
    return False  # cut before the first scan


def decode_problem(path: Path) -> tuple[tuple[int, int] | None, str]:
    """Decode ``path`` fully once: ``((width, height), "")``, or ``(None, why)`` when it cannot be trained on.

    The size is the one OpenCV decodes (EXIF orientation applied), which is what training sees.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot be opened ({exc.strerror or exc})"
    if not data:
        return None, "is empty (0 bytes)"
    cut = (data.startswith(b"\x89PNG\r\n\x1a\n") and not _png_complete(data)) or (
        data.startswith(b"\xff\xd8") and not _jpeg_complete(data)
    )
    if cut:
        return None, f"is truncated (its data stops after {len(data)} bytes)"
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        return None, "cannot be read (corrupt or not an image)"
    return (int(img.shape[1]), int(img.shape[0])), ""


def check_image(
    path: Path,
    declared: tuple[int, int] | None,
    item: str,
    log: ProblemLog,
    *,
    decode: bool = True,
) -> tuple[int, int] | None:
    """The image's real ``(width, height)``, or ``None`` (reported) when it is unreadable.

    Every image is decoded fully (``decode`` is accepted for older callers and has no effect): a
    header can look fine on a file that would stop training when its pixels are read. A size that
    differs from the one the annotation file declares is reported; the real size wins.
    """
    del decode
    size, why = decode_problem(path)
    if size is None:
        log.add(item, f"image file {path} {why}; skipped (re-copy or re-export the image)")
        return None
    if declared is not None and tuple(declared) != tuple(size):
        log.add(
            item,
            f"image is {size[0]}x{size[1]} but the annotations say {declared[0]}x{declared[1]}; used the real size",
        )
    return size


def save_embedded(data: str, cache_dir: Path | None, name_hint: str) -> Path | None:
    """Decode a base64 image (optionally a ``data:`` URL) into the cache; ``None`` when it is not an image."""
    if not isinstance(data, str):
        return None
    if "," in data[:100] and data.lstrip().startswith("data:"):
        data = data.split(",", 1)[1]
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None
    if not raw:
        return None
    hint = Path(name_hint)
    if raw.startswith(b"\x89PNG"):
        ext = ".png"
    elif raw.startswith(b"\xff\xd8"):
        ext = ".jpg"
    elif raw[:2] == b"BM":
        ext = ".bmp"
    elif raw[:4] in (b"GIF8",):
        ext = ".gif"
    else:
        ext = hint.suffix.lower() if re.fullmatch(r"\.[a-z0-9]{1,5}", hint.suffix.lower()) else ".png"
    digest = hashlib.sha1(raw).hexdigest()[:16]
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    stem = re.sub(r"[^\w.-]", "_", hint.stem)[:80].strip(".") or "image"  # any name the file system takes
    out = folder / digest / f"{stem}{ext}"
    if not out.is_file():
        with atomic_path(out) as tmp:
            tmp.write_bytes(raw)
    return out


def locate_image(
    name: str,
    search_dirs: list[Path],
    item: str,
    log: ProblemLog,
    *,
    declared: tuple[int, int] | None = None,
    embedded: str | None = None,
    cache_dir: Path | None = None,
    decode: bool = False,
    n_instances: int = 0,
) -> tuple[Path, int, int] | None:
    """Find, size and check one image; use its embedded copy when the file is missing.

    Returns ``(file, width, height)``, or ``None`` after recording why the image (and its
    ``n_instances`` instances) was skipped.
    """
    file = resolve_image(name, search_dirs) if name else None
    if file is None and embedded:
        file = save_embedded(embedded, cache_dir, name or "embedded.png")
        if file is None:
            log.add(
                item,
                f"image file not found and its embedded image data cannot be decoded; skipped with its "
                f"{n_instances} instances",
            )
            return None
    if file is None:
        where = ", ".join(str(d) for d in search_dirs)
        log.add(
            item,
            f"image file not found (looked in {where}); skipped with its {n_instances} instances "
            "(pass --images DIR if the images are elsewhere)",
        )
        return None
    size = check_image(file, declared, item, log, decode=decode)
    if size is None:
        if n_instances:
            log.add(item, f"its {n_instances} instances skipped with it")
        return None
    return file, size[0], size[1]
