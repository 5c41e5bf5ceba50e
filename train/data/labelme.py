"""Import a folder of labelme JSON files (polygon, rectangle, circle and mask shapes).

Shapes with the same label and ``group_id`` form one instance (labelme's way to draw an object in
several pieces); shapes without a ``group_id`` are instances of their own. When the image named by
``imagePath`` is missing but the JSON embeds it (``imageData``), the embedded copy is decoded into the
cache. Classes are the lines of a ``labels.txt`` beside the JSONs when there is one (labelme's own
``--labels`` file; ``__ignore__`` and ``_background_`` skipped), else every label found, sorted.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskrt.errors import MaskrtError
from maskrt.train.data.build import Part, make_annotation
from maskrt.train.data.files import json_kind, read_json
from maskrt.train.data.geometry import circle_polygon, rectangle_polygon
from maskrt.train.data.images import locate_image
from maskrt.train.data.problems import ProblemLog
from maskrt.train.data.record import Annotation, Dataset, ImageRecord

IGNORED_LABELS = ("__ignore__", "_background_")


def _mask_part(shape: dict[str, Any], corner: np.ndarray, width: int, height: int) -> Part | None:
    """A labelme ``mask`` shape (a PNG of the box whose top-left is ``corner``) as a full-image mask."""
    if not np.isfinite(corner).all():
        return None
    try:
        raw = base64.b64decode(shape["mask"])
        small = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_GRAYSCALE) if raw else None
    except (KeyError, TypeError, binascii.Error, ValueError):
        return None
    if small is None:
        return None
    x0, y0 = (round(float(v)) for v in corner)
    full = np.zeros((height, width), dtype=bool)
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(height, y0 + small.shape[0]), min(width, x0 + small.shape[1])
    if ye > ys and xe > xs:
        full[ys:ye, xs:xe] = small[ys - y0 : ye - y0, xs - x0 : xe - x0] > 0
    return Part(mask=full, kind="mask")


@np.errstate(over="ignore", invalid="ignore")  # absurd coordinates get a problem line, not a warning
def _shape_part(shape: dict[str, Any], width: int, height: int, where: str, log: ProblemLog) -> Part | None:
    """One labelme shape as a :class:`Part`, or ``None`` (reported) when it cannot be one."""
    kind = shape.get("shape_type") or "polygon"
    pts = shape.get("points") or []
    try:
        arr = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        log.add(where, f"{kind} has malformed points; skipped")
        return None
    if kind == "polygon":
        return Part(polygon=arr, kind=kind)
    if kind == "rectangle":
        if len(arr) == 2:
            return Part(polygon=rectangle_polygon(arr[0, 0], arr[0, 1], arr[1, 0], arr[1, 1]), kind=kind)
        if len(arr) == 4:
            return Part(polygon=arr, kind=kind)
        log.add(where, f"rectangle needs 2 corner points, has {len(arr)}; skipped")
        return None
    if kind == "circle":
        if len(arr) != 2:
            log.add(where, f"circle needs a centre and a rim point, has {len(arr)} points; skipped")
            return None
        r = float(np.hypot(*(arr[1] - arr[0])))
        if r <= 0:
            log.add(where, "circle has zero radius (zero area); skipped")
            return None
        return Part(polygon=circle_polygon(arr[0, 0], arr[0, 1], r), kind=kind)
    if kind == "mask":
        part = _mask_part(shape, arr[0], width, height) if len(arr) >= 1 else None
        if part is None:
            log.add(where, "mask shape has no decodable 'mask' PNG; skipped")
        return part
    log.add(where, f"shape type '{kind}' has no area, so it cannot be an instance; skipped")
    return None


def _read_labels_txt(folder: Path) -> list[str] | None:
    f = folder / "labels.txt"
    if not f.is_file():
        return None
    names = [ln.strip() for ln in f.read_text(encoding="utf-8").splitlines()]
    return [n for n in names if n and n not in IGNORED_LABELS]


def load_labelme(
    path: Path,
    *,
    shown: str | None = None,
    decode_images: bool = False,
    cache_dir: Path | None = None,
) -> Dataset:
    """Read a labelme folder (searched recursively) or a single labelme JSON into a :class:`Dataset`.

    Args:
        path: the folder of labelme JSON files, or one of them.
        shown: how to name ``path`` in messages.
        decode_images: decode every image fully to prove it is readable.
        cache_dir: where embedded images (``imageData``) are written when the image file is missing.

    Raises:
        MaskrtError: the folder holds no labelme JSON.
    """
    root = path if path.is_dir() else path.parent
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.json") if json_kind(p) == "labelme")
    if not files:
        raise MaskrtError(f"{shown or path}: no labelme JSON files found; check the folder")
    prefix = (shown or str(path)) if path.is_dir() else None
    fixed_classes = _read_labels_txt(root)

    docs: list[tuple[Path, str, Any]] = []
    problems: list[str] = []
    for f in files:
        rel = str(f.relative_to(root)) if path.is_dir() else (shown or str(f))
        name = f"{prefix}/{rel}" if prefix and prefix != "." else rel
        try:
            docs.append((f, name, read_json(f, name)))
        except MaskrtError as exc:
            problems.append(f"{exc}; skipped")
    labels = {
        str(s.get("label", "")).strip()
        for _, _, d in docs
        if isinstance(d, dict)
        if isinstance(d.get("shapes"), list)
        for s in d["shapes"]
        if isinstance(s, dict)
    } - {"", *IGNORED_LABELS}
    classes = fixed_classes if fixed_classes is not None else sorted(labels)
    index = {n: i for i, n in enumerate(classes)}

    records: list[ImageRecord] = []
    for f, name, doc in docs:
        log = ProblemLog(name)
        if not isinstance(doc, dict) or not isinstance(doc.get("shapes", []), list):
            log.add(None, "not a labelme file (no 'shapes' list); skipped")
            problems += log.messages
            continue
        shapes = [s for s in doc.get("shapes", []) if isinstance(s, dict)]
        declared = None
        if type(doc.get("imageWidth")) is int and type(doc.get("imageHeight")) is int:  # not bool
            declared = (doc["imageWidth"], doc["imageHeight"])
        img_name = str(doc.get("imagePath") or "")
        found = locate_image(
            img_name,
            [f.parent],
            f"image '{img_name}'",
            log,
            declared=declared,
            embedded=doc.get("imageData"),
            cache_dir=cache_dir,
            decode=decode_images,
            n_instances=len(shapes),
        )
        if found is None:
            problems += log.messages
            continue
        file, w, h = found
        groups: dict[Any, list[tuple[int, dict[str, Any]]]] = {}
        for k, s in enumerate(shapes):
            label = str(s.get("label", "")).strip()
            where = f"shapes[{k}] ('{label}', {s.get('shape_type') or 'polygon'})"
            if label in IGNORED_LABELS:
                continue
            if label not in index:
                why = "not in labels.txt" if fixed_classes is not None else "empty"
                log.add(where, f"label '{label}' is {why} (unknown class); skipped")
                continue
            gid = s.get("group_id")
            if isinstance(gid, (dict, list)):
                why = f"group_id {json.dumps(gid)[:20]} is not a number; drawn as an instance of its own"
                log.add(where, why)
                gid = None
            key = (label, gid) if gid is not None else ("#", k)
            groups.setdefault(key, []).append((k, s))
        anns: list[Annotation] = []
        for key, members in groups.items():
            label = str(members[0][1].get("label")).strip()
            items, parts = [], []
            for k, s in members:
                where = f"shapes[{k}] ('{label}', {s.get('shape_type') or 'polygon'})"
                part = _shape_part(s, w, h, where, log)
                if part is not None:
                    parts.append(part)
                    items.append(where)
            if not parts:
                continue
            item = items[0] if len(members) == 1 else f"group {key[1]} ('{label}')"
            ann = make_annotation(index[label], parts, w, h, item, log, part_items=items)
            if ann is not None:
                ann.source = f"{name}: {item}"
                anns.append(ann)
        records.append(ImageRecord(file=file, width=w, height=h, annotations=anns, id=len(records)))
        problems += log.messages
    return Dataset(classes=classes, images=records, source=path, problems=problems)
