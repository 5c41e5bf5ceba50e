"""Read still images and expand the image sources a user types (files, folders, globs)."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from maskrt.errors import MaskrtError

IMAGE_SUFFIXES = (
    ".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".jp2", ".pgm", ".ppm", ".pbm",
)  # fmt: skip
"""The still-image file endings every command accepts (predict, run, bench --images, export --data, the
importers): what OpenCV decodes. The one list; every module that picks images by their ending imports it."""


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as stored: 8- or 16-bit, grey, BGR or BGRA (non-ASCII paths work too).

    Raises:
        MaskrtError: the file is missing, empty or not a decodable image.
    """
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise MaskrtError(f"cannot read the file ({exc.strerror}); check the path", path=path) from exc
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None or img.size == 0:
        raise MaskrtError("not a readable image (corrupt or unsupported format); re-save or remove it", path=path)
    return img


def expand_sources(sources: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Image files named by ``sources``: files as given, folders' images (sorted), and glob patterns.

    Raises:
        MaskrtError: a source matches nothing, or no image at all is found.
    """
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)

    for src in sources:
        text = str(src)
        p = Path(text).expanduser()
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise MaskrtError("no images in this folder (looked for " + ", ".join(IMAGE_SUFFIXES[:5]) + "...)",
                                  path=p)
            for f in found:
                add(f)
        elif p.is_file():
            add(p)
        elif glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True))
            files = [m for m in matches if m.is_file() and m.suffix.lower() in IMAGE_SUFFIXES]
            if not files:
                raise MaskrtError(f"the pattern {text!r} matches no image; check it (quote it in the shell)")
            for f in files:
                add(f)
        else:
            raise MaskrtError("no such file or folder; check the path", path=p)
    if not out:
        raise MaskrtError("no images to process; pass image files, folders or glob patterns")
    return out
