"""One entry point for every annotation format: find what a path holds and load it as a :class:`Dataset`.

``load_dataset`` accepts a file or a folder. A folder may hold one COCO JSON (``_annotations.coco.json``,
``annotations.json``, ``annotations/instances_*.json``), a VIA JSON, a CVAT ``annotations.xml``, many
labelme JSONs, mask images (``images/`` + ``masks/``, or ``NAME_mask.png`` beside ``NAME.png``, or TIFF
stacks; see :mod:`maskrt.train.data.masks`), or split folders ``train/``, ``valid/`` (or ``val/``), ``test/``
which are loaded and merged (classes matched by name).

Example:
    >>> ds = load_dataset("data/taylor-bubbles-coco")
    >>> ds.classes, ds.num_instances
    (['taylor bubble'], 151)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from maskrt.errors import MaskrtError
from maskrt.runtime.images import IMAGE_SUFFIXES
from maskrt.train.data.files import json_kind
from maskrt.train.data.problems import display_name
from maskrt.train.data.record import Dataset

if TYPE_CHECKING:
    from maskrt.train.data.masks import MaskOptions

logger = logging.getLogger(__name__)

FORMATS = ("coco", "labelme", "via", "cvat", "masks")
SPLIT_NAMES = ("train", "valid", "val", "validation", "test")
COCO_NAMES = ("_annotations.coco.json", "annotations.json", "instances_default.json")


def _is_cvat(path: Path) -> bool:
    from maskrt.train.data.files import peek_json

    head = peek_json(path, 4096)
    return "<annotations" in head


def _find_in_folder(folder: Path, fmt: str) -> tuple[str, Path] | None:
    """The format and file (or folder, for labelme) that ``folder`` holds, ``None`` when it holds none."""
    want = (lambda f: True) if fmt == "auto" else (lambda f: f == fmt)
    if want("coco"):
        for name in COCO_NAMES:
            if (folder / name).is_file():
                return "coco", folder / name
        inst = (
            sorted((folder / "annotations").glob("instances_*.json"))
            if (folder / "annotations").is_dir()
            else []
        )
        if len(inst) == 1:
            return "coco", inst[0]
        if len(inst) > 1:
            raise MaskrtError(
                f"{folder}: several COCO files in annotations/ ({', '.join(p.name for p in inst)}); pass one of them"
            )
    jsons = sorted(folder.glob("*.json"))
    kinds: dict[str, list[Path]] = {}
    for j in jsons:
        k = json_kind(j)
        if k is not None:
            kinds.setdefault(k, []).append(j)
    if want("via") and "via3" in kinds and "via" not in kinds and fmt in ("auto", "via"):
        raise MaskrtError(
            f"{kinds['via3'][0]}: VIA version 3 projects are not supported; export as VIA 2 JSON or COCO"
        )
    for k in ("coco", "via"):
        if want(k) and k in kinds:
            if len(kinds[k]) > 1:
                names = ", ".join(p.name for p in kinds[k])
                raise MaskrtError(f"{folder}: several {k.upper()} files ({names}); pass the one to load")
            return k, kinds[k][0]
    if want("cvat"):
        if (folder / "annotations.xml").is_file():
            return "cvat", folder / "annotations.xml"
        xmls = [x for x in sorted(folder.glob("*.xml")) if _is_cvat(x)]
        if len(xmls) == 1:
            return "cvat", xmls[0]
        if len(xmls) > 1:
            raise MaskrtError(
                f"{folder}: several CVAT files ({', '.join(p.name for p in xmls)}); pass one of them"
            )
    if want("labelme"):
        if "labelme" in kinds:
            return "labelme", folder
        if fmt == "labelme" or not any(_split_dirs(folder)):
            for j in folder.rglob("*.json"):
                if json_kind(j) == "labelme":
                    return "labelme", folder
    if want("masks"):
        from maskrt.train.data.masks import is_mask_folder

        if fmt == "masks" or is_mask_folder(folder):
            return "masks", folder
    return None


def _split_dirs(folder: Path) -> list[Path]:
    return [folder / s for s in SPLIT_NAMES if (folder / s).is_dir()]


def has_splits(folder: Path) -> bool:
    """Whether ``folder`` is a parent of ``train/``, ``valid/``, ... splits with no dataset of its own."""
    return folder.is_dir() and bool(_split_dirs(folder)) and _find_in_folder(folder, "auto") is None


def detect_format(path: str | Path, fmt: str = "auto") -> tuple[str, Path]:
    """Which importer reads ``path`` and the file (or labelme folder) it reads.

    Raises:
        MaskrtError: nothing known is found, naming what was looked for.
    """
    path = Path(path)
    if fmt not in ("auto",) + FORMATS:
        raise MaskrtError(f"unknown format {fmt!r}; choose one of auto, {', '.join(FORMATS)}")
    if not path.exists():
        raise MaskrtError(f"{path}: no such file or folder; check the path")
    if path.is_file():
        if path.suffix.lower() == ".xml":
            if fmt in ("auto", "cvat"):
                return "cvat", path
        elif path.suffix.lower() in IMAGE_SUFFIXES and fmt in ("auto", "masks"):
            return "masks", path  # an image or TIFF stack with its mask beside it
        elif fmt != "auto":
            return fmt, path
        else:
            k = json_kind(path)
            if k == "via3":
                raise MaskrtError(
                    f"{path}: VIA version 3 projects are not supported; export as VIA 2 JSON or COCO"
                )
            if k is not None:
                return k, path
        raise MaskrtError(f"{path}: not a known annotation file; pass --format {'|'.join(FORMATS)}")
    found = _find_in_folder(path, fmt)
    if found is None:
        looked = "COCO JSON, VIA JSON, CVAT XML or labelme JSONs" if fmt == "auto" else f"{fmt} annotations"
        masks = " and no mask images (images/ + masks/, or NAME_mask.png beside NAME.png)" if fmt == "auto" else ""
        raise MaskrtError(f"{path}: no {looked} found in this folder{masks}; pass the annotation file itself")
    return found


def _load_one(
    fmt: str,
    target: Path,
    shown: str,
    *,
    class_attribute: str | None,
    images: Path | None,
    decode_images: bool,
    cache_dir: Path | None,
    mask_options: MaskOptions | None = None,
) -> Dataset:
    if fmt == "masks":
        from maskrt.train.data.masks import load_masks

        return load_masks(
            target, mask_options, images=images, shown=shown, decode_images=decode_images, cache_dir=cache_dir
        )
    if fmt == "coco":
        from maskrt.train.data.coco import load_coco

        return load_coco(target, images=images, shown=shown, decode_images=decode_images)
    if fmt == "labelme":
        from maskrt.train.data.labelme import load_labelme

        return load_labelme(target, shown=shown, decode_images=decode_images, cache_dir=cache_dir)
    if fmt == "via":
        from maskrt.train.data.via import load_via

        return load_via(
            target,
            images=images,
            shown=shown,
            class_attribute=class_attribute,
            decode_images=decode_images,
            cache_dir=cache_dir,
        )
    from maskrt.train.data.cvat import load_cvat

    return load_cvat(target, images=images, shown=shown, decode_images=decode_images)


def load_dataset(
    path: str | Path,
    fmt: str = "auto",
    *,
    class_attribute: str | None = None,
    images: str | Path | None = None,
    decode_images: bool = False,
    cache_dir: str | Path | None = None,
    allow_empty: bool = False,
    on_split: Callable[[str], None] | None = None,
    mask_options: MaskOptions | None = None,
) -> Dataset:
    """Load annotations in any supported format as one :class:`Dataset`, fixing or skipping bad items.

    Args:
        path: an annotation file, a folder holding one, a labelme folder, or a folder of split folders.
        fmt: ``auto`` (detect), ``coco``, ``labelme``, ``via``, ``cvat`` or ``masks``.
        class_attribute: VIA only: the region attribute that holds the class (default: the only one).
        images: folder holding the images when they are not beside the annotation file.
        decode_images: decode every image to prove it is readable (default: read headers only).
        cache_dir: where images embedded in labelme/VIA files are written (default: the user cache).
        allow_empty: return a dataset with no instance instead of raising (``maskrt data check`` uses it).
        on_split: called with each split's name before it loads (for progress reporting).
        mask_options: mask images only: what the masks mean (kind, threshold, connectivity, minimum area,
            classes, split); default binary masks of class ``bubble``.

    Returns:
        The dataset; ``Dataset.problems`` lists every problem found, one line each.

    Raises:
        MaskrtError: the path holds no known annotations, a file cannot be read, or no instance is usable.
    """
    path = Path(path)
    img_dir = Path(images) if images is not None else None
    if img_dir is not None and not img_dir.is_dir():
        raise MaskrtError(f"{img_dir}: images folder not found; check --images")
    cache = Path(cache_dir) if cache_dir is not None else None
    opts = {
        "class_attribute": class_attribute,
        "images": img_dir,
        "decode_images": decode_images,
        "cache_dir": cache,
        "mask_options": mask_options,
    }

    splits = _split_dirs(path) if path.is_dir() else []
    direct = None
    if path.is_dir():
        direct = _find_in_folder(path, fmt)
    if direct is None and splits:
        ds: Dataset | None = None
        for s in splits:
            if on_split is not None:
                on_split(s.name)
            sub_fmt, target = detect_format(s, fmt)
            split_opts = dict(opts)
            if img_dir is not None and (img_dir / s.name).is_dir():
                split_opts["images"] = img_dir / s.name  # --images DIR with DIR/train, DIR/valid, ...
            part = _load_one(sub_fmt, target, display_name(target, path), **split_opts)  # type: ignore[arg-type]
            logger.info(
                "%s: %s, %d images, %d instances", s.name, sub_fmt, len(part.images), part.num_instances
            )
            ds = part if ds is None else ds.merged(part)
        assert ds is not None
        ds.source = path
    else:
        kind, target = direct if direct is not None else detect_format(path, fmt)
        shown = display_name(target, path) if path.is_dir() else str(path)
        ds = _load_one(kind, target, shown, **opts)  # type: ignore[arg-type]
        logger.info("%s: %s, %d images, %d instances", path, kind, len(ds.images), ds.num_instances)
    for i, im in enumerate(ds.images):
        im.id = i
    if ds.num_instances == 0 and not allow_empty:
        first = f"; first problem: {ds.problems[0]}" if ds.problems else ""
        raise MaskrtError(
            f"{path}: no usable instance ({len(ds.images)} images, {len(ds.problems)} problems{first}); "
            f"run `maskrt data check {path}` to list them"
        )
    return ds
