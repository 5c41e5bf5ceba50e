"""Import COCO instance-segmentation JSON (polygons, compressed and uncompressed RLE, crowd flags).

Categories map to 0-based classes in id order. A category is a class when it has annotations or when
no other category names it as its supercategory, so Roboflow-style exports, whose id 0 is an unused
parent ("Bubbles-IFQb" above "taylor bubble"), give exactly the real classes, and ids with gaps work.
Images are looked for in the folder passed as ``images``, else beside the JSON, in ``images/`` beside it,
and in ``../images/`` when the JSON sits in an ``annotations/`` folder (CVAT's COCO export).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from maskrt.errors import MaskrtError
from maskrt.train.data.build import Part, make_annotation
from maskrt.train.data.files import read_json
from maskrt.train.data.images import check_image, resolve_image
from maskrt.train.data.problems import ProblemLog
from maskrt.train.data.record import Annotation, Dataset, ImageRecord


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_size(v: Any) -> bool:
    """A usable declared width or height: a finite number (NaN, infinities and strings are not)."""
    return _is_number(v) and math.isfinite(v)


def _is_id(v: Any) -> bool:
    """Whether ``v`` can be an id: a number or string (a list or object, from a broken file, cannot)."""
    return isinstance(v, (int, float, str))


def _parts(seg: Any, item: str, log: ProblemLog) -> list[Part] | None:
    """The parts of one COCO segmentation, or ``None`` (reported) when it has none."""
    if isinstance(seg, dict):
        return [Part(rle=seg, kind="RLE")]
    if not isinstance(seg, list) or not seg:
        log.add(item, "has no segmentation (only a box?); skipped")
        return None
    if _is_number(seg[0]):  # a bare polygon instead of a list of polygons
        seg = [seg]
    parts: list[Part] = []
    for k, poly in enumerate(seg):
        where = item if len(seg) == 1 else f"{item}, polygon {k + 1}"
        arr = _numbers(poly)
        if arr is None:
            log.add(where, "polygon is not a list of numbers; skipped")
            continue
        if len(arr) % 2:
            log.add(where, f"polygon has an odd number of coordinates ({len(arr)}); last one dropped")
            arr = arr[:-1]
        parts.append(Part(polygon=arr.reshape(-1, 2)))
    return parts


def _numbers(v: Any) -> np.ndarray | None:
    """A flat list of numbers as a float array, ``None`` when it is anything else."""
    if not isinstance(v, list):
        return None
    try:
        arr = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr if arr.ndim == 1 else None


def _classes(categories: list[Any], used: set[Any], log: ProblemLog) -> tuple[list[str], dict[Any, int]]:
    """Class names and the map from category id to class index."""
    cats: dict[Any, dict[str, Any]] = {}
    for c in categories:
        if not isinstance(c, dict) or not _is_id(c.get("id")) or not str(c.get("name", "")).strip():
            log.add(f"category {c!r:.60}", "needs an 'id' and a 'name'; skipped")
            continue
        if c["id"] in cats:
            log.add(
                f"category id {c['id']}",
                f"duplicate id (names {cats[c['id']]['name']!r}, {c['name']!r}); kept the first",
            )
            continue
        cats[c["id"]] = c
    parents = {
        c["supercategory"].strip()
        for c in cats.values()
        if isinstance(c.get("supercategory"), str) and c["supercategory"].strip() != str(c["name"]).strip()
    }
    classes: list[str] = []
    index: dict[Any, int] = {}
    for cid in sorted(cats, key=lambda v: (str(type(v)), v)):
        name = str(cats[cid]["name"]).strip()
        if cid not in used and name in parents:
            continue  # an unused parent (supercategory) is not a class
        if name in classes:
            log.add(
                f"category id {cid}", f"name {name!r} is used by another category too; merged into one class"
            )
        else:
            classes.append(name)
        index[cid] = classes.index(name)
    return classes, index


def load_coco(
    path: Path,
    *,
    images: Path | None = None,
    shown: str | None = None,
    decode_images: bool = False,
) -> Dataset:
    """Read one COCO JSON file into a :class:`Dataset`; problems are fixed or skipped and recorded.

    Args:
        path: the COCO JSON file.
        images: folder holding the images (default: beside the JSON, or its ``images/`` folder).
        shown: how to name the file in messages (default: the path as given).
        decode_images: decode every image fully to prove it is readable (slower than reading headers).

    Raises:
        MaskrtError: the file cannot be read or is not COCO instance JSON.
    """
    shown = shown or str(path)
    log = ProblemLog(shown)
    data = read_json(path, shown)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise MaskrtError(
            f"{shown}: not COCO instance JSON (no 'images' list); pass --format to pick another format"
        )
    anns = data.get("annotations", [])
    cats = data.get("categories", [])
    if not isinstance(anns, list) or not isinstance(cats, list):
        raise MaskrtError(f"{shown}: 'annotations' and 'categories' must be lists; re-export the file")

    used = {a.get("category_id") for a in anns if isinstance(a, dict) and _is_id(a.get("category_id"))}
    classes, cat_index = _classes(cats, used, log)

    search = [images] if images is not None else []
    search += [path.parent, path.parent / "images"]
    if path.parent.name == "annotations":  # CVAT/Datumaro COCO export: annotations/ beside images/
        search.append(path.parent.parent / "images")

    by_id: dict[Any, dict[str, Any]] = {}
    for k, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not _is_id(im.get("id")) or not isinstance(im.get("file_name"), str):
            log.add(f"images[{k}]", "needs an 'id' and a 'file_name'; skipped")
            continue
        if im["id"] in by_id:
            log.add(
                f"image id {im['id']} ('{im['file_name']}')",
                f"duplicate image id, also '{by_id[im['id']]['file_name']}'; kept the first",
            )
            continue
        by_id[im["id"]] = im

    anns_of: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    seen_ann_ids: set[Any] = set()
    for k, a in enumerate(anns):
        if not isinstance(a, dict):
            log.add(f"annotations[{k}]", "is not an object; skipped")
            continue
        aid = a.get("id", f"#{k}")
        if not _is_id(aid):
            aid = f"#{k} ({json.dumps(aid)[:20]})"
        elif "id" in a and aid in seen_ann_ids:
            log.add(
                f"annotation id {aid}", "duplicate annotation id; kept both (ids are renumbered on export)"
            )
        seen_ann_ids.add(aid)
        if not _is_id(a.get("image_id")) or a["image_id"] not in by_id:
            log.add(f"annotation id {aid}", f"image id {a.get('image_id')!r} is not in 'images'; skipped")
            continue
        anns_of[a["image_id"]].append(a)

    records: list[ImageRecord] = []
    for iid, im in by_id.items():
        name = im["file_name"]
        item = f"image '{name}'"
        file = resolve_image(name, search)
        n_anns = len(anns_of.get(iid, []))
        if file is None:
            where = ", ".join(str(d) for d in search)
            log.add(item, f"image file not found (looked in {where}); skipped with its {n_anns} annotations")
            continue
        declared = (
            (int(im["width"]), int(im["height"]))
            if _is_size(im.get("width")) and _is_size(im.get("height"))
            else None
        )
        size = check_image(file, declared, item, log, decode=decode_images)
        if size is None:
            if n_anns:
                log.add(item, f"its {n_anns} annotations skipped with it")
            continue
        w, h = size
        out: list[Annotation] = []
        for a in anns_of.get(iid, []):
            aid = a.get("id", "?")
            aitem = f"annotation id {aid if _is_id(aid) else json.dumps(aid)[:20]} ({item})"
            if not _is_id(a.get("category_id")) or a["category_id"] not in cat_index:
                log.add(aitem, f"category id {a.get('category_id')!r} is not a known class; skipped")
                continue
            parts = _parts(a.get("segmentation"), aitem, log)
            if not parts:
                continue
            ann = make_annotation(
                cat_index[a["category_id"]], parts, w, h, aitem, log, iscrowd=bool(a.get("iscrowd", 0))
            )
            if ann is not None:
                ann.source = f"{shown}: {aitem}"
                out.append(ann)
        records.append(ImageRecord(file=file, width=w, height=h, annotations=out, id=len(records)))

    return Dataset(classes=classes, images=records, source=path, problems=log.messages)
