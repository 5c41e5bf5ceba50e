"""Import mask images (binary, soft, class label maps, instance-id maps) as a :class:`Dataset`.

Most labs already have masks rather than polygons: thresholded or ImageJ/Fiji masks, U-Net outputs, label
maps, high-speed camera stacks. Layouts found (each mask pairs with the image of the same stem):

- ``images/`` and ``masks/`` folders (searched recursively; a mask may also be named ``NAME_mask``);
- ``NAME_mask.png`` beside ``NAME.png`` (any image suffix on either side);
- multi-page TIFF stacks paired the same way (``frames.tif`` + ``frames_mask.tif``), same page count; their
  pages are written once to the cache as PNG frames.

What a mask means (:class:`MaskOptions`):

- ``binary``: foreground is every pixel at or above ``threshold`` times the mask's maximum (so 0/255, 0/1 and
  soft anti-aliased masks all work), or at or above ``threshold`` itself when it is above 1 (a grey level);
- ``labels``: each non-zero value is a class (``classes={1: "bubble", 2: "droplet"}``);
- ``instances``: each non-zero value is one instance (8- or 16-bit), even when its pixels are not connected.

Semantic masks (``binary``, ``labels``) become instances by connected components (8- or 4-connectivity),
dropping those under ``min_area`` pixels; ``split`` also separates touching blobs by a distance-transform
watershed. An instance is the RLE of its own pixels, so liquid islands inside a vapour patch stay holes.

Example:
    >>> ds = load_masks(Path("boiling-bottom-videosam"), MaskOptions(min_area=8))   # images/ + masks/
    >>> ds.classes, len(ds.images), ds.num_instances
    (['bubble'], 500, 89297)
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import cv2
import numpy as np

from maskrt.atomic import atomic_path
from maskrt.errors import MaskrtError
from maskrt.options import MASK_KINDS, MaskOptions, parse_classes  # declared torch-free for the CLI
from maskrt.train.data.components import mask_instances
from maskrt.train.data.images import check_image, default_cache_dir
from maskrt.train.data.mask_pairs import find_pairs, is_mask_folder
from maskrt.train.data.problems import ProblemLog, display_name
from maskrt.train.data.record import Annotation, Dataset, ImageRecord

logger = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")


# ---------------------------------------------------------------------------------------------------------
# reading


def page_count(path: Path) -> int:
    """Number of pages of an image file (1 for everything but multi-page TIFF), 0 when it cannot be read."""
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return 1
    try:
        return int(cv2.imcount(str(path)))
    except cv2.error:
        return 0


def read_mask(path: Path) -> list[np.ndarray] | None:
    """The pages of a mask file as single-channel arrays (8- or 16-bit), ``None`` when it cannot be read.

    A colour mask becomes one channel: its first channel when all are equal, else the maximum over them (any
    colour is foreground).
    """
    if path.suffix.lower() in TIFF_SUFFIXES:
        ok, pages = cv2.imreadmulti(str(path), flags=cv2.IMREAD_UNCHANGED)
        if not ok or not pages:
            return None
    else:
        page = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if page is None:
            return None
        pages = [page]
    out = []
    for p in pages:
        if p.ndim == 3:
            c = p[..., :3]
            p = c[..., 0] if (c == c[..., :1]).all() else c.max(axis=2)
        out.append(np.ascontiguousarray(p))
    return out


def _stack_frames(stack: Path, pages: list[np.ndarray], cache_dir: Path | None) -> list[Path]:
    """Write a stack's pages once to the cache as PNG frames (keyed by the file's content) and list them."""
    digest = hashlib.sha1()
    with open(stack, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    folder = cache_dir if cache_dir is not None else default_cache_dir().parent / "stack-frames"
    folder = folder / digest.hexdigest()[:16]
    files = []
    for i, page in enumerate(pages):
        out = folder / f"{stack.stem}_{i:05d}.png"
        if not out.is_file():
            with atomic_path(out) as tmp:
                if not cv2.imwrite(str(tmp), page):
                    raise MaskrtError(f"cannot write frame {i} of {stack} to {out}; check the cache folder")
        files.append(out)
    return files


# ---------------------------------------------------------------------------------------------------------
# the importer


def _one_channel(page: np.ndarray, kind: str, item: str, log: ProblemLog) -> np.ndarray | None:
    """A mask page as one channel; a colour label or instance map is reported (its colours are not values)."""
    if page.ndim == 3:
        c = page[..., :3]
        if (c == c[..., :1]).all():
            page = c[..., 0]
        elif kind == "binary":
            page = c.max(axis=2)  # any colour is foreground
        else:
            log.add(
                item,
                f"the {kind} mask is in colour; skipped, save {kind} maps as one-channel 8- or "
                "16-bit PNG or TIFF (each value a class or an instance)",
            )
            return None
    if kind != "binary" and page.dtype.kind == "f":
        page = np.rint(page).astype(np.int32)
    return np.ascontiguousarray(page)


def load_masks(
    path: Path,
    options: MaskOptions | None = None,
    *,
    images: Path | None = None,
    shown: str | None = None,
    decode_images: bool = False,
    cache_dir: Path | None = None,
) -> Dataset:
    """Read image + mask pairs (or TIFF stacks) into a :class:`Dataset`, reporting and skipping bad pairs.

    Args:
        path: a folder with ``images/`` + ``masks/``, a folder of ``NAME`` + ``NAME_mask`` images, one image
            or stack (its mask beside it), or, with ``images``, the folder of masks.
        options: what the masks mean (default: binary, threshold at half the maximum, 8-connected, 4 px
            minimum).
        images: the folder of the images when ``path`` is the folder of their masks.
        shown: how to name ``path`` in messages.
        decode_images: decode every image to prove it is readable (default: read headers only).
        cache_dir: where TIFF stack pages are written as PNG frames (default: the user cache).

    Raises:
        MaskrtError: an option is wrong, or ``path`` holds no image with a mask.
    """
    opts = (options or MaskOptions()).check()
    kind = opts.resolved_kind()
    log = ProblemLog(shown or path)
    pairs = find_pairs(path, log, images)
    if not pairs and not len(log):
        raise MaskrtError(
            f"{shown or path}: no image with a mask found; use images/ + masks/ folders with matching names, "
            "or NAME_mask.png beside NAME.png"
        )
    values = sorted(opts.classes) if kind == "labels" and opts.classes else None
    unknown: dict[int, list[str]] = {}
    records: list[ImageRecord] = []

    def add_frame(file: Path, w: int, h: int, page: np.ndarray, item: str, mask_name: str) -> None:
        page1 = _one_channel(page, kind, item, log)
        if page1 is None:
            return
        if page1.shape[:2] != (h, w):
            log.add(
                item,
                f"its mask {mask_name} is {page1.shape[1]}x{page1.shape[0]} but the image is {w}x{h}; "
                "skipped, save the mask at the image's size",
            )
            return
        if values is not None:
            for v in np.unique(page1):
                if v > 0 and int(v) not in opts.classes:  # type: ignore[operator]
                    unknown.setdefault(int(v), []).append(mask_name)
        found = mask_instances(
            page1,
            kind,
            threshold=opts.threshold,
            connectivity=opts.connectivity,
            min_area=opts.min_area,
            values=values,
            split=opts.split,
            split_ratio=opts.split_ratio,
        )
        anns = [
            Annotation(category=inst.value, rle=inst.rle, bbox=inst.bbox, source=f"{mask_name}: instance {k}")
            for k, inst in enumerate(found)
        ]
        records.append(ImageRecord(file=file, width=w, height=h, annotations=anns, id=len(records)))

    root = path if path.is_dir() else path.parent
    for pair in pairs:
        item = f"image '{pair.name}'"
        mask_name = display_name(pair.mask, root)
        n_img, n_mask = page_count(pair.image), page_count(pair.mask)
        if n_img > 1 or n_mask > 1:
            if n_img != n_mask:
                log.add(
                    item,
                    f"the stack has {n_img} pages but its mask stack {mask_name} has {n_mask}; "
                    "skipped, give both stacks the same frames",
                )
                continue
            ok, pages = cv2.imreadmulti(str(pair.image), flags=cv2.IMREAD_UNCHANGED)
            masks = read_mask(pair.mask)
            if not ok or len(pages) != n_img or masks is None or len(masks) != n_img:
                which = "image" if not ok or len(pages) != n_img else "mask"
                bad = pair.image if which == "image" else pair.mask
                log.add(
                    item, f"{which} stack {bad} cannot be read completely (corrupt?); skipped, re-save it"
                )
                continue
            frames = _stack_frames(pair.image, list(pages), cache_dir)
            for i, (frame, page, mask) in enumerate(zip(frames, pages, masks, strict=True)):
                add_frame(
                    frame, page.shape[1], page.shape[0], mask, f"page {i} of {item}", f"{mask_name} page {i}"
                )
            continue
        if n_mask == 0 or n_img == 0:
            bad = pair.mask if n_mask == 0 else pair.image
            log.add(item, f"{bad} cannot be read (corrupt or not an image); skipped")
            continue
        size = check_image(pair.image, None, item, log, decode=decode_images)
        if size is None:
            continue
        masks = read_mask(pair.mask)
        if masks is None:
            log.add(
                item, f"its mask {mask_name} cannot be read (corrupt or not an image); skipped, re-save it"
            )
            continue
        add_frame(pair.image, size[0], size[1], masks[0], item, mask_name)

    if kind == "labels":
        if opts.classes:
            order = list(opts.classes)
            names = [opts.classes[v] for v in order]
        else:
            order = sorted({a.category for im in records for a in im.annotations})
            names = [f"class {v}" for v in order]
        index = {v: i for i, v in enumerate(order)}
        for im in records:
            for a in im.annotations:
                a.category = index[a.category]
        if unknown:
            vals = sorted(unknown)
            files = sorted({f for v in vals for f in unknown[v]})
            given = ",".join(f"{v}={n}" for v, n in opts.classes.items())  # type: ignore[union-attr]
            log.add(
                None,
                f"mask values {', '.join(map(str, vals))} (in {len(files)} masks, first {files[0]}) are "
                f"not in --classes {given}; their pixels were ignored, name them in --classes to keep them",
            )
    else:
        names = [opts.class_name]
        for im in records:
            for a in im.annotations:
                a.category = 0
    logger.info(
        "%s: %d mask pairs, %d images, %d instances",
        shown or path,
        len(pairs),
        len(records),
        sum(len(r.annotations) for r in records),
    )
    return Dataset(classes=names, images=records, source=path, problems=log.messages)


__all__ = [
    "MASK_KINDS",
    "MaskOptions",
    "find_pairs",
    "is_mask_folder",
    "load_masks",
    "parse_classes",
    "read_mask",
]
