"""--freeze-bn: fine-tuning keeps every BatchNorm layer exactly as loaded, and trains everything else."""
from __future__ import annotations

import torch

from maskrt.train import engine
from maskrt.train.models import ModelRecipe, build_model


def _bn_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every BatchNorm tensor: statistics, batch count, scale and shift."""
    return {
        f"{name}.{k}": v.detach().clone()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d)
        for k, v in m.state_dict().items()
    }


def test_frozen_batchnorm_stays_as_loaded_through_training_steps() -> None:
    torch.manual_seed(0)
    model = build_model(ModelRecipe(arch="lite", classes=["bubble"], image_size=128))
    bn_layers = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn_layers, "the lite backbone has BatchNorm layers"
    for m in bn_layers:  # statistics unlike what a batch of these images would give
        m.running_mean.fill_(0.3)
        m.running_var.fill_(2.0)
    assert engine.freeze_batchnorm(model) == len(bn_layers)
    before = _bn_state(model)
    conv = next(m for m in model.backbone.body.modules() if isinstance(m, torch.nn.Conv2d))
    conv_before = conv.weight.detach().clone()

    opt = engine.build_optimizer(model, "sgd", 0.01)
    assert not any(p is m.weight for g in opt.param_groups for p in g["params"] for m in bn_layers)
    model.train()
    assert model.training and not any(m.training for m in bn_layers)
    images = [torch.rand(3, 128, 128) for _ in range(2)]
    masks = torch.zeros(1, 128, 128, dtype=torch.uint8)
    masks[0, 30:70, 40:90] = 1
    targets = [
        {"boxes": torch.tensor([[40.0, 30.0, 90.0, 70.0]]), "labels": torch.tensor([1]), "masks": masks}
        for _ in images
    ]
    for _ in range(2):
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _bn_state(model)
    assert before.keys() == after.keys() and len(before) >= 4 * len(bn_layers)
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert not torch.equal(conv.weight, conv_before), "the convolutions still learn"
    model.eval()
    model.train()  # a later train() (after a validation) keeps them frozen
    assert not any(m.training for m in bn_layers)
