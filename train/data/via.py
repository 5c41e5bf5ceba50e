"""Import VGG Image Annotator (VIA) JSON: version 1 (regions as a dict) and version 2 (regions as a list).

Both plain exports (``{"a.jpg1234": {"filename": ..., "regions": ...}}``) and VIA 2 project files
(``_via_img_metadata`` plus ``_via_attributes``) are read. VIA has no notion of a class, so the class
comes from a region attribute the user names; when regions carry a single attribute it is used. When
the project defines options for that attribute (dropdown, radio, checkbox), the options are the classes,
in their order, and any other value is an unknown class. VIA files carry no image size, so sizes come
from the images themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from maskrt.errors import MaskrtError
from maskrt.train.data.build import Part, make_annotation
from maskrt.train.data.files import read_json
from maskrt.train.data.geometry import circle_polygon, ellipse_polygon, rectangle_polygon
from maskrt.train.data.images import locate_image
from maskrt.train.data.problems import ProblemLog
from maskrt.train.data.record import Annotation, Dataset, ImageRecord

DEFAULT_CLASS = "object"


def _regions(entry: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(key, region)`` pairs: ``regions[k]`` of a v2 list or ``regions["k"]`` of a v1 dict."""
    regs = entry.get("regions") or []
    if isinstance(regs, dict):
        return [(f'regions["{k}"]', r) for k, r in regs.items() if isinstance(r, dict)]
    if isinstance(regs, list):
        return [(f"regions[{k}]", r) for k, r in enumerate(regs) if isinstance(r, dict)]
    return []


def _num(d: dict[str, Any], *keys: str) -> list[float]:
    return [float(d[k]) for k in keys]


def _obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (VIA files edited by hand hold anything)."""
    return value if isinstance(value, dict) else {}


def _attributes(region: dict[str, Any]) -> dict[str, Any]:
    """A region's ``region_attributes``, empty when missing or not an object."""
    return _obj(region.get("region_attributes"))


@np.errstate(over="ignore", invalid="ignore")  # absurd coordinates get a problem line, not a warning
def _shape_part(shape: dict[str, Any], where: str, log: ProblemLog) -> Part | None:
    """One VIA ``shape_attributes`` as a :class:`Part`, or ``None`` (reported)."""
    if not isinstance(shape, dict):
        log.add(where, f"'shape_attributes' is not an object (it is {json.dumps(shape)[:40]}); skipped")
        return None
    name = str(shape.get("name", ""))
    try:
        if name == "polygon":
            xs, ys = shape.get("all_points_x") or [], shape.get("all_points_y") or []
            if len(xs) != len(ys):
                log.add(where, f"polygon has {len(xs)} x but {len(ys)} y coordinates; skipped")
                return None
            return Part(polygon=[[float(x), float(y)] for x, y in zip(xs, ys)], kind="polygon")
        if name == "rect":
            x, y, w, h = _num(shape, "x", "y", "width", "height")
            if w <= 0 or h <= 0:
                log.add(where, f"rect is {w:g}x{h:g} (zero area); skipped")
                return None
            return Part(polygon=rectangle_polygon(x, y, x + w, y + h), kind="rect")
        if name == "circle":
            cx, cy, r = _num(shape, "cx", "cy", "r")
            if r <= 0:
                log.add(where, "circle has zero radius (zero area); skipped")
                return None
            return Part(polygon=circle_polygon(cx, cy, r), kind="circle")
        if name == "ellipse":
            cx, cy, rx, ry = _num(shape, "cx", "cy", "rx", "ry")
            theta = float(shape.get("theta", 0.0) or 0.0)
            if rx == 0 or ry == 0:
                log.add(where, "ellipse has a zero radius (zero area); skipped")
                return None
            return Part(polygon=ellipse_polygon(cx, cy, rx, ry, theta), kind="ellipse")
    except (KeyError, TypeError, ValueError):
        log.add(where, f"{name or 'shape'} has missing or non-numeric coordinates; skipped")
        return None
    if name in ("polyline", "point", "line"):
        log.add(where, f"shape '{name}' has no area, so it cannot be an instance; skipped")
    else:
        log.add(where, f"unknown shape '{name}'; skipped")
    return None


def _class_of(value: Any) -> str | None:
    """The class a region attribute value names (a checkbox dict must have exactly one ticked option)."""
    if isinstance(value, dict):
        ticked = [k for k, v in value.items() if v]
        return str(ticked[0]).strip() if len(ticked) == 1 else None
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _pick_attribute(names: list[str], wanted: str | None, shown: str) -> str | None:
    if wanted is not None:
        if wanted not in names:
            have = ", ".join(f"'{n}'" for n in names) or "none"
            raise MaskrtError(
                f"{shown}: regions have no attribute '{wanted}' (they have {have}); fix --class-attribute"
            )
        return wanted
    if len(names) == 1:
        return names[0]
    if not names:
        return None
    choices = ", ".join(f"'{n}'" for n in names)
    raise MaskrtError(
        f"{shown}: regions have several attributes ({choices}); pick the class with --class-attribute NAME"
    )


