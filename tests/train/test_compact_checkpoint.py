"""compact_checkpoint: FP16 weights, the recipe (max_det set or kept), no optimiser; it loads as a model again."""

from __future__ import annotations

from pathlib import Path

import torch

from maskrt.train.checkpoint import compact_checkpoint, load_checkpoint, load_model

BUNDLED = Path(__file__).resolve().parents[2] / "train" / "models" / "bubbles-lite.pt"


def test_compact_checkpoint_halves_the_weights_and_sets_max_det(tmp_path: Path) -> None:
    small = compact_checkpoint(BUNDLED, tmp_path / "small.pt", max_det=123)
    saved = load_checkpoint(tmp_path / "small.pt")
    assert saved["recipe"]["max_det"] == 123 and "optimizer" not in saved
    assert all(v.dtype == torch.float16 for v in saved["model"].values() if v.is_floating_point())
    assert small["source"]["checkpoint"] == "bubbles-lite.pt"
    kept = compact_checkpoint(BUNDLED, tmp_path / "kept.pt")
    assert kept["recipe"]["max_det"] == load_checkpoint(BUNDLED)["recipe"]["max_det"]
    model, recipe, _ = load_model(tmp_path / "small.pt")
    assert recipe.max_det == 123 and model.roi_heads.detections_per_img == 123
