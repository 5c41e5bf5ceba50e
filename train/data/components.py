"""Turn one mask image into instances: threshold, connected components, optional watershed split, RLE.

Everything here is numpy and OpenCV on one ``(H, W)`` array, so the mask importer stays fast on thousands of
frames: components are found by ``cv2.connectedComponents`` and all of them are run-length encoded in one pass
over the label image (:func:`label_rles`). An instance is the RLE of its own pixels, so the holes of a
component (liquid islands inside a vapour patch) stay holes.

Example:
    >>> found = mask_instances(cv2.imread("masks/train_0010.png", cv2.IMREAD_UNCHANGED), "binary", min_area=8)
    >>> len(found), [(i.value, i.area) for i in found][:2]
    (80, [(1, 12), (1, 24)])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass
class MaskInstance:
    """One instance found in a mask: its value (class value; 1 for binary), RLE, tight box, pixel count."""

    value: int
    rle: dict[str, Any]
    bbox: tuple[float, float, float, float]
    area: int


def foreground(mask: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Boolean foreground of a binary or soft mask.

    ``threshold`` in (0, 1] is a fraction of the mask's maximum (0.5: half the foreground value, so 0/1,
    0/255 and anti-aliased masks all work); above 1 it is an absolute grey level. An all-zero mask has no
    foreground.
    """
    peak = float(mask.max()) if mask.size else 0.0
    if peak <= 0:
        return np.zeros(mask.shape, dtype=bool)
    level = threshold * peak if threshold <= 1 else threshold
    return mask >= level


def compress_counts(counts: np.ndarray, group_starts: np.ndarray) -> list[str]:
    """COCO's compressed counts strings (``rle.counts_to_string``) of many RLEs at once, in numpy.

    Args:
        counts: the uncompressed counts of every RLE, concatenated (int64).
        group_starts: index in ``counts`` where each RLE begins (ascending, first 0).
    """
    n = len(counts)
    if n == 0:
        return ["" for _ in group_starts]
    pos = np.arange(n) - np.repeat(group_starts, np.diff(np.r_[group_starts, n]))
    x = counts.astype(np.int64).copy()
    later = pos > 2
    x[later] -= counts[np.flatnonzero(later) - 2]  # each count after the third is sent as a difference
    chars = np.zeros((n, 14), dtype=np.uint8)  # 5 bits a character: 14 cover any int64 difference
    active = np.ones(n, dtype=bool)
    for j in range(14):
        ch = x & 0x1F
        x >>= 5
        more = np.where(ch & 0x10, x != -1, x != 0) & active
        chars[active, j] = (ch[active] | np.where(more[active], 0x20, 0)) + 48
        active = more
        if not active.any():
            break
    lengths = (chars > 0).sum(axis=1)
    flat = chars[chars > 0].tobytes().decode("ascii")
    ends = np.cumsum(lengths)[np.r_[group_starts[1:], n] - 1]
    begins = np.r_[0, ends[:-1]]
    return [flat[b:e] for b, e in zip(begins.tolist(), ends.tolist(), strict=True)]


def label_rles(labels: np.ndarray, keep: np.ndarray | None = None) -> dict[int, dict[str, Any]]:
    """COCO RLE of every non-zero label of an integer label image, in one pass over the image.

    Args:
        labels: ``(H, W)`` integer image, 0 = background.
        keep: the label values to encode (default: every non-zero one).

    Returns:
        ``{label: {"size": [H, W], "counts": str}}``; each equals ``rle.encode(labels == label)``.
    """
    h, w = labels.shape
    n = h * w
    if n == 0:
        return {}
    flat = np.ascontiguousarray(labels.T).ravel()  # column-major, the order of COCO counts
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [n]))
    vals = flat[starts]
    sel = vals > 0 if keep is None else np.isin(vals, keep) & (vals > 0)
    starts, ends, vals = starts[sel], ends[sel], vals[sel]
    if len(vals) == 0:
        return {}
    order = np.argsort(vals, kind="stable")  # runs of one label stay in image order
    starts, ends, vals = starts[order], ends[order], vals[order]
    first = np.r_[True, vals[1:] != vals[:-1]]  # first run of each label
    last = np.r_[vals[1:] != vals[:-1], True]
    gaps = starts - np.where(first, 0, np.r_[0, ends[:-1]])  # zeros before each run of ones
    pairs = np.stack([gaps, ends - starts], axis=1).ravel()
    tail = n - ends[last]  # zeros after each label's last run; COCO leaves out a final 0
    at = (np.flatnonzero(last) + 1) * 2
    counts = np.insert(pairs, at, tail)
    drop = np.zeros(len(counts), dtype=bool)
    drop[at + np.arange(len(at))] = tail == 0
    n_runs = np.diff(np.r_[np.flatnonzero(first), len(vals)])
    group_len = 2 * n_runs + (tail > 0)
    counts = counts[~drop]
    group_starts = np.r_[0, np.cumsum(group_len)[:-1]]
    strings = compress_counts(counts, group_starts)
    size = [int(h), int(w)]
    return {int(v): {"size": size, "counts": c} for v, c in zip(vals[first].tolist(), strings, strict=True)}


