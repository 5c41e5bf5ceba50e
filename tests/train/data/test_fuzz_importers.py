"""Property-based fuzz of every annotation importer: plausible but wrong documents never crash a load.

Each importer gets a valid document of its format (COCO; labelme; VIA 1, VIA 2 and a VIA 2 project; VIA 3,
which is refused; CVAT XML) and hypothesis breaks it a few places at a time: values replaced by other
types, NaN, infinities, negative or huge numbers, strings where numbers go, empty lists and objects; keys
deleted; items duplicated or wrapped in a list. The broken document is written to a file and loaded with
``load_dataset`` (and converted to COCO, as ``maskrt convert`` does): the only exception allowed out is
:class:`MaskrtError`; a dataset with its problems recorded is the usual outcome.

The mask-image importer has no document to break: hypothesis draws the mask files (type, size, channels,
values, format, cut-off or garbage bytes, TIFF stacks) and mask options (usable, now and then wrong).

The default suite runs a few dozen examples per format (about 5 s in all); ``-m slow`` runs a few thousand
each (same bodies). A crash in CVAT (whose importer is not fixed here) is an expected failure for now.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maskrt import rle as rle_codec
from maskrt.errors import MaskrtError
from maskrt.train.data import load_dataset

W, H = 40, 30
QUICK, FULL = 60, 3000

EXAMPLES = [pytest.param(QUICK, id="quick"), pytest.param(FULL, id="full", marks=pytest.mark.slow)]

# keys the importers read, so that replaced and added keys often mean something to them
KEYS = [
    "id",
    "image_id",
    "category_id",
    "file_name",
    "width",
    "height",
    "segmentation",
    "counts",
    "size",
    "iscrowd",
    "name",
    "supercategory",
    "shapes",
    "label",
    "points",
    "shape_type",
    "group_id",
    "mask",
    "imagePath",
    "imageData",
    "imageWidth",
    "imageHeight",
    "filename",
    "regions",
    "shape_attributes",
    "region_attributes",
    "all_points_x",
    "all_points_y",
    "x",
    "y",
    "cx",
    "cy",
    "r",
    "rx",
    "ry",
    "theta",
    "type",
    "options",
    "_via_img_metadata",
    "_via_attributes",
    "base64_img_data",
    "region",
]
WORDS = [
    "",
    "nan",
    "NaN",
    "inf",
    "-1",
    "0",
    "1",
    "1e309",
    "3.5",
    "abc",
    "bubble",
    "drop",
    "a.png",
    "b.png",
    "missing.png",
    "../a.png",
    "/",
    "polygon",
    "rectangle",
    "rect",
    "circle",
    "ellipse",
    "mask",
    "point",
    "polyline",
    "line",
    "RLE",
    "data:image/png;base64,AAAA",
    "iVBORw0KGgo=",
    "__ignore__",
    "\x00",
    "ü",
]
NUMBERS = [0, 1, -1, 2, 3, 0.5, -0.0, 1e-9, 1e6, -1e6, 2**31, 2**63, -(2**63), 10**30, 1e308, -1e308]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.sampled_from(WORDS),
    st.text(max_size=6),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=10,
)


def _slots(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every ``(container, key)`` in a JSON tree: dict keys and list positions, depth first."""
    if isinstance(node, dict):
        for k in list(node):
            yield node, k
            yield from _slots(node[k])
    elif isinstance(node, list):
        for i in range(len(node)):
            yield node, i
            yield from _slots(node[i])


def _tweak(draw: st.DrawFn, value: Any) -> Any:
    """A wrong value that stays close to ``value``: same shape, broken numbers or types."""
    if isinstance(value, bool) or value is None:
        return draw(scalars)
    if isinstance(value, (int, float)):
        return draw(
            st.sampled_from([-value, value * 1e6, value + 0.5, str(value), [value], math.nan]) | scalars
        )
    if isinstance(value, str):
        return draw(
            st.sampled_from([value + "x", value[:-1], value * 3, "", [value], {value: value}]) | scalars
        )
    if isinstance(value, list):
        return draw(st.sampled_from([[], value[:1], value + value, [value], value[::-1]]) | values)
    return draw(st.sampled_from([{}, [value], list(value)]) | values)


