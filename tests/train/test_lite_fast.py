"""The ``lite-fast`` preset: ``lite`` with separable 3x3 convolutions on the stride-4 level, starting from ``lite`` weights."""

from __future__ import annotations

import torch

from maskrt.train.models import ModelRecipe, SeparableConv3x3, build_model, load_matching


def _recipe(arch: str) -> ModelRecipe:
    return ModelRecipe(arch=arch, classes=["bubble", "droplet"], image_size=128)


def test_lite_weights_fill_everything_but_the_stride_four_convolutions() -> None:
    torch.manual_seed(0)
    lite, fast = build_model(_recipe("lite")), build_model(_recipe("lite-fast"))
    loaded, skipped = load_matching(fast, lite.state_dict())
    assert sorted(skipped) == ["backbone.fpn.layer_blocks.0.0.bias", "backbone.fpn.layer_blocks.0.0.weight"]
    new = set(fast.state_dict()) - set(loaded)
    assert new and all(k.startswith(("backbone.fpn.layer_blocks.0.", "rpn.head.conv_fine.")) for k in new)
    # the coarser levels keep lite's dense RPN convolution, loaded as is
    assert torch.equal(fast.rpn.head.conv[0][0].weight, lite.rpn.head.conv[0][0].weight)


def test_stride_four_convolutions_cost_an_eighth() -> None:
    lite, fast = build_model(_recipe("lite")), build_model(_recipe("lite-fast"))

    def weights(m: torch.nn.Module) -> int:
        return sum(p.numel() for n, p in m.named_parameters() if n.endswith("weight"))

    dense = weights(lite.backbone.fpn.layer_blocks[0]) + weights(lite.rpn.head.conv)
    light = weights(fast.backbone.fpn.layer_blocks[0]) + weights(fast.rpn.head.conv_fine)
    assert isinstance(fast.backbone.fpn.layer_blocks[0], SeparableConv3x3)
    assert light * 7 < dense  # per-pixel multiply-adds at stride 4 scale with these weights


def test_lite_fast_segments_an_image_in_eval_mode() -> None:
    torch.manual_seed(0)
    fast = build_model(_recipe("lite-fast")).eval()
    with torch.inference_mode():
        out = fast([torch.rand(3, 128, 96)])[0]
    assert set(out) == {"boxes", "labels", "scores", "masks"}
    assert out["masks"].shape[-2:] == (128, 96)