def label_stats(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel count and tight ``[x, y, w, h]`` box of every label value ``0..labels.max()``.

    Returns:
        ``(areas (K+1,), boxes (K+1, 4))``; a value with no pixel has area 0.
    """
    k = int(labels.max()) if labels.size else 0
    flat = labels.ravel()
    areas = np.bincount(flat, minlength=k + 1)
    ys, xs = np.divmod(np.arange(flat.size), labels.shape[1])
    big = np.iinfo(np.int64).max
    x0 = np.full(k + 1, big, np.int64)
    y0 = np.full(k + 1, big, np.int64)
    x1 = np.full(k + 1, -1, np.int64)
    y1 = np.full(k + 1, -1, np.int64)
    fg = flat > 0
    lab, xs, ys = flat[fg], xs[fg], ys[fg]
    np.minimum.at(x0, lab, xs)
    np.minimum.at(y0, lab, ys)
    np.maximum.at(x1, lab, xs)
    np.maximum.at(y1, lab, ys)
    boxes = np.stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1], axis=1)
    boxes[areas == 0] = 0
    return areas, boxes


def _neighbour_pairs(markers: np.ndarray, connectivity: int) -> list[tuple[np.ndarray, np.ndarray, tuple]]:
    """For each neighbour offset: the label arrays of a pixel and its neighbour, and the two slices used."""
    h, w = markers.shape
    offsets = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    out = []
    for dy, dx in offsets:
        sa = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
        sb = (slice(dy, h), slice(max(0, -dx) + dx, w - max(0, dx) + dx))
        out.append((markers[sa], markers[sb], (sa, sb)))
    return out


def _flood(fg: np.ndarray, dist: np.ndarray, step: float = 0.5) -> tuple[np.ndarray, int]:
    """Watershed by immersion on ``-dist``: each new maximum seeds a region, regions grow level by level.

    ``cv2.watershed`` floods on colour differences between neighbours, not on a relief, so it cannot follow
    a distance map; this does. At each level the pixels joined to a region go to the nearest labelled pixel
    (so two fronts meet halfway), and the pixels no region reaches are new maxima: new seeds.
    """
    labels = np.zeros(fg.shape, np.int32)
    kernel = np.ones((3, 3), np.uint8)
    n = 0
    for lv in np.unique(np.floor(dist[fg] / step))[::-1]:
        free = fg & (dist >= lv * step) & (labels == 0)
        if not free.any():
            continue
        if n:
            k, parts = cv2.connectedComponents(free.astype(np.uint8), connectivity=8)
            near = free & (cv2.dilate((labels > 0).astype(np.uint8), kernel) > 0)
            grow = np.isin(parts, np.unique(parts[near])) & free
            if grow.any():
                empty = (labels == 0).astype(np.uint8)  # zeros of this image: the labelled pixels
                _, idx = cv2.distanceTransformWithLabels(
                    empty, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
                )
                lut = np.zeros(int(idx.max()) + 1, np.int32)
                lut[idx[empty == 0]] = labels[empty == 0]
                labels[grow] = lut[idx[grow]]
                free &= ~grow
        if free.any():
            k, seeds = cv2.connectedComponents(free.astype(np.uint8), connectivity=8)
            labels[free] = seeds[free] + n
            n += k - 1
    return labels, n


def split_touching(fg: np.ndarray, ratio: float = 0.7, connectivity: int = 8) -> np.ndarray:
    """Label image of ``fg`` with touching blobs separated by a distance-transform watershed.

    Every maximum of the distance to the background seeds a region (watershed by immersion); two
    neighbouring regions are merged back when the distance at their neck is at least ``ratio`` times the
    smaller region's peak, i.e. when there is no real neck between them. A blob with one peak stays whole.
    """
    fg = fg.astype(bool)
    fg8 = fg.astype(np.uint8)
    n_comp, comps = cv2.connectedComponents(fg8, connectivity=connectivity)
    if n_comp <= 1:
        return comps.astype(np.int32)
    dist = cv2.distanceTransform(fg8, cv2.DIST_L2, 5)
    markers, n_seeds = _flood(fg, dist)
    if n_seeds <= n_comp - 1:
        return comps.astype(np.int32)  # one region per blob: nothing to split
    peak = np.zeros(n_seeds + 1, dtype=np.float64)
    np.maximum.at(peak, markers[fg], dist[fg])
    keys_all, depth_all = [], []
    for a, b, (sa, sb) in _neighbour_pairs(markers, connectivity):
        touch = (a > 0) & (b > 0) & (a != b)
        if not touch.any():
            continue
        la, lb = a[touch].astype(np.int64), b[touch].astype(np.int64)
        keys_all.append(np.minimum(la, lb) * (n_seeds + 1) + np.maximum(la, lb))
        depth_all.append(np.minimum(dist[sa][touch], dist[sb][touch]))
    parent = np.arange(n_seeds + 1)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    if keys_all:
        keys = np.concatenate(keys_all)
        depth = np.concatenate(depth_all).astype(np.float64)
        order = np.argsort(keys, kind="stable")
        keys, depth = keys[order], depth[order]
        first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        pair_keys, neck = keys[first], np.maximum.reduceat(depth, first)
        for j in np.argsort(-neck, kind="stable"):
            p, q = divmod(int(pair_keys[j]), n_seeds + 1)
            rp, rq = find(p), find(q)
            if rp != rq and neck[j] >= ratio * min(peak[rp], peak[rq]):
                keep, gone = (rp, rq) if peak[rp] >= peak[rq] else (rq, rp)
                parent[gone] = keep
    roots = np.array([find(i) for i in range(n_seeds + 1)], dtype=np.int32)
    # a region never spans two blobs (growth is 8-connected, blobs may be 4-connected); renumber 1..K
    key = roots[markers].astype(np.int64) * n_comp + comps
    key[~fg] = 0
    uniq, inv = np.unique(key, return_inverse=True)
    return (inv.reshape(key.shape) + (0 if uniq[0] == 0 else 1)).astype(np.int32)


def _instances(
    labels: np.ndarray, value: int, min_area: int, stats: tuple[np.ndarray, np.ndarray] | None = None
) -> list[MaskInstance]:
    areas, boxes = stats if stats is not None else label_stats(labels)
    keep = np.flatnonzero(areas >= min_area)
    keep = keep[keep > 0]
    rles = label_rles(labels, keep)
    return [
        MaskInstance(value, rles[k], (float(b[0]), float(b[1]), float(b[2]), float(b[3])), int(areas[k]))
        for k, b in zip(keep.tolist(), boxes[keep].tolist(), strict=True)
    ]


def semantic_instances(
    fg: np.ndarray,
    value: int,
    *,
    connectivity: int = 8,
    min_area: int = 4,
    split: bool = False,
    split_ratio: float = 0.7,
) -> list[MaskInstance]:
    """Instances of one class's boolean foreground: connected components (or watershed regions) as RLEs."""
    if not fg.any():
        return []
    if split:
        return _instances(split_touching(fg, split_ratio, connectivity), value, min_area)
    _, labels, st, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=connectivity)
    return _instances(labels, value, min_area, (st[:, cv2.CC_STAT_AREA], st[:, :4]))


