"""--weights: local checkpoints and state dicts with other classes, the bundled name, the offline error."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch

from maskrt.errors import MaskrtError
from maskrt.train import weights as tv_weights
from maskrt.train.checkpoint import save_checkpoint
from maskrt.train.models import ModelRecipe, build_model
from maskrt.train.weights_source import BUNDLED, model_for_training

BACKBONE_KEY = "backbone.body.0.0.weight"
CLS_KEY = "roi_heads.box_predictor.cls_score.weight"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(3)
    recipe = ModelRecipe(
        "lite", ["bubble"], image_size=128, anchor_sizes=[[6], [12], [24], [48], [96]], aspect_ratios=[1.0]
    )
    model = build_model(recipe)
    path = save_checkpoint(tmp_path_factory.mktemp("w") / "src.pt", model, recipe)
    return path, model.state_dict()


def test_checkpoint_with_other_classes_replaces_class_layers(
    source: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    path, state = source
    recipe, model = model_for_training(None, ["bubble", "droplet"], 160, str(path))
    own = model.state_dict()
    assert recipe.arch == "lite" and recipe.image_size == 160 and recipe.classes == ["bubble", "droplet"]
    assert recipe.anchor_sizes == [[6], [12], [24], [48], [96]]  # the checkpoint's anchors come along
    assert torch.equal(own[BACKBONE_KEY], state[BACKBONE_KEY])
    assert own[CLS_KEY].shape[0] == 3 and state[CLS_KEY].shape[0] == 2


def test_checkpoint_with_same_classes_keeps_class_layers(
    source: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    path, state = source
    _, model = model_for_training("lite", ["bubble"], 128, str(path))
    assert torch.equal(model.state_dict()[CLS_KEY], state[CLS_KEY])


def test_checkpoint_with_renamed_single_class_starts_class_layers_fresh(
    source: tuple[Path, dict[str, torch.Tensor]],
) -> None:
    path, state = source
    torch.manual_seed(0)
    _, model = model_for_training("lite", ["taylor bubble"], 128, str(path))
    own = model.state_dict()
    assert not torch.equal(own[CLS_KEY], state[CLS_KEY])  # same shape, different meaning: not reused
    assert torch.equal(own[BACKBONE_KEY], state[BACKBONE_KEY])


def test_plain_torchvision_state_dict(source: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path) -> None:
    _, state = source
    plain = tmp_path / "plain.pth"
    torch.save({k: v for k, v in state.items()}, plain)
    _recipe, model = model_for_training("lite", ["a", "b", "c"], 128, str(plain))
    own = model.state_dict()
    assert torch.equal(own[BACKBONE_KEY], state[BACKBONE_KEY]) and own[CLS_KEY].shape[0] == 4


def test_bad_weights_sources(tmp_path: Path) -> None:
    with pytest.raises(MaskrtError, match="not found"):
        model_for_training("lite", ["a"], 128, str(tmp_path / "nope.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(MaskrtError, match="junk.pt: cannot read weights"):
        model_for_training("lite", ["a"], 128, str(junk))
    bundled = Path(tv_weights.__file__).parent / "models" / BUNDLED["bubbles-lite"]
    if not bundled.exists():
        with pytest.raises(MaskrtError, match="bubbles-lite.*not installed"):
            model_for_training("lite", ["a"], 128, "bubbles-lite")


def test_offline_error_names_the_file_to_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("MASKRT_OFFLINE", raising=False)

    def no_network(url: str, dst: str, *a: object, **k: object) -> None:
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    from torchvision.models import MobileNet_V3_Large_Weights

    expected = tmp_path / "torch" / "hub" / "checkpoints" / "mobilenet_v3_large-8738ca79.pth"
    assert tv_weights.cache_file(MobileNet_V3_Large_Weights.IMAGENET1K_V1) == expected
    with pytest.raises(MaskrtError) as err:
        model_for_training("lite", ["bubble"], 128, "imagenet")
    msg = str(err.value)
    assert str(expected) in msg and MobileNet_V3_Large_Weights.IMAGENET1K_V1.url in msg and "\n" not in msg
    # with the file in place, it is read from the cache without any download
    expected.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"w": torch.ones(2)}, expected)
    state = tv_weights.fetch_torchvision_state_dict(MobileNet_V3_Large_Weights.IMAGENET1K_V1)
    assert torch.equal(state["w"], torch.ones(2))


def test_set_max_det_keeps_enough_proposals_to_fill_a_dense_limit() -> None:
    """A dense --max-det (eval, export, bench) must raise the RPN's test-time proposals, never lower them."""
    from maskrt.train.models import set_max_det

    model = build_model(ModelRecipe("lite", ["bubble"], 128, max_det=100))
    post, pre = model.rpn._post_nms_top_n, model.rpn._pre_nms_top_n
    base_post, base_pre = post["testing"], pre["testing"]
    assert base_post >= 200  # the recipe's own 100 already has its proposals
    set_max_det(model, 550)
    assert model.roi_heads.detections_per_img == 550
    assert post["testing"] == 1100 and pre["testing"] == max(base_pre, 2200)
    set_max_det(model, 10)  # a lower limit keeps the proposals: outputs then match the dense model's top 10
    assert model.roi_heads.detections_per_img == 10 and post["testing"] == 1100
    assert post["training"] == build_model(ModelRecipe("lite", ["bubble"], 128)).rpn._post_nms_top_n["training"]
