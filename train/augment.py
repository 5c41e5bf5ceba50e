"""Training augmentation on torchvision ``transforms.v2`` + ``tv_tensors``: image, masks, boxes move together.

Geometric transforms (flips, 90-degree rotations, small rotations, scale jitter with crop or pad)
move the masks with the image; boxes are then recomputed tight around each transformed mask and
instances whose mask vanished are dropped, so a box never drifts from its mask. Photometric
transforms (brightness, contrast, gamma, blur, noise) touch the image only. Evaluation uses none.

Example:
    >>> cfg = AugmentConfig.parse("default,rotate=20,noise=0")
    >>> aug = build_augment(cfg, image_size=512)
    >>> image, target = aug(image, target)    # image: float (3, H, W) in [0, 1]; target: boxes, masks, labels
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from maskrt.errors import MaskrtError

PRESETS: dict[str, dict[str, Any]] = {
    "none": {
        "hflip": 0.0,
        "vflip": 0.0,
        "rot90": 0.0,
        "rotate": 0.0,
        "scale": (1.0, 1.0),
        "brightness": 0.0,
        "contrast": 0.0,
        "gamma": 0.0,
        "blur": 0.0,
        "noise": 0.0,
    },
    "light": {
        "hflip": 0.5,
        "vflip": 0.0,
        "rot90": 0.0,
        "rotate": 0.0,
        "scale": (0.8, 1.25),
        "brightness": 0.2,
        "contrast": 0.2,
        "gamma": 0.0,
        "blur": 0.0,
        "noise": 0.0,
    },
    "default": {
        "hflip": 0.5,
        "vflip": 0.5,
        "rot90": 0.5,
        "rotate": 10.0,
        "scale": (0.6, 1.6),
        "brightness": 0.3,
        "contrast": 0.3,
        "gamma": 0.3,
        "blur": 0.2,
        "noise": 0.03,
    },
    "heavy": {
        "hflip": 0.5,
        "vflip": 0.5,
        "rot90": 0.5,
        "rotate": 25.0,
        "scale": (0.4, 2.0),
        "brightness": 0.5,
        "contrast": 0.5,
        "gamma": 0.5,
        "blur": 0.4,
        "noise": 0.06,
    },
}


@dataclass
class AugmentConfig:
    """What to randomise, and how much. Probabilities are per image; ranges are symmetric maxima.

    Attributes:
        hflip: probability of a horizontal flip.
        vflip: probability of a vertical flip.
        rot90: probability of a random 90, 180 or 270 degree rotation.
        rotate: maximum angle in degrees of a small free rotation (0 = off).
        scale: (min, max) zoom relative to the training size; zoom in crops, zoom out pads.
        brightness: maximum relative brightness change.
        contrast: maximum relative contrast change.
        gamma: maximum relative gamma change (gamma drawn in [1 - g, 1 + g]).
        blur: probability of a Gaussian blur (sigma 0.1-2 px).
        noise: maximum standard deviation of additive Gaussian noise (image in [0, 1]).
    """

    hflip: float = 0.5
    vflip: float = 0.5
    rot90: float = 0.5
    rotate: float = 10.0
    scale: tuple[float, float] = (0.6, 1.6)
    brightness: float = 0.3
    contrast: float = 0.3
    gamma: float = 0.3
    blur: float = 0.2
    noise: float = 0.03

    @classmethod
    def parse(cls, spec: str | None) -> AugmentConfig:
        """Parse ``PRESET[,key=value...]`` (presets: none, light, default, heavy; ``scale=lo:hi``)."""
        spec = (spec or "default").strip()
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        values: dict[str, Any] = dict(PRESETS["default"])
        if parts and "=" not in parts[0]:
            name = parts.pop(0)
            if name not in PRESETS:
                raise MaskrtError(f"--augment: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
            values = dict(PRESETS[name])
        names = {f.name for f in fields(cls)}
        for p in parts:
            key, _, val = p.partition("=")
            key = key.strip()
            if key not in names or not val:
                raise MaskrtError(
                    f"--augment: cannot read {p!r}; use key=value with keys {', '.join(sorted(names))}"
                )
            try:
                if key == "scale":
                    lo, _, hi = val.partition(":")
                    values[key] = (float(lo), float(hi or lo))
                else:
                    values[key] = float(val)
            except ValueError as exc:
                raise MaskrtError(f"--augment: {key} needs a number (scale: lo:hi), got {val!r}") from exc
        cfg = cls(**values)
        cfg.scale = (float(cfg.scale[0]), float(cfg.scale[1]))
        if not 0 < cfg.scale[0] <= cfg.scale[1]:
            raise MaskrtError(f"--augment: scale must be lo:hi with 0 < lo <= hi, got {cfg.scale}")
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def enabled(self) -> bool:
        return self != AugmentConfig(**PRESETS["none"])


class RandomRot90(v2.Transform):
    """Rotate by a random multiple of 90 degrees (exact: no interpolation)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        k = int(torch.randint(1, 4, ()).item()) if float(torch.rand(())) < self.p else 0
        return {"k": k}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        k = params["k"]
        if k == 0:
            return inpt
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            return F.rotate(inpt, angle=90.0 * k, expand=True)
        if isinstance(inpt, (tv_tensors.Image, tv_tensors.Mask)):
            return tv_tensors.wrap(torch.rot90(inpt.as_subclass(torch.Tensor), k, dims=(-2, -1)), like=inpt)
        return inpt