@st.composite
def broken(draw: st.DrawFn, template: Any) -> Any:
    """``template`` (a JSON tree) broken in 1 to 6 places."""
    doc = copy.deepcopy(template)
    if draw(st.integers(0, 30)) == 0:
        return draw(values)  # not even the right kind of document
    for _ in range(draw(st.integers(1, 6))):
        slots = list(_slots(doc))
        if not slots:
            break
        node, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["replace", "tweak", "tweak", "delete", "duplicate", "add"]))
        if op == "replace":
            node[key] = draw(values)
        elif op == "tweak":
            node[key] = _tweak(draw, node[key])
        elif op == "delete":
            del node[key]
        elif op == "duplicate":
            if isinstance(node, list):
                node.insert(key, copy.deepcopy(node[key]))
            else:
                node[draw(st.sampled_from(KEYS))] = copy.deepcopy(node[key])
        elif isinstance(node[key], dict):
            node[key][draw(st.sampled_from(KEYS))] = draw(values)
        elif isinstance(node[key], list):
            node[key].append(draw(values))
    return doc


def _png_b64(pixels: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", pixels)[1].tobytes()).decode("ascii")


SQUARE = [5.0, 5.0, 20.0, 5.0, 20.0, 20.0, 5.0, 20.0]
BLOB = np.zeros((H, W), dtype=bool)
BLOB[8:20, 10:30] = True


def coco_doc() -> dict[str, Any]:
    rle = rle_codec.encode(BLOB)
    runs = rle_codec.string_to_counts(rle["counts"])
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": W, "height": H},
            {"id": 2, "file_name": "b.png", "width": W, "height": H},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [SQUARE],
                "iscrowd": 0,
                "bbox": [5, 5, 15, 15],
            },
            {"id": 2, "image_id": 1, "category_id": 2, "segmentation": rle, "iscrowd": 0},
            {
                "id": 3,
                "image_id": 2,
                "category_id": 1,
                "segmentation": {"size": [H, W], "counts": runs},
                "iscrowd": 1,
            },
            {"id": 4, "image_id": 2, "category_id": 2, "segmentation": SQUARE[:6], "iscrowd": 0},
        ],
        "categories": [
            {"id": 0, "name": "things", "supercategory": "none"},
            {"id": 1, "name": "bubble", "supercategory": "things"},
            {"id": 2, "name": "drop", "supercategory": "things"},
        ],
    }


def labelme_doc() -> dict[str, Any]:
    crop = (BLOB[8:20, 10:30] * 255).astype(np.uint8)
    base = {"group_id": None, "flags": {}, "description": ""}
    return {
        "version": "5.4.1",
        "flags": {},
        "shapes": [
            {
                **base,
                "label": "bubble",
                "shape_type": "polygon",
                "points": [[5, 5], [20, 5], [20, 20], [5, 20]],
            },
            {**base, "label": "drop", "shape_type": "rectangle", "points": [[22, 2], [35, 12]]},
            {**base, "label": "bubble", "shape_type": "circle", "points": [[30, 20], [30, 26]]},
            {
                **base,
                "label": "drop",
                "shape_type": "mask",
                "points": [[10, 8], [29, 19]],
                "mask": _png_b64(crop),
            },
            {
                **base,
                "label": "bubble",
                "group_id": 3,
                "shape_type": "polygon",
                "points": [[1, 1], [4, 1], [4, 4]],
            },
            {
                **base,
                "label": "bubble",
                "group_id": 3,
                "shape_type": "polygon",
                "points": [[6, 25], [9, 25], [9, 28]],
            },
            {**base, "label": "drop", "shape_type": "point", "points": [[3, 3]]},
        ],
        "imagePath": "a.png",
        "imageData": None,
        "imageHeight": H,
        "imageWidth": W,
    }


def _via_regions() -> list[dict[str, Any]]:
    shapes = [
        {"name": "polygon", "all_points_x": [5, 20, 20, 5], "all_points_y": [5, 5, 20, 20]},
        {"name": "rect", "x": 22, "y": 2, "width": 13, "height": 10},
        {"name": "circle", "cx": 30, "cy": 20, "r": 6},
        {"name": "ellipse", "cx": 12, "cy": 22, "rx": 6, "ry": 3, "theta": 0.5},
        {"name": "polyline", "all_points_x": [1, 2], "all_points_y": [1, 2]},
    ]
    return [
        {"shape_attributes": s, "region_attributes": {"type": ("bubble", "drop")[k % 2]}}
        for k, s in enumerate(shapes)
    ]


