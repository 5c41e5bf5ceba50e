"""`maskrt train`'s options have TrainConfig's defaults and the mask options MaskOptions'; each run option has a flag.

The CLI writes the defaults out (it may not import maskrt.train before a training command runs), so these tests
are what keeps the two in step.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import typer.main

from maskrt.cli import app
from maskrt.train.config import TrainConfig
from maskrt.train.data.masks import MaskOptions


def _params(name: str) -> dict[str, object]:
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {p.name: p.default for p in command.params}


def test_train_option_defaults_are_train_configs() -> None:
    params, cfg = _params("train"), TrainConfig()
    for f in fields(TrainConfig):
        if f.name in params and f.name not in ("data", "val"):
            value = getattr(cfg, f.name)
            assert params[f.name] == (Path(value) if f.name == "out" else value), f.name
    assert params["no_progress"] is (not cfg.progress)
    assert {f.name for f in fields(TrainConfig)} - set(params) == {"weight_decay", "log_every", "progress", "masks"}


def test_mask_option_defaults_are_mask_options() -> None:
    m = MaskOptions()
    for command in ("train", "convert"):
        params = _params(command)
        assert (params["mask_kind"], params["mask_threshold"], params["mask_connectivity"], params["mask_min_area"],
                params["mask_class_name"], params["mask_split"], params["mask_classes"]) == (
            m.kind, m.threshold, m.connectivity, m.min_area, m.class_name, m.split, None), command


def test_the_mask_option_table_is_mask_options() -> None:
    from maskrt.cli.data import MASK_OPTIONS

    m = MaskOptions()
    assert {field: default for field, _, _, default, _ in MASK_OPTIONS} == {
        f.name: getattr(m, f.name) for f in fields(MaskOptions) if f.name != "split_ratio"}