def load_via(
    path: Path,
    *,
    images: Path | None = None,
    shown: str | None = None,
    class_attribute: str | None = None,
    decode_images: bool = False,
    cache_dir: Path | None = None,
) -> Dataset:
    """Read a VIA 1 or 2 JSON (export or project) into a :class:`Dataset`.

    Args:
        path: the VIA JSON file.
        images: folder holding the images (default: beside the JSON, or its ``images/`` folder).
        shown: how to name the file in messages.
        class_attribute: the region attribute holding the class; default: the only attribute there is.
        decode_images: decode every image fully to prove it is readable.
        cache_dir: where VIA 1 embedded images (``base64_img_data``) are written.

    Raises:
        MaskrtError: the file is unreadable or not VIA, or the class attribute is ambiguous or unknown.
    """
    shown = shown or str(path)
    log = ProblemLog(shown)
    data = read_json(path, shown)
    if not isinstance(data, dict):
        raise MaskrtError(
            f"{shown}: not a VIA file (expected a JSON object); pass --format to pick another format"
        )
    attr_defs: dict[str, Any] = {}
    if "_via_img_metadata" in data:
        meta = data["_via_img_metadata"]
        attr_defs = _obj(_obj(data.get("_via_attributes")).get("region"))
    else:
        meta = data
    if not isinstance(meta, dict):
        raise MaskrtError(f"{shown}: '_via_img_metadata' is not an object; re-export the VIA project")
    entries: list[tuple[str, dict[str, Any]]] = []
    for key, e in meta.items():
        if not isinstance(e, dict) or not isinstance(e.get("filename"), str):
            log.add(f"entry '{key}'", "has no 'filename'; skipped")
            continue
        entries.append((key, e))

    names: list[str] = list(attr_defs)
    for _, e in entries:
        for _, r in _regions(e):
            for n in _attributes(r):
                if n not in names:
                    names.append(n)
    attr = _pick_attribute(names, class_attribute, shown)
    options = _obj(attr_defs.get(attr)).get("options") if attr is not None else None
    if attr is None:
        classes = [DEFAULT_CLASS]
        log.add(None, f"regions have no attributes; every region is class '{DEFAULT_CLASS}'")
    elif isinstance(options, dict) and options:
        classes = [str(k).strip() for k in options]
    else:
        found = {
            _class_of(_attributes(r).get(attr))
            for _, e in entries
            for _, r in _regions(e)
        }
        classes = sorted(c for c in found if c is not None)
    index = {n: i for i, n in enumerate(classes)}

    search = [images] if images is not None else []
    search += [path.parent, path.parent / "images"]
    records: list[ImageRecord] = []
    seen_files: dict[str, str] = {}
    for key, e in entries:
        fname = e["filename"]
        item = f"image '{fname}'"
        if fname in seen_files:
            log.add(item, f"listed twice (entries '{seen_files[fname]}' and '{key}'); kept the first")
            continue
        seen_files[fname] = key
        regions = _regions(e)
        found_img = locate_image(
            fname,
            search,
            item,
            log,
            embedded=e.get("base64_img_data") or None,
            cache_dir=cache_dir,
            decode=decode_images,
            n_instances=len(regions),
        )
        if found_img is None:
            continue
        file, w, h = found_img
        anns: list[Annotation] = []
        for rkey, r in regions:
            where = f"{rkey} ({item})"
            if attr is None:
                cls: str | None = DEFAULT_CLASS
            else:
                raw = _attributes(r).get(attr)
                cls = _class_of(raw)
                if cls is None:
                    log.add(where, f"no class in attribute '{attr}' (value {raw!r}); skipped")
                    continue
            if cls not in index:
                log.add(
                    where, f"class '{cls}' is not one of the options of '{attr}' (unknown class); skipped"
                )
                continue
            shape = r.get("shape_attributes")
            part = _shape_part({} if shape is None else shape, where, log)
            if part is None:
                continue
            ann = make_annotation(index[cls], [part], w, h, where, log)
            if ann is not None:
                ann.source = f"{shown}: {where}"
                anns.append(ann)
        records.append(ImageRecord(file=file, width=w, height=h, annotations=anns, id=len(records)))
    return Dataset(classes=classes, images=records, source=path, problems=log.messages)
