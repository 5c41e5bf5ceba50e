"""Augmentation keeps image, masks and boxes together: every box is tight around its transformed mask."""

from __future__ import annotations

import pytest
import torch

from maskrt.errors import MaskrtError
from maskrt.train.augment import PRESETS, AugmentConfig, build_augment

SIZE = 96


def _sample(seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """An image whose bright pixels are exactly the union of the instance masks (discs and rectangles)."""
    g = torch.Generator().manual_seed(seed)
    h, w = SIZE, SIZE + 32  # not square: 90-degree rotations change the shape
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    masks = []
    for k in range(3):
        cx = float(torch.randint(15, w - 15, (), generator=g))
        cy = float(torch.randint(15, h - 15, (), generator=g))
        r = float(torch.randint(5, 12, (), generator=g))
        m = (
            ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r)
            if k % 2 == 0
            else (((xx - cx).abs() <= r) & ((yy - cy).abs() <= r / 2))
        )
        masks.append(m)
    mt = torch.stack(masks).to(torch.uint8)
    image = mt.any(0).float().expand(3, h, w).clone()
    boxes = torch.zeros(3, 4)
    target = {
        "masks": mt,
        "boxes": boxes,
        "labels": torch.tensor([1, 2, 1]),
        "iscrowd": torch.zeros(3, dtype=torch.long),
    }
    return image, target


def _tight(masks: torch.Tensor) -> torch.Tensor:
    out = []
    for m in masks.bool():
        ys, xs = torch.nonzero(m, as_tuple=True)
        out.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return torch.tensor(out, dtype=torch.float32).reshape(-1, 4)


def _single(name: str) -> AugmentConfig:
    values = dict(PRESETS["none"])
    values[name] = PRESETS["heavy"][name] if name != "hflip" and name != "vflip" and name != "rot90" else 1.0
    return AugmentConfig(**values)


GEOMETRIC = ["hflip", "vflip", "rot90", "rotate", "scale"]
PHOTOMETRIC = ["brightness", "contrast", "gamma", "blur", "noise"]


@pytest.mark.parametrize("name", GEOMETRIC)
def test_geometric_transform_moves_masks_with_image_and_boxes_stay_tight(name: str) -> None:
    aug = build_augment(_single(name), image_size=SIZE + 32)
    assert aug is not None
    changed = 0
    for seed in range(6):
        image, target = _sample(seed)
        torch.manual_seed(seed)
        out_img, out = aug(image, target)
        masks = out["masks"]
        assert masks.shape[-2:] == out_img.shape[-2:]
        assert len(masks) == len(out["boxes"]) == len(out["labels"]) == len(out["iscrowd"])
        assert len(masks) > 0 and bool((masks.flatten(1).sum(1) > 0).all())
        assert torch.equal(out["boxes"], _tight(masks))
        # the bright image pixels are where the masks went (interpolation blurs edges only)
        bright = out_img[0] > 0.5
        union = masks.bool().any(0)
        iou = (bright & union).sum() / (bright | union).sum()
        assert iou > 0.85, f"{name}: image and masks drifted apart (IoU {iou:.2f})"
        changed += int(out_img.shape != image.shape or not torch.equal(out_img, image))
    assert changed > 0, f"{name} never changed the image"


@pytest.mark.parametrize("name", PHOTOMETRIC)
def test_photometric_transform_leaves_geometry_alone(name: str) -> None:
    aug = build_augment(_single(name), image_size=SIZE + 32)
    assert aug is not None
    image, target = _sample(1)
    torch.manual_seed(0)
    out_img, out = aug(image, target)
    assert torch.equal(out["masks"], target["masks"])
    assert torch.equal(out["boxes"], _tight(target["masks"]))
    assert out_img.shape == image.shape and float(out_img.min()) >= 0 and float(out_img.max()) <= 1


@pytest.mark.parametrize("preset", ["default", "heavy"])
def test_full_pipeline_boxes_tight_over_many_draws(preset: str) -> None:
    aug = build_augment(preset, image_size=SIZE)
    assert aug is not None
    for seed in range(12):
        image, target = _sample(seed)
        torch.manual_seed(seed)
        out_img, out = aug(image, target)
        assert out["masks"].shape[-2:] == out_img.shape[-2:]
        assert max(out_img.shape[-2:]) == SIZE  # zoom in crops, zoom out pads: the canvas is fixed
        assert torch.equal(out["boxes"], _tight(out["masks"]))


