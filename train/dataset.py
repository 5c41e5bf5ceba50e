"""The torch view of a :class:`~maskrt.train.data.record.Dataset`: ``(image, target)`` pairs for Mask R-CNN.

Images come out as float RGB ``(3, H, W)`` tensors in ``[0, 1]``; targets as torchvision's detection
dict: ``boxes`` (xyxy, float), ``labels`` (category + 1; 0 is background), ``masks`` (uint8
``(N, H, W)``), ``image_id``, ``area``, ``iscrowd``. Crowd regions are left out of training targets.

An image that was readable at import but cannot be read when a sample is drawn (deleted, moved or
overwritten since, perhaps inside a data-loader worker) does not stop training: it is logged once,
counted in :attr:`MaskDataset.unreadable`, and the next readable image is drawn in its place.

Example:
    >>> ds = MaskDataset(load_datasets(["data/train"]), max_size=512, augment=build_augment("default", 512))
    >>> image, target = ds[(0, 1234)]    # (index, augmentation seed) or a plain index
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from maskrt.errors import MaskrtError
from maskrt.train.data.problems import summary_lines
from maskrt.train.data.record import Annotation, Dataset, ImageRecord

log = logging.getLogger(__name__)

PROBLEMS_SHOWN = 5  # import problems logged per dataset; `maskrt data check` lists them all

Target = dict[str, torch.Tensor]


def load_datasets(
    paths: Sequence[str | Path] | str | Path, masks: dict[str, object] | None = None
) -> Dataset:
    """Load one or more datasets (any supported format; comma lists allowed) and merge them by class name.

    ``masks`` are the mask-image importer's options (:class:`~maskrt.train.data.masks.MaskOptions` fields).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    flat = [p.strip() for item in paths for p in str(item).split(",") if p.strip()]
    if not flat:
        raise MaskrtError("no dataset path given; pass --data PATH (a COCO JSON, a folder, ...)")
    merged: Dataset | None = None
    for p in flat:
        ds = _load_one(Path(p), masks)
        merged = ds if merged is None else merged.merged(ds)
    assert merged is not None
    return merged


def _load_one(path: Path, masks: dict[str, object] | None = None) -> Dataset:
    if not path.exists():
        raise MaskrtError("dataset not found; check the path given to --data/--val", path=path)
    try:
        from maskrt.train.data import load_dataset  # type: ignore[attr-defined]
        from maskrt.train.data.masks import MaskOptions
    except ImportError:  # the importer layer is optional here: fall back to plain COCO JSON
        return read_coco(path)
    ds = load_dataset(path, mask_options=MaskOptions.from_dict(masks) if masks else None)
    if int(os.environ.get("RANK", "0")) == 0:  # once under torchrun, not once per process
        for line in summary_lines(ds.problems, path, PROBLEMS_SHOWN):
            log.warning("%s", line)
    return ds


def read_coco(path: Path) -> Dataset:
    """Minimal COCO instance JSON reader (polygons and RLE), used when the full importers are absent."""
    json_path = path
    if path.is_dir():
        cands = sorted(path.glob("*.json"))
        if not cands:
            raise MaskrtError("no COCO JSON in this folder; pass the annotation file", path=path)
        json_path = cands[0]
    data = json.loads(json_path.read_text())
    cat_ids = sorted(c["id"] for c in data["categories"])
    used = {a["category_id"] for a in data["annotations"]}
    cat_ids = [c for c in cat_ids if c in used] or cat_ids
    names = {c["id"]: c["name"] for c in data["categories"]}
    index = {cid: i for i, cid in enumerate(cat_ids)}
    images: dict[int, ImageRecord] = {}
    for im in data["images"]:
        images[im["id"]] = ImageRecord(
            json_path.parent / im["file_name"], int(im["width"]), int(im["height"]), [], int(im["id"])
        )
    for a in data["annotations"]:
        if a["category_id"] not in index or a["image_id"] not in images:
            continue
        seg = a.get("segmentation")
        polys: list[np.ndarray] = []
        rle = None
        if isinstance(seg, list):
            polys = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in seg if len(p) >= 6]
        elif isinstance(seg, dict):
            rle = seg
        images[a["image_id"]].annotations.append(
            Annotation(
                index[a["category_id"]],
                polys,
                rle,
                tuple(a["bbox"]) if "bbox" in a else None,
                bool(a.get("iscrowd", 0)),
                f"annotation {a.get('id')}",
            )
        )
    return Dataset([names[c] for c in cat_ids], list(images.values()), json_path)


def align_classes(ds: Dataset, classes: list[str]) -> Dataset:
    """Re-index ``ds``'s categories onto ``classes`` (by name); instances of unknown classes are dropped."""
    if ds.classes == classes:
        return ds
    remap = {i: classes.index(n) for i, n in enumerate(ds.classes) if n in classes}
    missing = [n for n in ds.classes if n not in classes]
    if missing:
        log.warning(
            "%s: classes %s are not in the training classes %s; their instances are ignored",
            ds.source,
            missing,
            classes,
        )
    images = [
        ImageRecord(
            im.file,
            im.width,
            im.height,
            [
                Annotation(remap[a.category], a.polygons, a.rle, a.bbox, a.iscrowd, a.source)
                for a in im.annotations
                if a.category in remap
            ],
            im.id,
        )
        for im in ds.images
    ]
    return Dataset(list(classes), images, ds.source, ds.problems)


