"""benchmarks/separable_rpn.py: its stages change only the separable stride-4 RPN convolution, and each one learns."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def sep():
    spec = importlib.util.spec_from_file_location("separable_rpn", BENCH / "separable_rpn.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["separable_rpn"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from maskrt.train.synth.dataset import generate_dataset

    out = tmp_path_factory.mktemp("sep") / "scenes"
    generate_dataset(out, images=3, size=96, scene="boiling-side", seed=5)
    return out


def _lite(size: int = 96):
    from maskrt.train.models import ModelRecipe, build_model

    recipe = ModelRecipe(arch="lite", classes=["bubble", "drop"], image_size=size)
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    return model, recipe, {k: v.clone() for k, v in model.state_dict().items()}


def test_stages_train_only_the_separable_convolution(sep, scenes):
    from maskrt.train.dataset import MaskDataset, align_classes, load_datasets

    model, recipe, state = _lite()
    view = MaskDataset(align_classes(load_datasets([str(scenes)]), recipe.classes), max_size=recipe.image_size)
    stages = sep.SeparableRpnStages(model, state)
    images = sep._spread(view, 3)
    fit = stages.fit(images, steps=60)
    # the fit improves on the weight-space factorisation it starts from
    assert 0 <= fit["output_error"] < fit["kernel_error"] <= 1
    first = {k: v.clone() for k, v in stages.fast.conv_fine.state_dict().items()}
    stages.fit_outputs(images, steps=3, crop=16)
    losses = stages.train_rpn_loss(view, 3, steps=3, kd=0.1)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg"} and all(v >= 0 for v in losses.values())
    assert any(not torch.equal(first[k], v) for k, v in stages.fast.conv_fine.state_dict().items())
    # every weight of the model but the new convolution is the checkpoint's, bit for bit
    after = model.state_dict()
    for k, v in state.items():
        assert torch.equal(after[k], v), k
    scores = stages.score({"scenes": align_classes(load_datasets([str(scenes)]), recipe.classes)}, dense=True)
    assert set(scores) == {"scenes"} and 0 <= scores["scenes"] <= 1
    assert model.rpn.head is stages.fast  # scoring the dense head puts the separable one back


def test_refuses_a_checkpoint_that_is_not_lite(sep, scenes, tmp_path, capsys):
    from maskrt.train.checkpoint import save_checkpoint
    from maskrt.train.models import ModelRecipe, build_model

    recipe = ModelRecipe(arch="lite-fast", classes=["bubble"], image_size=64)
    ckpt = tmp_path / "fast.pt"
    save_checkpoint(ckpt, build_model(recipe), recipe)
    out = tmp_path / "r.json"
    assert sep.main([str(ckpt), "--data", str(scenes), "--heldout", str(scenes), "--out", str(out)]) == 2
    assert "lite-fast" in capsys.readouterr().err and not out.exists()


def test_skips_without_its_data(sep, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert sep.main(["--data", str(tmp_path / "none"), "--heldout", str(tmp_path / "none"), "--out", str(out)]) == 0
    assert "skipped" in capsys.readouterr().out and not out.exists()