class RandomRotation(v2.Transform):
    """A small free rotation by a random angle in ``[-degrees, degrees]`` (nearest, canvas kept).

    Same result as ``v2.RandomRotation`` with nearest interpolation, but masks are moved by one gather
    through a source-index map (one single-channel warp per image) instead of a float warp of every
    mask: a dense 512x512 scene with 150 instances takes tens of milliseconds instead of half a second,
    which kept the data loader from feeding a GPU.
    """

    def __init__(self, degrees: float, fill: float = 0.5) -> None:
        super().__init__()
        self.degrees, self.fill = float(degrees), fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        angle = float(torch.empty(1).uniform_(-self.degrees, self.degrees).item())
        return {"angle": angle}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        angle = params["angle"]
        if isinstance(inpt, tv_tensors.Mask):
            return tv_tensors.wrap(rotate_masks_nearest(inpt.as_subclass(torch.Tensor), angle), like=inpt)
        if isinstance(inpt, tv_tensors.Image):
            return F.rotate(inpt, angle, interpolation=v2.InterpolationMode.NEAREST, fill=self.fill)
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            return F.rotate(inpt, angle)
        return inpt


def rotate_masks_nearest(masks: torch.Tensor, angle: float) -> torch.Tensor:
    """``F.rotate(masks, angle, NEAREST, fill=0)`` for a ``(..., H, W)`` stack, by gathering source pixels.

    Nearest-neighbour rotation only ever copies a source pixel (or writes the fill), so rotating a map
    of flat pixel indices once tells, for every output pixel, which source pixel every mask takes.
    """
    h, w = masks.shape[-2:]
    if h * w >= 2**24 or masks.numel() == 0:  # float32 indices stop being exact; nothing to move
        return F.rotate(masks, angle, interpolation=v2.InterpolationMode.NEAREST, fill=0)
    index = torch.arange(h * w, dtype=torch.float32).reshape(1, h, w)
    src = F.rotate(index, angle, interpolation=v2.InterpolationMode.NEAREST, fill=-1.0).reshape(-1)
    src = src.to(torch.int64).numpy()
    outside = src < 0
    flat = masks.reshape(-1, h * w).numpy()
    out = np.take(flat, np.maximum(src, 0), axis=1)  # numpy's take is ~2x torch's index_select here
    if outside.any():
        out[:, outside] = 0
    return torch.from_numpy(out).reshape(masks.shape)