class MaskDataset(torch.utils.data.Dataset):
    """Mask R-CNN training/evaluation samples from a dataset record.

    Args:
        dataset: images and instances.
        max_size: images (and masks) whose longer side exceeds this are shrunk to it first (the model
            resizes to its own input size anyway; this keeps mask tensors small). ``None`` keeps sizes.
        augment: ``(image, target) -> (image, target)``, e.g. :func:`maskrt.train.augment.build_augment`.
        skip_crowd: leave crowd regions out of targets (training); evaluation reads them from the record.
    """

    def __init__(
        self,
        dataset: Dataset,
        max_size: int | None = None,
        augment: Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]] | None = None,
        skip_crowd: bool = True,
    ) -> None:
        self.dataset = dataset
        self.max_size = max_size
        self.augment = augment
        self.skip_crowd = skip_crowd
        # one flag per image, in shared memory so that data-loader workers mark and see the same images
        self._unreadable = torch.zeros(len(dataset.images), dtype=torch.uint8).share_memory_()

    @property
    def unreadable(self) -> list[Path]:
        """Images that could not be read when drawn (in any worker); their samples were skipped."""
        return [self.dataset.images[i].file for i in torch.nonzero(self._unreadable).flatten().tolist()]

    def __len__(self) -> int:
        return len(self.dataset.images)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, Target]:
        idx, seed = key if isinstance(key, tuple) else (key, None)
        image, target = self._load_readable(idx)
        if self.augment is not None:
            if seed is None:
                image, target = self.augment(image, target)
            else:  # reproducible per sample, without disturbing the caller's RNG (workers=0)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    image, target = self.augment(image, target)
        return image, target

    def _load_readable(self, idx: int) -> tuple[torch.Tensor, Target]:
        """Sample ``idx``, or the next readable one when its image cannot be read any more (logged once)."""
        n = len(self)
        for j in (k % n for k in range(idx, idx + n)):
            if self._unreadable[j]:
                continue
            try:
                return self.load(j)
            except MaskrtError as exc:
                if not self._unreadable[j]:  # another worker may have just marked it
                    self._unreadable[j] = 1
                    log.warning(
                        "%s; it was readable at import (deleted or overwritten since?), so its samples are "
                        "skipped from now on (%d of %d images skipped so far)",
                        exc,
                        int(self._unreadable.sum()),
                        n,
                    )
        first = self.unreadable[0] if self.unreadable else "?"
        raise MaskrtError(
            f"none of the {n} images can be read any more (first: {first}); check that the dataset "
            "folder was not moved or deleted, and run `maskrt data check` on it"
        )

    def load(self, idx: int) -> tuple[torch.Tensor, Target]:
        """The un-augmented sample ``idx`` (resized to ``max_size`` when larger)."""
        rec = self.dataset.images[idx]
        bgr = rec.load()
        h, w = bgr.shape[:2]
        if (h, w) != (rec.height, rec.width):
            log.debug("%s: image is %dx%d, annotation says %dx%d", rec.file, w, h, rec.width, rec.height)
        anns = [a for a in rec.annotations if not (self.skip_crowd and a.iscrowd)]
        masks = np.stack([a.mask(h, w) for a in anns]) if anns else np.zeros((0, h, w), dtype=bool)
        scale = 1.0
        if self.max_size and max(h, w) > self.max_size:
            scale = self.max_size / max(h, w)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            bgr = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA)
            masks = (
                np.stack(
                    [
                        cv2.resize(m.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST_EXACT)
                        for m in masks
                    ]
                )
                if len(masks)
                else np.zeros((0, nh, nw), dtype=np.uint8)
            )
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        image = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
        mt = torch.from_numpy(np.ascontiguousarray(masks)).to(torch.uint8)
        labels = torch.tensor([a.category + 1 for a in anns], dtype=torch.int64)
        target: Target = {
            "masks": mt,
            "labels": labels,
            "image_id": torch.tensor(idx),
            "iscrowd": torch.tensor([int(a.iscrowd) for a in anns], dtype=torch.int64),
        }
        from maskrt.train.augment import boxes_from_masks

        target = boxes_from_masks(
            target
        )  # tight boxes; instances whose mask vanished when shrunk are dropped
        target = {
            k: (v.as_subclass(torch.Tensor) if isinstance(v, torch.Tensor) else v) for k, v in target.items()
        }
        target["image_id"] = torch.tensor(idx)
        return image, target


def collate(batch: list[tuple[torch.Tensor, Target]]) -> tuple[list[torch.Tensor], list[Target]]:
    """Detection collate: lists of images and targets (sizes differ)."""
    images, targets = zip(*batch)
    return list(images), list(targets)
