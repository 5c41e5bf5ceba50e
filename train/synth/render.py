"""Drawing objects onto a canvas with exact, occlusion-aware instance masks.

A scene is a background plus an ordered list of :class:`SceneObject` s. :class:`Canvas` draws them one
after another (later ones occlude earlier ones), each with an anti-aliased alpha, an optional motion
streak and a shading profile, and keeps a label map of which object owns each pixel. The visible mask of
an object is exactly the pixels it owns at the end, so masks never overlap and always match the picture.
Pure numpy + OpenCV, no per-pixel Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from maskrt import rle as rle_codec

_SHIFT = 4  # fillPoly sub-pixel bits: vertices at 1/16 px


@dataclass
class Shading:
    """How an object's pixels look, as a function of the distance ``d`` (px) from its outline.

    Kinds:
        ``backlit``: shadowgraph bubble: dark rim of width ``rim_width``, bright core (shifted by ``core_offset``).
        ``droplet``: condensation droplet: dark rim, ``interior`` body, specular highlight towards ``light``.
        ``patch``: vapour patch seen from below: bright ``interior`` darkening to ``rim`` at the edge, textured.
        ``flat``: ``interior`` everywhere (plus ``texture``): walls, heaters.
    """

    kind: str = "backlit"
    rim: float = 40.0
    interior: float = 200.0
    rim_width: float = 3.0
    soft: float = 1.0
    core_offset: tuple[float, float] = (0.0, 0.0)
    highlight: float = 0.0
    light: tuple[float, float] = (-0.6, -0.8)
    texture: float = 0.0
    rim_line: float = 0.0


@dataclass
class SceneObject:
    """One thing to draw: its outline polygon(s) (drawn as one union), look, class and identity.

    ``category`` None marks an occluder (a heater block, a tube wall): it hides what is behind it but is
    not an instance. ``uid`` is a persistent object id (kept across video frames). ``motion`` is the
    blur streak ``(dx, dy)`` in pixels traced during the exposure; ``defocus`` the Gaussian blur (sigma,
    pixels) of an object outside the depth of field. Blurred objects own the pixels they cover by half or more.
    """

    polygons: list[np.ndarray]
    shading: Shading
    category: str | None = "bubble"
    uid: int = 0
    motion: tuple[float, float] = (0.0, 0.0)
    defocus: float = 0.0


@dataclass
class Instance:
    """The visible part of one drawn object: class, persistent id, tight box, area and compressed RLE."""

    category: str
    uid: int
    bbox: tuple[int, int, int, int]
    area: int
    rle: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at ``e0`` to 1 at ``e1``."""
    t = np.clip((x - e0) / max(e1 - e0, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def low_freq_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth random field of unit-ish amplitude with features about ``cell`` pixels across."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    g = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)


def _motion_kernel(dx: float, dy: float) -> np.ndarray:
    length = float(np.hypot(dx, dy))
    k = int(np.ceil(length)) | 1
    k = max(k, 3)
    ker = np.zeros((k, k), np.float32)
    c = (k - 1) / 2.0
    p0 = (round((c - dx / 2) * 16), round((c - dy / 2) * 16))
    p1 = (round((c + dx / 2) * 16), round((c + dy / 2) * 16))
    cv2.line(ker, p0, p1, 1.0, 1, cv2.LINE_AA, shift=4)
    s = ker.sum()
    if s <= 0:
        ker[k // 2, k // 2] = 1.0
        s = 1.0
    return ker / s


def _shade(sh: Shading, inside: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Grey values (float32) of one object over its crop, given its binary footprint."""
    h, w = inside.shape
    d = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    v: np.ndarray
    if sh.kind == "flat":
        v = np.full((h, w), sh.interior, np.float32)
    elif sh.kind == "backlit":
        dd = d
        ox, oy = sh.core_offset
        if ox or oy:
            m = np.array([[1, 0, ox], [0, 1, oy]], np.float32)
            dd = cv2.warpAffine(d, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            dd = np.minimum(dd, d + abs(ox) + abs(oy))
        t = smoothstep(sh.rim_width - sh.soft, sh.rim_width + sh.soft, dd)
        t = t * smoothstep(0.0, max(1.0, 0.3 * sh.rim_width), d)  # the rim stays dark all round
        v = sh.rim + (sh.interior - sh.rim) * t
        if sh.rim_line:  # a lighter line inside the dark rim (thick-walled tubes, lens-like bubbles)
            v = v + sh.rim_line * np.exp(-0.5 * ((d - 0.5 * sh.rim_width) / max(0.5, 0.12 * sh.rim_width)) ** 2)
    elif sh.kind == "droplet":
        ys, xs = np.nonzero(inside)
        cx, cy = xs.mean(), ys.mean()
        r = max(np.sqrt(len(xs) / np.pi), 1.0)
        yy = np.arange(h, dtype=np.float32)[:, None]
        xx = np.arange(w, dtype=np.float32)[None, :]
        lx, ly = sh.light
        # body: a gentle gradient across the droplet (lens effect), dark rim at the contact line
        grad = ((xx - cx) * lx + (yy - cy) * ly) / r
        body = sh.interior - 18.0 * grad
        t = smoothstep(0.0, sh.rim_width, d)
        v = sh.rim + (body - sh.rim) * t
        if sh.highlight > 0:
            hx, hy = cx + lx * 0.42 * r, cy + ly * 0.42 * r
            sig = max(0.7, 0.13 * r)
            v = v + sh.highlight * np.exp(-((xx - hx) ** 2 + (yy - hy) ** 2) / (2 * sig * sig))
            # faint transmitted-light crescent opposite the highlight
            gx, gy = cx - lx * 0.55 * r, cy - ly * 0.55 * r
            sig2 = max(1.0, 0.28 * r)
            v = v + 0.3 * sh.highlight * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * sig2 * sig2)) * t
    elif sh.kind == "patch":
        t = smoothstep(0.0, sh.rim_width, d)
        v = sh.rim + (sh.interior - sh.rim) * t
    else:
        raise ValueError(f"unknown shading kind {sh.kind!r}")
    if sh.texture > 0 and h * w > 400:
        v = v + sh.texture * low_freq_noise(rng, h, w, max(3.0, min(h, w) / 4))
    return np.asarray(v, np.float32)


class Canvas:
    """A grey image being drawn on, with a label map of which object owns each pixel.

    Example:
        >>> cv = Canvas(np.full((256, 256), 220, np.float32))
        >>> cv.draw(SceneObject([shapes.blob(100, 100, 20, 15)], Shading()), rng)
        >>> insts = cv.instances(min_area=6)
    """

    def __init__(self, background: np.ndarray) -> None:
        self.image = np.asarray(background, np.float32).copy()
        self.height, self.width = self.image.shape[:2]
        self.labels = np.zeros((self.height, self.width), np.int32)
        self._objects: list[tuple[SceneObject, tuple[int, int, int, int]]] = []

    def draw(self, obj: SceneObject, rng: np.random.Generator) -> None:
        """Draw ``obj`` on top of everything drawn so far."""
        allp = np.concatenate(obj.polygons, axis=0)
        mdx, mdy = obj.motion
        pad = 3 + int(np.ceil(max(abs(mdx), abs(mdy)) / 2.0 + 3 * obj.defocus))
        bx0 = int(np.floor(allp[:, 0].min())) - pad
        by0 = int(np.floor(allp[:, 1].min())) - pad
        bx1 = int(np.ceil(allp[:, 0].max())) + pad + 1
        by1 = int(np.ceil(allp[:, 1].max())) + pad + 1
        # visible window (intersection with the image); skip objects entirely outside
        x0, y0 = max(bx0, 0), max(by0, 0)
        x1, y1 = min(bx1, self.width), min(by1, self.height)
        if x0 >= x1 or y0 >= y1:
            return
        h, w = by1 - by0, bx1 - bx0
        alpha = np.zeros((h, w), np.uint8)
        for p in obj.polygons:  # one polygon at a time: a union, not fillPoly's even-odd rule
            pts = [np.round((p - (bx0, by0)) * (1 << _SHIFT)).astype(np.int32)]
            if len(obj.polygons) == 1:
                cv2.fillPoly(alpha, pts, 255, lineType=cv2.LINE_AA, shift=_SHIFT)
            else:
                one = np.zeros_like(alpha)
                cv2.fillPoly(one, pts, 255, lineType=cv2.LINE_AA, shift=_SHIFT)
                np.maximum(alpha, one, out=alpha)
        inside = (alpha >= 128).astype(np.uint8)
        if not inside.any():
            return
        value = _shade(obj.shading, inside, rng)
        a: np.ndarray = alpha.astype(np.float32) * (1.0 / 255.0)
        if abs(mdx) + abs(mdy) >= 1.0:
            ker = _motion_kernel(mdx, mdy)
            pv = cv2.filter2D(value * a, -1, ker, borderType=cv2.BORDER_CONSTANT)
            a = cv2.filter2D(a, -1, ker, borderType=cv2.BORDER_CONSTANT)
            value = pv / np.maximum(a, 1e-4)
        if obj.defocus > 0.3:
            pv = cv2.GaussianBlur(value * a, (0, 0), obj.defocus)
            a = cv2.GaussianBlur(a, (0, 0), obj.defocus)
            value = pv / np.maximum(a, 1e-4)
        sy, sx = slice(y0 - by0, y1 - by0), slice(x0 - bx0, x1 - bx0)
        a, value = a[sy, sx], value[sy, sx]
        img = self.image[y0:y1, x0:x1]
        img += (value - img) * a
        label = 0 if obj.category is None else len(self._objects) + 1
        self.labels[y0:y1, x0:x1][a >= 0.5] = label
        if obj.category is not None:
            self._objects.append((obj, (x0, y0, x1, y1)))

    def instances(self, min_area: int = 6) -> list[Instance]:
        """Visible part of every drawn instance, in drawing order; those under ``min_area`` pixels are dropped."""
        out: list[Instance] = []
        for k, (obj, (x0, y0, x1, y1)) in enumerate(self._objects, start=1):
            m = self.labels[y0:y1, x0:x1] == k
            area = int(m.sum())
            if area < min_area:
                continue
            cols = np.flatnonzero(m.any(axis=0))
            rows = np.flatnonzero(m.any(axis=1))
            cx0, cx1, cy0, cy1 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
            tight = m[cy0:cy1, cx0:cx1]
            ox, oy = x0 + int(cx0), y0 + int(cy0)
            bbox = (ox, oy, int(cx1 - cx0), int(cy1 - cy0))
            rle = crop_rle(tight, ox, oy, self.height, self.width)
            assert obj.category is not None
            out.append(Instance(obj.category, obj.uid, bbox, area, rle))
        return out

    def union_mask(self) -> np.ndarray:
        """Pixels owned by any instance (what a void-fraction measurement counts)."""
        return self.labels > 0


def crop_rle(crop: np.ndarray, x0: int, y0: int, height: int, width: int) -> dict[str, Any]:
    """Compressed COCO RLE of a full ``height x width`` mask that is ``crop`` placed at ``(x0, y0)``, zero elsewhere.

    Equal to ``maskrt.rle.encode(full_mask)`` without building the full mask.
    """
    cols, rows = np.nonzero(np.asarray(crop, bool).T)  # column-major order, as COCO counts
    total = height * width
    if len(cols) == 0:
        return {"size": [int(height), int(width)], "counts": rle_codec.counts_to_string([total])}
    idx = (cols.astype(np.int64) + x0) * height + (rows.astype(np.int64) + y0)
    breaks = np.flatnonzero(np.diff(idx) != 1)
    starts = idx[np.concatenate(([0], breaks + 1))]
    ends = idx[np.concatenate((breaks, [len(idx) - 1]))] + 1
    counts = np.empty(2 * len(starts) + 1, np.int64)
    counts[0] = starts[0]
    counts[1::2] = ends - starts
    counts[2:-1:2] = starts[1:] - ends[:-1]
    counts[-1] = total - ends[-1]
    c = counts.tolist()
    if c[-1] == 0:
        c.pop()
    return {"size": [int(height), int(width)], "counts": rle_codec.counts_to_string(c)}