def mask_instances(
    mask: np.ndarray,
    kind: str,
    *,
    threshold: float = 0.5,
    connectivity: int = 8,
    min_area: int = 4,
    values: list[int] | None = None,
    split: bool = False,
    split_ratio: float = 0.7,
) -> list[MaskInstance]:
    """Instances of one single-channel mask image.

    Args:
        mask: ``(H, W)`` 8- or 16-bit mask.
        kind: ``binary`` (threshold, then components; value 1), ``labels`` (each value in ``values`` a class,
            components per class) or ``instances`` (each non-zero value one instance, value 1).
        threshold: binary masks: see :func:`foreground`.
        connectivity: 8 or 4.
        min_area: instances with fewer pixels are dropped.
        values: label maps: the class values to keep (default: every non-zero value).
        split: separate touching blobs of semantic masks (see :func:`split_touching`).
        split_ratio: see :func:`split_touching`.
    """
    if kind == "binary":
        fg = foreground(mask, threshold)
        return semantic_instances(
            fg, 1, connectivity=connectivity, min_area=min_area, split=split, split_ratio=split_ratio
        )
    if kind == "labels":
        present = [int(v) for v in np.unique(mask) if v > 0]
        found: list[MaskInstance] = []
        for v in present if values is None else [v for v in present if v in values]:
            found += semantic_instances(
                mask == v,
                v,
                connectivity=connectivity,
                min_area=min_area,
                split=split,
                split_ratio=split_ratio,
            )
        return found
    if kind == "instances":
        return _instances(mask.astype(np.int32), 1, min_area)
    raise ValueError(f"unknown mask kind {kind!r}")