def test_parse_presets_and_overrides() -> None:
    cfg = AugmentConfig.parse("light,rotate=20,scale=0.5:2")
    assert cfg.rotate == 20 and cfg.scale == (0.5, 2.0) and cfg.hflip == PRESETS["light"]["hflip"]
    assert build_augment("none", 128) is None
    assert AugmentConfig.parse("noise=0").noise == 0 and AugmentConfig.parse("noise=0").hflip == 0.5
    for bad in ("sparkle", "rotate=abc", "colour=1", "scale=2:1"):
        with pytest.raises(MaskrtError, match="--augment"):
            AugmentConfig.parse(bad)


@pytest.mark.parametrize("seed", range(6))
def test_fast_mask_rotation_equals_torchvision_nearest_rotation(seed: int) -> None:
    """The gather-based mask rotation gives exactly torchvision's nearest rotation (fill 0 outside)."""
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    from maskrt.train.augment import rotate_masks_nearest

    g = torch.Generator().manual_seed(seed)
    h, w = 37 + 11 * seed, 53 + 7 * seed  # odd and even sizes, portrait and landscape
    masks = (torch.rand(5, h, w, generator=g) < 0.3).to(torch.uint8)
    for angle in (-25.0, -7.3, 0.0, 3.1, 10.0, 44.9):
        ref = F.rotate(masks, angle, interpolation=v2.InterpolationMode.NEAREST, fill=0)
        assert torch.equal(rotate_masks_nearest(masks, angle), ref), angle
    assert rotate_masks_nearest(torch.zeros(0, h, w, dtype=torch.uint8), 5.0).shape == (0, h, w)


@pytest.mark.parametrize("seed", range(8))
def test_fast_mask_scale_crop_pad_equals_resize_crop_pad(seed: int) -> None:
    """Row/column selection gives exactly NEAREST_EXACT resize + crop / zero pad, zooming in and out."""
    from torchvision.transforms import v2
    from torchvision.transforms.v2 import functional as F

    from maskrt.train.augment import ScaleCropPad, nearest_exact_index, scale_crop_pad_masks

    g = torch.Generator().manual_seed(100 + seed)
    h, w = int(torch.randint(20, 90, (), generator=g)), int(torch.randint(20, 90, (), generator=g))
    masks = (torch.rand(4, h, w, generator=g) < 0.4).to(torch.uint8)
    torch.manual_seed(seed)
    t = ScaleCropPad(64, (0.4, 2.5))
    for _ in range(10):
        p = t.make_params([tv_mask(masks)])
        (nh, nw), (ch, cw), top, left = p["resize"], p["canvas"], p["top"], p["left"]
        ref = F.resize(masks, [nh, nw], interpolation=v2.InterpolationMode.NEAREST_EXACT)
        ref = ref[:, top : top + ch] if nh > ch else ref
        ref = ref[:, :, left : left + cw] if nw > cw else ref
        pad_top, pad_left = (top if nh < ch else 0), (left if nw < cw else 0)
        ref = F.pad(ref, [pad_left, pad_top, max(0, cw - nw) - pad_left, max(0, ch - nh) - pad_top], fill=0)
        assert torch.equal(scale_crop_pad_masks(masks, p), ref), p
    for n_in, n_out in ((7, 3), (3, 7), (512, 333), (320, 512), (100, 100)):
        ref = F.resize(
            torch.arange(n_in, dtype=torch.float32).reshape(1, n_in, 1),
            [n_out, 1],
            interpolation=v2.InterpolationMode.NEAREST_EXACT,
        )
        assert nearest_exact_index(n_out, n_in).tolist() == ref.flatten().long().tolist()


def tv_mask(masks: torch.Tensor) -> torch.Tensor:
    """Wrap as a torchvision Mask (what ScaleCropPad.make_params queries the size of)."""
    from torchvision import tv_tensors

    return tv_tensors.Mask(masks)