def nearest_exact_index(out_size: int, in_size: int) -> np.ndarray:
    """Source index of each output position when ``NEAREST_EXACT`` resizes ``in_size`` to ``out_size``.

    torch's formula, in float32 as its CPU kernel computes it: ``floor((i + 0.5) * (in / out))``.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    pos = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale
    return np.minimum(np.floor(pos).astype(np.int64), in_size - 1)


def scale_crop_pad_masks(masks: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    """:class:`ScaleCropPad` on a ``(N, H, W)`` mask stack, by row and column selection.

    Same result as ``NEAREST_EXACT`` resize then crop or zero pad, but only the pixels that stay on
    the canvas are read.
    """
    h, w = masks.shape[-2:]
    nh, nw = params["resize"]
    ch, cw = params["canvas"]
    ys, xs = nearest_exact_index(nh, h), nearest_exact_index(nw, w)
    oy = ox = 0
    if nh > ch:
        ys = ys[params["top"] : params["top"] + ch]
    elif nh < ch:
        oy = params["top"]
    if nw > cw:
        xs = xs[params["left"] : params["left"] + cw]
    elif nw < cw:
        ox = params["left"]
    src = masks.reshape(-1, h, w).numpy()
    out = np.zeros((src.shape[0], ch, cw), dtype=src.dtype)
    out[:, oy : oy + len(ys), ox : ox + len(xs)] = np.take(np.take(src, ys, axis=1), xs, axis=2)
    return torch.from_numpy(out).reshape(*masks.shape[:-2], ch, cw)


class ScaleCropPad(v2.Transform):
    """Zoom by a random factor relative to the training size, then crop (zoom in) or pad (zoom out).

    The output canvas is the image resized so its longer side is ``size``, so the model sees objects
    larger or smaller than usual rather than an image it would simply resize back.
    """

    def __init__(self, size: int, scale: tuple[float, float], fill: float = 0.5) -> None:
        super().__init__()
        self.size, self.scale, self.fill = size, scale, fill

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        h, w = v2.query_size(flat_inputs)
        base = self.size / max(h, w)
        ch, cw = max(1, round(h * base)), max(1, round(w * base))
        lo, hi = math.log(self.scale[0]), math.log(self.scale[1])
        s = math.exp(lo + (hi - lo) * float(torch.rand(())))
        nh, nw = max(1, round(ch * s)), max(1, round(cw * s))
        # crop offsets where the zoomed image is larger than the canvas, pad offsets where smaller
        top = int(torch.randint(0, abs(nh - ch) + 1, ()))
        left = int(torch.randint(0, abs(nw - cw) + 1, ()))
        return {"resize": (nh, nw), "canvas": (ch, cw), "top": top, "left": left}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if not isinstance(inpt, (tv_tensors.Image, tv_tensors.Mask, tv_tensors.BoundingBoxes)):
            return inpt
        if isinstance(inpt, tv_tensors.Mask):  # NEAREST_EXACT: NEAREST is off by half a pixel against the image
            return tv_tensors.wrap(scale_crop_pad_masks(inpt.as_subclass(torch.Tensor), params), like=inpt)
        nh, nw = params["resize"]
        ch, cw = params["canvas"]
        out = F.resize(inpt, [nh, nw], antialias=True)
        if nh > ch or nw > cw:
            top = params["top"] if nh > ch else 0
            left = params["left"] if nw > cw else 0
            out = F.crop(out, top, left, min(nh, ch), min(nw, cw))
        ph, pw = max(0, ch - nh), max(0, cw - nw)
        if ph or pw:
            top = params["top"] if ph else 0
            left = params["left"] if pw else 0
            fill = self.fill if isinstance(inpt, tv_tensors.Image) else 0
            out = F.pad(out, [left, top, pw - left, ph - top], fill=fill)
        return out


class RandomGamma(v2.Transform):
    """Gamma correction with gamma drawn in ``[1 - g, 1 + g]`` (image only)."""

    def __init__(self, g: float) -> None:
        super().__init__()
        self.g = g

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"gamma": 1.0 + self.g * (2 * float(torch.rand(())) - 1)}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Image):
            return F.adjust_gamma(inpt, max(params["gamma"], 0.05))
        return inpt


class RandomNoise(v2.Transform):
    """Additive Gaussian noise with a standard deviation drawn in ``[0, sigma]`` (image only)."""

    def __init__(self, sigma: float) -> None:
        super().__init__()
        self.sigma = sigma

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"sigma": self.sigma * float(torch.rand(()))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Image) and params["sigma"] > 0:
            noisy = (
                inpt.as_subclass(torch.Tensor) + torch.randn_like(inpt, dtype=torch.float32) * params["sigma"]
            )
            return tv_tensors.wrap(noisy.clamp_(0, 1).to(inpt.dtype), like=inpt)
        return inpt


def boxes_from_masks(target: dict[str, Any], min_area: int = 1) -> dict[str, Any]:
    """Recompute every box tight around its mask; drop instances whose mask has < ``min_area`` pixels.

    Boxes use the pixel-edge convention: a mask covering columns 3..5 gets ``x0 = 3, x1 = 6``.
    """
    masks = torch.as_tensor(target["masks"]).as_subclass(torch.Tensor)
    n, h, w = masks.shape
    m: np.ndarray = masks.numpy().astype(bool, copy=False)
    rows = np.any(m, axis=2)  # (N, H): cheap reductions over small arrays from here on
    cols = np.any(m, axis=1)  # (N, W)
    if min_area <= 1:
        keep_np = np.any(rows, axis=1)
    else:
        keep_np = m.reshape(n, -1).sum(1) >= min_area
    rows, cols = rows[keep_np], cols[keep_np]
    boxes_np = np.zeros((len(rows), 4), dtype=np.float32)
    if len(rows):
        boxes_np[:, 0] = cols.argmax(1)
        boxes_np[:, 2] = w - cols[:, ::-1].argmax(1)
        boxes_np[:, 1] = rows.argmax(1)
        boxes_np[:, 3] = h - rows[:, ::-1].argmax(1)
    keep = torch.from_numpy(keep_np)
    masks = masks[keep] if not bool(keep.all()) else masks
    boxes = torch.from_numpy(boxes_np)
    out = dict(target)
    out["masks"] = tv_tensors.Mask(masks if masks.dtype == torch.uint8 else masks.to(torch.uint8))
    out["boxes"] = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w))
    for key in ("labels", "area", "iscrowd"):
        if key in target:
            out[key] = target[key][keep]
    if "area" in out:
        out["area"] = masks.flatten(1).sum(1).float()
    return out


class Augment:
    """Callable ``(image, target) -> (image, target)`` for :class:`maskrt.train.dataset.MaskDataset`."""

    def __init__(self, cfg: AugmentConfig, image_size: int) -> None:
        self.cfg = cfg
        geo: list[v2.Transform] = []
        if cfg.hflip > 0:
            geo.append(v2.RandomHorizontalFlip(cfg.hflip))
        if cfg.vflip > 0:
            geo.append(v2.RandomVerticalFlip(cfg.vflip))
        if cfg.rot90 > 0:
            geo.append(RandomRot90(cfg.rot90))
        if cfg.rotate > 0:
            geo.append(RandomRotation(cfg.rotate, fill=0.5))
        if cfg.scale != (1.0, 1.0):
            geo.append(ScaleCropPad(image_size, cfg.scale))
        photo: list[v2.Transform] = []
        if cfg.brightness > 0 or cfg.contrast > 0:
            photo.append(v2.ColorJitter(brightness=cfg.brightness or None, contrast=cfg.contrast or None))
        if cfg.gamma > 0:
            photo.append(RandomGamma(cfg.gamma))
        if cfg.blur > 0:
            photo.append(v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 2.0))], p=cfg.blur))
        if cfg.noise > 0:
            photo.append(RandomNoise(cfg.noise))
        self.geometric = v2.Compose(geo) if geo else None
        self.photometric = v2.Compose(photo) if photo else None

    def __call__(self, image: torch.Tensor, target: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        h, w = image.shape[-2:]
        img = tv_tensors.Image(image)
        tgt = dict(target)
        tgt["masks"] = tv_tensors.Mask(target["masks"])
        tgt["boxes"] = tv_tensors.BoundingBoxes(target["boxes"], format="XYXY", canvas_size=(h, w))
        if self.geometric is not None:
            img, tgt = self.geometric(img, tgt)
        tgt = boxes_from_masks(tgt)
        if self.photometric is not None:
            img = self.photometric(img)
        out = {k: (v.as_subclass(torch.Tensor) if isinstance(v, torch.Tensor) else v) for k, v in tgt.items()}
        return img.as_subclass(torch.Tensor), out


def build_augment(cfg: AugmentConfig | str | None, image_size: int) -> Augment | None:
    """The training augmentation for ``cfg`` (a config or a ``--augment`` string); ``None`` when all off."""
    if not isinstance(cfg, AugmentConfig):
        cfg = AugmentConfig.parse(cfg)
    return Augment(cfg, image_size) if cfg.enabled else None
