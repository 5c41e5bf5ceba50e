"""Import "CVAT for images 1.1" XML (polygons, boxes, ellipses, and masks in CVAT's own RLE).

A CVAT ``<mask>`` stores its pixels inside the box ``left, top, width, height`` as run lengths over
that box in row-major order, starting with a run of background (``rle="3, 5, 7"``: 3 off, 5 on, 7 off).
Boxes and ellipses may carry a ``rotation`` in degrees (clockwise on screen). Shapes with the same
label and ``group_id`` join into one instance. Classes are the task's (or project's) labels in the
order CVAT lists them; a shape whose label is not among them is an unknown class.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from maskrt.errors import MaskrtError
from maskrt.train.data.build import Part, make_annotation
from maskrt.train.data.files import read_xml
from maskrt.train.data.geometry import ellipse_polygon, rectangle_polygon
from maskrt.train.data.images import locate_image
from maskrt.train.data.problems import ProblemLog
from maskrt.train.data.record import Annotation, Dataset, ImageRecord

AREA_SHAPES = ("polygon", "box", "mask", "ellipse")
OTHER_SHAPES = ("polyline", "points", "cuboid", "skeleton")


def decode_cvat_mask(
    rle: str, left: int, top: int, width: int, height: int, img_w: int, img_h: int
) -> np.ndarray:
    """A full-image boolean mask from CVAT's mask attributes; ``ValueError`` when the runs do not fit the box."""
    counts = [int(float(v)) for v in rle.replace(" ", "").split(",") if v != ""]
    if width <= 0 or height <= 0:
        raise ValueError(f"box is {width}x{height}")
    if any(c < 0 for c in counts):
        raise ValueError("negative run length")
    if sum(counts) != width * height:
        raise ValueError(f"runs cover {sum(counts)} pixels, the {width}x{height} box has {width * height}")
    values = np.zeros(len(counts), dtype=bool)
    values[1::2] = True
    box = np.repeat(values, counts).reshape(height, width)
    full = np.zeros((img_h, img_w), dtype=bool)
    ys, xs = max(0, top), max(0, left)
    ye, xe = min(img_h, top + height), min(img_w, left + width)
    if ye > ys and xe > xs:
        full[ys:ye, xs:xe] = box[ys - top : ye - top, xs - left : xe - left]
    return full