def via_doc(version: int, project: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for name in ("a.png", "b.png"):
        regions = _via_regions()
        entry: dict[str, Any] = {"filename": name, "size": 1234, "file_attributes": {}}
        if version == 1:
            entry.update(regions={str(k): r for k, r in enumerate(regions)}, base64_img_data="", fileref="")
        else:
            entry["regions"] = regions
        meta[f"{name}1234"] = entry
    if not project:
        return meta
    return {
        "_via_settings": {"project": {"name": "p"}},
        "_via_img_metadata": meta,
        "_via_attributes": {
            "region": {
                "type": {"type": "dropdown", "options": {"bubble": "", "drop": ""}, "default_options": {}}
            },
            "file": {},
        },
        "_via_data_format_version": "2.0.10",
        "_via_image_id_list": list(meta),
    }


def via3_doc() -> dict[str, Any]:
    return {
        "project": {"pid": "__VIA_PROJECT_ID__", "vid_list": ["1"], "pname": "p"},
        "config": {"file": {"loc_prefix": {"1": "", "2": ""}}},
        "attribute": {
            "1": {"aname": "type", "anchor_id": "FILE1_Z0_XY1", "type": 4, "options": {"0": "bubble"}}
        },
        "file": {"1": {"fid": "1", "fname": "a.png", "type": 2, "loc": 1, "src": ""}},
        "view": {"1": {"fid_list": ["1"]}},
        "metadata": {
            "1_abc": {"vid": "1", "flg": 0, "z": [], "xy": [7, 5, 5, 20, 5, 20, 20], "av": {"1": "0"}}
        },
        "_via_data_format_version": "3.1.1",
    }


def cvat_doc() -> dict[str, Any]:
    """CVAT XML as a JSON tree: ``{"tag", "attrib", "children"}`` (attribute values are strings)."""

    def el(
        tag: str, children: list[Any] | None = None, text: str | None = None, **attrib: str
    ) -> dict[str, Any]:
        node: dict[str, Any] = {"tag": tag, "attrib": dict(attrib), "children": children or []}
        if text is not None:
            node["text"] = text
        return node

    lab = {"label": "bubble", "occluded": "0", "source": "manual", "z_order": "0"}
    labels = [el("label", [el("name", text=n), el("type", text="any")]) for n in ("bubble", "drop")]
    shapes = [
        el("polygon", points="5.00,5.00;20.00,5.00;20.00,20.00;5.00,20.00", **lab),
        el("box", xtl="22", ytl="2", xbr="35", ybr="12", rotation="10", **{**lab, "label": "drop"}),
        el("ellipse", cx="30", cy="20", rx="6", ry="4", rotation="0", **lab),
        el("mask", rle="2, 3, 4, 3", left="10", top="8", width="4", height="3", **lab),
        el("polygon", points="1,1;4,1;4,4", group_id="2", **lab),
        el("polygon", points="6,25;9,25;9,28", group_id="2", **lab),
        el("polyline", points="1,1;2,2", **lab),
    ]
    images = [
        el("image", shapes, id="0", name="a.png", width=str(W), height=str(H)),
        el("image", [], id="1", name="b.png", width=str(W), height=str(H), subset="train"),
    ]
    meta = el("meta", [el("task", [el("labels", labels)])])
    return el("annotations", [el("version", text="1.1"), meta, *images])


def _xml(node: Any, parent: ET.Element | None = None) -> ET.Element:
    """The JSON tree back as XML; broken nodes (a number, a list, a missing tag) become odd elements."""
    if not isinstance(node, dict):
        node = {"tag": "junk", "text": node}
    tag = node.get("tag")
    tag = tag if isinstance(tag, str) and tag.isidentifier() else "junk"
    e = ET.Element(tag) if parent is None else ET.SubElement(parent, tag)
    attrib = node.get("attrib")
    for k, v in attrib.items() if isinstance(attrib, dict) else []:
        if isinstance(k, str) and k.isidentifier():
            e.set(k, v if isinstance(v, str) else json.dumps(v))
    if "text" in node:
        e.text = node["text"] if isinstance(node["text"], str) else json.dumps(node["text"])
    children = node.get("children")
    for child in children if isinstance(children, list) else []:
        _xml(child, e)
    return e


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two small real images, and the embedded-image cache redirected under the test's own folder."""
    root = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(root / name), rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    for sub in ("coco", "via", "via3", "cvat"):  # one annotation file each, rewritten per example
        (root / sub).mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MASKRT_CACHE", str(root / "cache"))
        yield root


def only_maskrt_errors(load: Callable[[], Any]) -> None:
    """Load (and convert to COCO, as `maskrt convert` does); nothing but MaskrtError may escape."""
    try:
        ds = load()
    except MaskrtError as exc:
        assert str(exc).strip() and "\n" not in str(exc)  # one line for the CLI
        return
    json.dumps(ds.to_coco())
    assert all(isinstance(p, str) for p in ds.problems)


def run(
    strategy: st.SearchStrategy[Any], examples: int, write: Callable[[Any], Path], **load_kw: Any
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=examples == QUICK,  # the default suite is the same every run
        report_multiple_bugs=False,  # the first crash as itself (an xfail names its type)
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(doc=strategy)
    def check(doc: Any) -> None:
        target = write(doc)
        only_maskrt_errors(lambda: load_dataset(target, **load_kw))

    check()


def json_writer(path: Path) -> Callable[[Any], Path]:
    def write(doc: Any) -> Path:
        path.write_text(json.dumps(doc))
        return path

    return write


@pytest.mark.parametrize("examples", EXAMPLES)
def test_coco(folder: Path, examples: int) -> None:
    run(
        broken(coco_doc()),
        examples,
        json_writer(folder / "coco" / "annotations.json"),
        fmt="coco",
        images=folder,
    )


@pytest.mark.parametrize("examples", EXAMPLES)
def test_labelme(folder: Path, examples: int) -> None:
    # one labelme JSON beside its image, read as labelme whatever the fuzz made of its keys
    run(broken(labelme_doc()), examples, json_writer(folder / "a.json"), fmt="labelme")


@pytest.mark.parametrize("examples", EXAMPLES)
@pytest.mark.parametrize(
    ("version", "project"), [(1, False), (2, False), (2, True)], ids=["via1", "via2", "via2-project"]
)
def test_via(folder: Path, examples: int, version: int, project: bool) -> None:
    run(
        broken(via_doc(version, project)),
        examples,
        json_writer(folder / "via" / "via.json"),
        fmt="via",
        images=folder,
    )


@pytest.mark.parametrize("examples", EXAMPLES)
def test_via3_is_refused_or_read_as_what_it_became(folder: Path, examples: int) -> None:
    run(broken(via3_doc()), examples, json_writer(folder / "via3" / "project.json"), images=folder)


@pytest.mark.parametrize("examples", EXAMPLES)
def test_cvat(folder: Path, examples: int) -> None:
    path = folder / "cvat" / "annotations.xml"

    def write(doc: Any) -> Path:
        ET.ElementTree(_xml(doc)).write(path, encoding="utf-8", xml_declaration=True)
        return path

    run(broken(cvat_doc()), examples, write, images=folder)


# mask images: no document to break, so hypothesis draws the masks themselves (type, size, channels, values,
# format, cut-off or garbage bytes, stacks) and the options that say what they mean
MASK_SUFFIXES = [".png", ".tif", ".bmp", ".jpg"]


@st.composite
def mask_case(draw: st.DrawFn) -> dict[str, Any]:
    dtype = draw(st.sampled_from([np.uint8, np.uint16, np.float32]))
    h, w = draw(st.sampled_from([(H, W)] * 6 + [(1, 1), (H + 3, W), (H, W - 5)]))  # the image is W x H
    channels = draw(st.sampled_from([None, None, 3, 4]))
    pattern = draw(st.sampled_from(["zeros", "noise", "levels", "blobs", "max"]))
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    top = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
    shape = (h, w) if channels is None else (h, w, channels)
    if pattern == "zeros":
        pixels = np.zeros(shape)
    elif pattern == "noise":
        pixels = rng.uniform(0, top, shape)
    elif pattern == "levels":
        pixels = rng.choice([0, 1, 2, 3, 255, top], shape)
    elif pattern == "max":
        pixels = np.full(shape, top)
    else:
        pixels = np.zeros(shape)
        pixels[h // 4 : h // 2, w // 4 : w // 2] = top
        pixels[h // 2 + 1 :, w // 2 + 1 :] = draw(st.sampled_from([1, 2, 7, top]))
    suffix = draw(st.sampled_from(MASK_SUFFIXES))
    damage = draw(st.sampled_from(["none"] * 7 + ["cut", "garbage", "empty"]))
    # usable options most of the time (so the masks are read), one or two of them wrong now and then
    options: dict[str, Any] = {
        "kind": draw(st.sampled_from(["auto", "binary", "labels", "instances"])),
        "classes": draw(
            st.none() | st.dictionaries(st.sampled_from([1, 2, 3, 7, 255]), st.sampled_from(WORDS[9:13]))
        ),
        "threshold": draw(st.sampled_from([0.5, 0.5, 1.0, 128.0, 1e-12, 1e12])),
        "connectivity": draw(st.sampled_from([8, 4])),
        "min_area": draw(st.sampled_from([4, 1, 10**9])),
        "split": draw(st.booleans()),
        "split_ratio": draw(st.sampled_from([0.7, 1.0, 0.01])),
    }
    wrong = {
        "kind": ["bogus", ""],
        "classes": [{0: "x"}, {-1: "x"}, {70000: "x"}, {1: ""}],
        "threshold": [0.0, -1.0, math.nan, math.inf],
        "connectivity": [0, 6],
        "min_area": [0, -3],
        "split_ratio": [0.0, 1.5, math.nan],
    }
    for key in draw(
        st.lists(st.sampled_from(sorted(wrong)), max_size=2) if draw(st.integers(0, 3)) == 0 else st.just([])
    ):
        options[key] = draw(st.sampled_from(wrong[key]))
    return {
        "pixels": pixels.astype(dtype),
        "suffix": suffix,
        "damage": damage,
        "layout": draw(st.sampled_from(["folders", "beside"])),
        "stack": suffix == ".tif" and draw(st.integers(0, 3)) == 0,
        "options": options,
    }


def write_mask_case(root: Path, case: dict[str, Any]) -> Path:
    """The image and its mask, in the case's layout, in a fresh folder; the folder."""
    import shutil

    folder = root / "masks-case"
    shutil.rmtree(folder, ignore_errors=True)
    image_dir, mask_dir, mask_name = folder, folder, "a_mask"
    if case["layout"] == "folders":
        image_dir, mask_dir, mask_name = folder / "images", folder / "masks", "a"
    image_dir.mkdir(parents=True)
    mask_dir.mkdir(parents=True, exist_ok=True)
    mask = mask_dir / f"{mask_name}{case['suffix']}"
    pixels = case["pixels"]
    if case["stack"]:
        frames = [np.full((H, W, 3), 90, np.uint8)] * 2
        assert cv2.imwritemulti(str(image_dir / "a.tif"), frames)
        assert cv2.imwritemulti(str(mask), [pixels] * draw_pages(pixels))
    else:
        shutil.copy(root / "a.png", image_dir / "a.png")
        if case["suffix"] != ".tif" and pixels.dtype == np.float32:
            pixels = (pixels * 255).astype(np.uint8)  # only TIFF keeps floats
        if case["suffix"] in (".bmp", ".jpg") and pixels.dtype != np.uint8:
            pixels = pixels.astype(np.uint8)
        if not cv2.imwrite(str(mask), pixels):
            mask.write_bytes(b"")
    data = mask.read_bytes()
    if case["damage"] == "cut":
        mask.write_bytes(data[: len(data) // 2])
    elif case["damage"] == "garbage":
        mask.write_bytes(data[:8] + bytes(range(256)) * 2)
    elif case["damage"] == "empty":
        mask.write_bytes(b"")
    return folder


def draw_pages(pixels: np.ndarray) -> int:
    """Mask stack pages: the image's 2, or one when the mask is odd-sized (a page-count mismatch too)."""
    return 2 if pixels.shape[:2] == (H, W) else 1


@pytest.mark.parametrize("examples", EXAMPLES)
def test_mask_images(folder: Path, examples: int) -> None:
    from maskrt.train.data.masks import MaskOptions

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=examples == QUICK,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=mask_case())
    def check(case: dict[str, Any]) -> None:
        target = write_mask_case(folder, case)

        def load() -> Any:
            options = MaskOptions(**case["options"])
            return load_dataset(target, "masks", mask_options=options, cache_dir=folder / "cache")

        only_maskrt_errors(load)

    check()
