"""Which mask belongs to which image: the layouts the mask importer reads, and their missing partners.

- ``images/`` + ``masks/`` folders, searched recursively, matched by relative path without suffix (a mask may
  also be named ``NAME_mask``), or ``--images DIR`` with ``path`` the folder of masks;
- ``NAME_mask.png`` (or ``NAME_masks``) beside ``NAME.png``, any image suffix on either side;
- one image or TIFF stack given as a file, its mask beside it (or the mask given, its image beside it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maskrt.runtime.images import IMAGE_SUFFIXES
from maskrt.train.data.problems import ProblemLog, display_name

MASK_SUFFIXES = ("_mask", "_masks")


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a file with an image suffix."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def base_stem(stem: str) -> str | None:
    """``"a_mask"`` -> ``"a"``: the image stem a mask's stem names, ``None`` when it has no mask suffix."""
    low = stem.lower()
    for suf in MASK_SUFFIXES:
        if low.endswith(suf) and len(stem) > len(suf):
            return stem[: -len(suf)]
    return None


def is_mask_folder(folder: Path) -> bool:
    """Whether ``folder`` holds ``images/`` + ``masks/`` or ``NAME_mask`` images beside their images."""
    if (folder / "images").is_dir() and (folder / "masks").is_dir():
        return True
    return any(is_image_file(p) and base_stem(p.stem) is not None for p in folder.iterdir())


@dataclass
class Pair:
    """One image (or stack) and its mask file."""

    image: Path
    mask: Path
    name: str  # how the image is named in messages


def _key(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    return rel.as_posix()


def find_pairs(path: Path, log: ProblemLog, images: Path | None = None) -> list[Pair]:
    """Every (image, mask) pair under ``path``; images without masks and masks without images are reported."""
    if path.is_file():
        return _pairs_beside([path], path.parent, log, single=True)
    if images is not None or ((path / "images").is_dir() and (path / "masks").is_dir()):
        img_root = images if images is not None else path / "images"
        mask_root = path if images is not None else path / "masks"
        return _pairs_in_folders(img_root, mask_root, path, log)
    return _pairs_beside(sorted(p for p in path.iterdir() if is_image_file(p)), path, log)


def _pairs_in_folders(img_root: Path, mask_root: Path, root: Path, log: ProblemLog) -> list[Pair]:
    imgs: dict[str, Path] = {}
    for p in sorted(img_root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            k = _key(p, img_root)
            if k in imgs:
                log.add(
                    f"image '{display_name(p, root)}'",
                    f"a second image named {k} "
                    f"(first {display_name(imgs[k], root)}); skipped, rename one of them",
                )
                continue
            imgs[k] = p
    masks: dict[str, Path] = {}
    for p in sorted(mask_root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            if img_root.resolve() in p.resolve().parents:
                continue  # --images inside the mask folder
            k = _key(p, mask_root)
            b = base_stem(Path(k).name)
            if k not in imgs and b is not None:
                k = (Path(k).parent / b).as_posix()
            if k in masks:
                log.add(
                    f"mask '{display_name(p, root)}'",
                    f"a second mask for image {k} "
                    f"(first {display_name(masks[k], root)}); skipped, keep one of them",
                )
                continue
            masks[k] = p
    pairs = []
    for k, img in imgs.items():
        shown = display_name(img, root)
        if k not in masks:
            log.add(
                f"image '{shown}'",
                f"no mask for it in {display_name(mask_root, root)}/ (looked for "
                f"{k}.png or {k}_mask.png); skipped, add its mask or remove the image",
            )
            continue
        pairs.append(Pair(img, masks.pop(k), shown))
    for k, m in masks.items():
        log.add(
            f"mask '{display_name(m, root)}'",
            f"no image named {k} in {display_name(img_root, root)}/; "
            "skipped, add the image or rename the mask to its image's name",
        )
    return pairs


def _pairs_beside(files: list[Path], root: Path, log: ProblemLog, single: bool = False) -> list[Pair]:
    imgs = {p.stem: p for p in files if base_stem(p.stem) is None}
    masks = {base_stem(p.stem): p for p in files if base_stem(p.stem) is not None}
    if single:
        p = files[0]
        b = base_stem(p.stem)
        if b is not None:  # the mask itself was given: find its image
            found = [q for q in sorted(root.glob(f"{b}.*")) if q.suffix.lower() in IMAGE_SUFFIXES]
            imgs, masks = ({b: found[0]} if found else {}), {b: p}
        else:
            found = [
                q
                for q in sorted(root.glob(f"{p.stem}_mask*.*"))
                if q.suffix.lower() in IMAGE_SUFFIXES and base_stem(q.stem) == p.stem
            ]
            imgs, masks = {p.stem: p}, ({p.stem: found[0]} if found else {})
    pairs = []
    for stem, img in sorted(imgs.items()):
        shown = display_name(img, root) if not single else str(img)
        if stem not in masks:
            log.add(
                f"image '{shown}'",
                f"no mask beside it (looked for {stem}_mask.png); skipped, add its mask or remove the image",
            )
            continue
        pairs.append(Pair(img, masks.pop(stem), shown))
    for stem, m in sorted(masks.items()):
        log.add(
            f"mask '{display_name(m, root) if not single else m}'",
            f"no image {stem}.png beside it; skipped, add the image or rename the mask",
        )
    return pairs