def encode_cvat_mask(mask: np.ndarray) -> dict[str, str]:
    """CVAT ``<mask>`` attributes (``rle``, ``left``, ``top``, ``width``, ``height``) for a boolean mask."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
    flat = np.asarray(mask[y0 : y1 + 1, x0 : x1 + 1], dtype=bool).ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate(([0], change, [flat.size]))).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return {
        "rle": ", ".join(str(int(c)) for c in counts),
        "left": str(x0),
        "top": str(y0),
        "width": str(x1 - x0 + 1),
        "height": str(y1 - y0 + 1),
    }


def _part(el: ET.Element, img_w: int, img_h: int, where: str, log: ProblemLog) -> Part | None:
    """One CVAT shape element as a :class:`Part`, or ``None`` (reported)."""
    tag, a = el.tag, el.attrib
    try:
        if tag == "polygon":
            pts = [[float(v) for v in p.split(",")] for p in a.get("points", "").split(";") if p.strip()]
            return Part(polygon=pts, kind="polygon")
        if tag == "box":
            rot = float(a.get("rotation", 0) or 0)
            poly = rectangle_polygon(float(a["xtl"]), float(a["ytl"]), float(a["xbr"]), float(a["ybr"]), rot)
            return Part(polygon=poly, kind="box")
        if tag == "ellipse":
            cx, cy, rx, ry = (float(a[k]) for k in ("cx", "cy", "rx", "ry"))
            if rx == 0 or ry == 0:
                log.add(where, "ellipse has a zero radius (zero area); skipped")
                return None
            rot = math.radians(float(a.get("rotation", 0) or 0))
            return Part(polygon=ellipse_polygon(cx, cy, rx, ry, rot), kind="ellipse")
        if tag == "mask":
            left, top, bw, bh = (int(float(a[k])) for k in ("left", "top", "width", "height"))
            try:
                m = decode_cvat_mask(a["rle"], left, top, bw, bh, img_w, img_h)
            except (ValueError, OverflowError) as exc:  # int(float("inf")) is an OverflowError
                log.add(where, f"mask rle is corrupt ({exc}); skipped")
                return None
            return Part(mask=m, kind="mask")
    except (KeyError, ValueError, TypeError, OverflowError):
        log.add(where, f"{tag} has missing or non-numeric coordinates; skipped")
        return None
    log.add(where, f"{tag} has no area, so it cannot be an instance; skipped")
    return None


def load_cvat(
    path: Path,
    *,
    images: Path | None = None,
    shown: str | None = None,
    decode_images: bool = False,
) -> Dataset:
    """Read a "CVAT for images 1.1" XML file into a :class:`Dataset`.

    Args:
        path: the ``annotations.xml`` file.
        images: folder holding the images (default: beside the XML, or its ``images/`` folder).
        shown: how to name the file in messages.
        decode_images: decode every image fully to prove it is readable.

    Raises:
        MaskrtError: the file is not well-formed XML or not a CVAT for images export.
    """
    shown = shown or str(path)
    log = ProblemLog(shown)
    root = read_xml(path, shown)
    if root.tag != "annotations":
        raise MaskrtError(
            f"{shown}: root element is <{root.tag}>, not <annotations>; export as 'CVAT for images 1.1'"
        )
    image_els = root.findall("image")
    if not image_els and root.findall("track"):
        raise MaskrtError(
            f"{shown}: this is a 'CVAT for video' export (tracks); export as 'CVAT for images 1.1'"
        )
    meta = root.find("meta")
    meta_labels: list[str] = []
    if meta is not None:
        for lab in meta.iter("label"):
            name = (lab.findtext("name") or "").strip()
            if name and name not in meta_labels:
                meta_labels.append(name)
    if meta_labels:
        classes = meta_labels
    else:
        classes = sorted(
            {el.get("label", "").strip() for im in image_els for el in im if el.tag in AREA_SHAPES} - {""}
        )
    index = {n: i for i, n in enumerate(classes)}

    search = [images] if images is not None else []
    search += [path.parent, path.parent / "images"]
    records: list[ImageRecord] = []
    seen: dict[str, str] = {}
    for im in image_els:
        name = im.get("name", "")
        iid = im.get("id", "?")
        item = f"image id {iid} ('{name}')"
        if iid in seen:
            log.add(item, f"duplicate image id, also '{seen[iid]}'; kept the first")
            continue
        seen[iid] = name
        shapes = [el for el in im if el.tag in AREA_SHAPES + OTHER_SHAPES]
        try:
            declared: tuple[int, int] | None = (int(im.get("width", "")), int(im.get("height", "")))
        except ValueError:
            declared = None
        subset = im.get("subset")  # project exports keep each subset's images in images/<subset>/
        dirs = search + [path.parent / "images" / subset] if subset else search
        found = locate_image(
            name, dirs, item, log, declared=declared, decode=decode_images, n_instances=len(shapes)
        )
        if found is None:
            continue
        file, w, h = found
        groups: dict[tuple[str, str], list[tuple[str, ET.Element]]] = {}
        counter: dict[str, int] = {}
        for el in shapes:
            k = counter.get(el.tag, 0)
            counter[el.tag] = k + 1
            label = el.get("label", "").strip()
            where = f"{el.tag} {k + 1} '{label}' ({item})"
            if label not in index:
                log.add(where, f"label '{label}' is not among the task's labels (unknown class); skipped")
                continue
            gid = el.get("group_id")
            key = (label, gid) if gid not in (None, "", "0") else ("#", where)
            groups.setdefault(key, []).append((where, el))
        anns: list[Annotation] = []
        for key, members in groups.items():
            label = members[0][1].get("label", "").strip()
            parts, items = [], []
            for where, el in members:
                part = _part(el, w, h, where, log)
                if part is not None:
                    parts.append(part)
                    items.append(where)
            if not parts:
                continue
            gitem = items[0] if len(members) == 1 else f"group {key[1]} '{label}' ({item})"
            ann = make_annotation(index[label], parts, w, h, gitem, log, part_items=items)
            if ann is not None:
                ann.source = f"{shown}: {gitem}"
                anns.append(ann)
        records.append(ImageRecord(file=file, width=w, height=h, annotations=anns, id=len(records)))
    return Dataset(classes=classes, images=records, source=path, problems=log.messages)
