"""Fixtures for the export tests: a tiny lite model that detects things, exported once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from maskrt.artifact import ArtifactMeta
from maskrt.export.metadata import make_meta
from maskrt.export.onnx_export import export_onnx
from maskrt.export.scenes import synthetic_scenes
from maskrt.export.wrapper import ExportWrapper
from maskrt.train.models import ModelRecipe, build_model

SIZE = 128
MAX_DET = 50


def detecting_model(recipe: ModelRecipe, seed: int = 0, bias: float = 1.0) -> torch.nn.Module:
    """Random weights, with a box classifier whose scores vary per proposal and confident mask logits.

    (A few training iterations would be more realistic but take minutes on the shared 2-core CPU.)
    ``bias`` shifts every object class logit: large negative values give a model that detects nothing.
    """
    torch.manual_seed(seed)
    model = build_model(recipe).eval()
    with torch.no_grad():
        cls = model.roi_heads.box_predictor.cls_score
        torch.nn.init.normal_(cls.weight, std=3.0)
        cls.bias.zero_()
        cls.bias[1:] += bias
        model.roi_heads.mask_predictor.mask_fcn_logits.weight.mul_(20)
    return model


@dataclass
class Exported:
    path: Path
    wrapper: ExportWrapper
    recipe: ModelRecipe
    meta: ArtifactMeta


@pytest.fixture(scope="session")
def lite_recipe() -> ModelRecipe:
    return ModelRecipe(arch="lite", classes=["bubble", "drop"], image_size=SIZE)


@pytest.fixture(scope="session")
def lite_export(tmp_path_factory: pytest.TempPathFactory, lite_recipe: ModelRecipe) -> Exported:
    torch.set_num_threads(2)
    wrapper = ExportWrapper(detecting_model(lite_recipe), (SIZE, SIZE), MAX_DET, lite_recipe.mean, lite_recipe.std)
    meta = make_meta(lite_recipe, (SIZE, SIZE), MAX_DET, metrics={"mask_mAP": 0.42, "box_mAP50": 0.9})
    path = tmp_path_factory.mktemp("lite") / "lite.onnx"
    export_onnx(wrapper, meta, path)
    return Exported(path, wrapper, lite_recipe, meta)


@pytest.fixture(scope="session")
def scene_images() -> list[np.ndarray]:
    """Four images of different content: three bubble scenes of different density and a blank one."""
    return [s.image for s in synthetic_scenes(4, (SIZE, SIZE), seed=3)]


@pytest.fixture(scope="session")
def make_model():
    """:func:`detecting_model` for tests that need their own model."""
    return detecting_model
