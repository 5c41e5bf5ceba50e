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


def test_distilled_stride_four_convolutions_reproduce_the_dense_ones() -> None:
    """A lite-fast model from lite weights: its separable convolutions are fitted to lite's dense outputs."""
    from maskrt.train.lite_fast import distil_stride_four, has_dense_stride_four

    torch.manual_seed(0)
    lite = build_model(_recipe("lite")).eval()
    state = lite.state_dict()
    assert has_dense_stride_four(state)
    images = [torch.rand(3, 128, 128) for _ in range(3)]

    def stride_four(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            batch, _ = model.transform(images[:1])
            f = model.backbone(batch.tensors)["0"]
            head = model.rpn.head
            return f, (head.conv_fine if hasattr(head, "conv_fine") else head.conv)(f)

    want_f, want_r = stride_four(lite)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm())

    fresh = build_model(_recipe("lite-fast")).eval()
    load_matching(fresh, state)
    fresh_f, fresh_r = stride_four(fresh)
    fast = build_model(_recipe("lite-fast")).eval()
    load_matching(fast, state)
    report = distil_stride_four(fast, state, images, steps=60, lr=1e-2)
    got_f, got_r = stride_four(fast)

    for conv in ("fpn", "rpn"):
        assert report[conv]["output_error"] < report[conv]["output_error_factorised"]
        assert 0 < report[conv]["kernel_error"] < 1
    assert rel(got_f, want_f) < 0.5 * rel(fresh_f, want_f)
    assert rel(got_r, want_r) < 0.5 * rel(fresh_r, want_r)
    # everything but the two convolutions is still lite's
    for k, v in fast.state_dict().items():
        if not k.startswith(("backbone.fpn.layer_blocks.0.", "rpn.head.conv_fine.")):
            assert torch.equal(v, state[k]), k


def test_a_lite_fast_run_from_a_lite_checkpoint_starts_from_the_distilled_convolutions(
    tmp_path, tiny_run, shapes_coco
) -> None:  # type: ignore[no-untyped-def]
    from maskrt.train.checkpoint import load_checkpoint, recipe_of
    from maskrt.train.trainer import TrainConfig, train

    lite_ckpt = load_checkpoint(tiny_run / "last.pt")
    out = tmp_path / "fast"
    train(TrainConfig(data=[str(shapes_coco)], arch="lite-fast", weights=str(tiny_run / "last.pt"), imgsz=128,
                      iters=1, batch=2, lr=1e-9, warmup=0, workers=0, out=str(out), progress=False))
    got = load_checkpoint(out / "last.pt")
    assert got["recipe"]["arch"] == "lite-fast"

    def fpn_stride_four(ckpt: dict, image: torch.Tensor) -> torch.Tensor:  # type: ignore[type-arg]
        model = build_model(recipe_of(ckpt))
        model.load_state_dict(ckpt["model"])
        model.eval()
        with torch.no_grad():
            batch, _ = model.transform([image])
            return model.backbone(batch.tensors)["0"]

    image = torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(5))
    want = fpn_stride_four(lite_ckpt, image)
    fresh = build_model(recipe_of(got))  # lite-fast with lite's weights, the new convolutions left random
    load_matching(fresh, lite_ckpt["model"])
    fresh_ckpt = {"recipe": got["recipe"], "model": fresh.state_dict()}
    err = float((fpn_stride_four(got, image) - want).norm() / want.norm())
    err_fresh = float((fpn_stride_four(fresh_ckpt, image) - want).norm() / want.norm())
    assert err < 0.5 * err_fresh
