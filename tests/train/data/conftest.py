"""A small two-image scene written as a COCO twin and as labelme, VIA 1, VIA 2 and CVAT fixtures.

Every instance is described once (class, kind, geometry); each writer expresses it in its format's own
shapes (rectangle, circle, ellipse, CVAT mask RLE, labelme group_id, ...), or leaves it out when the
format cannot express it, so the import tests can compare each format with the same COCO twin.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from maskrt import rle as rle_codec
from maskrt.train.data.cvat import encode_cvat_mask
from maskrt.train.data.geometry import circle_polygon, ellipse_polygon, rectangle_polygon

TAYLOR = Path(__file__).resolve().parents[2] / "data" / "taylor-bubbles-coco"
CLASSES = ["bubble", "drop"]


@dataclass
class Inst:
    """One instance of the scene, in format-neutral terms."""

    label: str
    kind: str  # polygon | rect | circle | ellipse | group | mask
    geom: Any

    def coco_segmentation(self, h: int, w: int) -> Any:
        if self.kind == "mask":
            return rle_codec.encode(self.geom)
        return [np.asarray(p, dtype=float).reshape(-1).round(3).tolist() for p in self.polygons()]

    def polygons(self) -> list[np.ndarray]:
        g = self.geom
        if self.kind == "polygon":
            return [np.asarray(g, dtype=float)]
        if self.kind == "rect":
            return [rectangle_polygon(*g)]
        if self.kind == "circle":
            return [circle_polygon(*g)]
        if self.kind == "ellipse":
            return [ellipse_polygon(*g)]
        if self.kind == "group":
            return [np.asarray(p, dtype=float) for p in g]
        raise ValueError(self.kind)


@dataclass
class Img:
    name: str
    width: int
    height: int
    insts: list[Inst] = field(default_factory=list)


def _blob(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=np.uint8)
    cv2.circle(m, (40, 80), 9, 1, -1)
    cv2.rectangle(m, (44, 76), (58, 84), 1, -1)
    return m.astype(bool)


def scene() -> list[Img]:
    """Two images with every kind of shape the importers support."""
    a = Img("a.png", 160, 120)
    a.insts = [
        Inst("bubble", "polygon", [[10, 10], [40, 12], [45, 35], [25, 45], [8, 30]]),
        Inst("drop", "rect", (60.0, 10.0, 90.0, 30.0)),
        Inst("bubble", "circle", (120.0, 30.0, 12.0)),
        Inst(
            "bubble", "group", [[[90, 60], [110, 60], [110, 75], [90, 75]], [[115, 60], [135, 62], [130, 80]]]
        ),
        Inst("drop", "mask", _blob(120, 160)),
    ]
    b = Img("b.png", 128, 96)
    b.insts = [
        Inst("drop", "ellipse", (60.0, 50.0, 25.0, 10.0, math.radians(30))),
        Inst("bubble", "polygon", [[5, 60], [30, 62], [28, 90], [6, 88]]),
    ]
    return [a, b]


def write_images(folder: Path, imgs: list[Img]) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for im in imgs:
        cv2.imwrite(str(folder / im.name), rng.integers(0, 255, (im.height, im.width, 3), dtype=np.uint8))


def write_coco(folder: Path, imgs: list[Img], name: str = "annotations.json") -> Path:
    images, anns = [], []
    for i, im in enumerate(imgs, start=1):
        images.append({"id": i, "file_name": im.name, "width": im.width, "height": im.height})
        for inst in im.insts:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": CLASSES.index(inst.label) + 1,
                    "iscrowd": 0,
                    "segmentation": inst.coco_segmentation(im.height, im.width),
                    "bbox": [0, 0, 1, 1],
                    "area": 1,
                }
            )
    cats = [{"id": k + 1, "name": n, "supercategory": "none"} for k, n in enumerate(CLASSES)]
    path = folder / name
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def _png_b64(mask: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", mask.astype(np.uint8) * 255)
    assert ok
    return base64.b64encode(buf.tobytes()).decode("ascii")


def labelme_shapes(im: Img) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = []
    for k, inst in enumerate(im.insts):
        base = {"label": inst.label, "group_id": None, "flags": {}, "description": ""}
        g = inst.geom
        if inst.kind == "rect":
            shapes.append({**base, "shape_type": "rectangle", "points": [[g[0], g[1]], [g[2], g[3]]]})
        elif inst.kind == "circle":
            shapes.append({**base, "shape_type": "circle", "points": [[g[0], g[1]], [g[0], g[1] + g[2]]]})
        elif inst.kind == "group":
            for p in g:
                shapes.append({**base, "group_id": 7 + k, "shape_type": "polygon", "points": p})
        elif inst.kind == "mask":
            ys, xs = np.nonzero(g)
            x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())
            crop = g[y0 : y1 + 1, x0 : x1 + 1]
            shapes.append(
                {**base, "shape_type": "mask", "points": [[x0, y0], [x1, y1]], "mask": _png_b64(crop)}
            )
        else:  # polygon, and ellipses (labelme has none) as their polygon
            shapes.append({**base, "shape_type": "polygon", "points": inst.polygons()[0].round(3).tolist()})
    return shapes


def write_labelme(folder: Path, imgs: list[Img], embed: bool = False, image_dir: str = "") -> Path:
    """One labelme JSON per image in ``folder``; ``imagePath`` is ``image_dir + name`` (relative, like labelme)."""
    folder.mkdir(parents=True, exist_ok=True)
    for im in imgs:
        data = None
        if embed:
            data = base64.b64encode((folder / image_dir / im.name).read_bytes()).decode("ascii")
        doc = {
            "version": "5.4.1",
            "flags": {},
            "shapes": labelme_shapes(im),
            "imagePath": image_dir + im.name,
            "imageData": data,
            "imageHeight": im.height,
            "imageWidth": im.width,
        }
        (folder / (Path(im.name).stem + ".json")).write_text(json.dumps(doc))
    return folder


VIA_SUPPORTED = ("polygon", "rect", "circle", "ellipse")


def via_shape(inst: Inst, version: int) -> dict[str, Any]:
    g = inst.geom
    if inst.kind == "rect":
        return {"name": "rect", "x": g[0], "y": g[1], "width": g[2] - g[0], "height": g[3] - g[1]}
    if inst.kind == "circle":
        return {"name": "circle", "cx": g[0], "cy": g[1], "r": g[2]}
    if inst.kind == "ellipse" and (version == 2 or g[4] == 0):
        d = {"name": "ellipse", "cx": g[0], "cy": g[1], "rx": g[2], "ry": g[3]}
        if version == 2:
            d["theta"] = g[4]
        return d
    p = inst.polygons()[0]
    return {"name": "polygon", "all_points_x": p[:, 0].tolist(), "all_points_y": p[:, 1].tolist()}


def write_via(
    path: Path, imgs: list[Img], version: int, project: bool = False, attrs: dict | None = None
) -> Path:
    """VIA JSON; instances VIA cannot express (masks, groups) are left out."""
    meta: dict[str, Any] = {}
    for im in imgs:
        regions = [
            {
                "shape_attributes": via_shape(i, version),
                "region_attributes": {"type": i.label, **(attrs or {})},
            }
            for i in im.insts
            if i.kind in VIA_SUPPORTED
        ]
        size = (path.parent / im.name).stat().st_size
        entry: dict[str, Any] = {"filename": im.name, "size": size, "file_attributes": {}}
        if version == 1:
            entry["regions"] = {str(k): r for k, r in enumerate(regions)}
            entry["base64_img_data"] = ""
            entry["fileref"] = ""
        else:
            entry["regions"] = regions
        meta[f"{im.name}{size}"] = entry
    if project:
        doc: dict[str, Any] = {
            "_via_settings": {"ui": {}, "core": {}, "project": {"name": "via_project"}},
            "_via_img_metadata": meta,
            "_via_attributes": {
                "region": {
                    "type": {
                        "type": "dropdown",
                        "description": "",
                        "options": {c: "" for c in CLASSES},
                        "default_options": {},
                    }
                },
                "file": {},
            },
            "_via_data_format_version": "2.0.10",
            "_via_image_id_list": list(meta),
        }
    else:
        doc = meta
    path.write_text(json.dumps(doc))
    return path


def write_cvat(path: Path, imgs: list[Img]) -> Path:
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<annotations>",
        "  <version>1.1</version>",
        "  <meta><task>",
        "    <labels>",
    ]
    lines += [f"      <label><name>{c}</name><type>any</type><attributes/></label>" for c in CLASSES]
    lines += ["    </labels>", "  </task></meta>"]
    for i, im in enumerate(imgs):
        lines.append(f'  <image id="{i}" name="{im.name}" width="{im.width}" height="{im.height}">')
        for k, inst in enumerate(im.insts):
            lab = f'label="{inst.label}" source="manual" occluded="0" z_order="0"'
            g = inst.geom
            if inst.kind == "rect":
                lines.append(
                    f'    <box {lab} xtl="{g[0]:.2f}" ytl="{g[1]:.2f}" xbr="{g[2]:.2f}" ybr="{g[3]:.2f}"/>'
                )
            elif inst.kind == "ellipse":
                lines.append(
                    f'    <ellipse {lab} cx="{g[0]:.2f}" cy="{g[1]:.2f}" rx="{g[2]:.2f}" ry="{g[3]:.2f}" '
                    f'rotation="{math.degrees(g[4]):.2f}"/>'
                )
            elif inst.kind == "mask":
                attrs = " ".join(f'{key}="{v}"' for key, v in encode_cvat_mask(g).items())
                lines.append(f"    <mask {lab} {attrs}/>")
            elif inst.kind == "group":
                for p in g:
                    pts = ";".join(f"{x:.2f},{y:.2f}" for x, y in p)
                    lines.append(f'    <polygon {lab} points="{pts}" group_id="{k + 1}"/>')
            else:  # polygon, circle (CVAT has none) as its polygon
                pts = ";".join(f"{x:.2f},{y:.2f}" for x, y in inst.polygons()[0])
                lines.append(f'    <polygon {lab} points="{pts}"/>')
        lines.append("  </image>")
    lines.append("</annotations>")
    path.write_text("\n".join(lines))
    return path


@pytest.fixture()
def twin(tmp_path: Path) -> tuple[Path, list[Img]]:
    """A folder with the scene's images and its COCO twin ``annotations.json``."""
    imgs = scene()
    write_images(tmp_path, imgs)
    return write_coco(tmp_path, imgs), imgs


@pytest.fixture()
def fx() -> SimpleNamespace:
    """The writers above, for test modules (conftest modules cannot be imported by name)."""
    return SimpleNamespace(
        scene=scene,
        write_images=write_images,
        write_coco=write_coco,
        write_labelme=write_labelme,
        write_via=write_via,
        write_cvat=write_cvat,
        CLASSES=CLASSES,
        TAYLOR=TAYLOR,
        VIA_SUPPORTED=VIA_SUPPORTED,
        Img=Img,
        Inst=Inst,
    )
