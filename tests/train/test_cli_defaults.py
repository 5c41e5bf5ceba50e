"""`maskrt train`'s options take TrainConfig's defaults and the mask options MaskOptions'; each run option has a flag.

Each default is written once, in its dataclass, and the CLI reads it from there: ``maskrt.options`` imports
neither torch nor maskrt.train, so the CLI starts without them. These tests hold every option's default to its
field's, so that a default written out again in the CLI with another value fails here. Export's, run's and
predict's options are held to theirs in tests/export/test_cli.py, tests/stream/test_cli_run.py and
tests/runtime/test_predict_cli.py.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import typer.main

from maskrt.cli import app
from maskrt.train.config import TrainConfig
from maskrt.train.data.masks import MaskOptions


def _command(name: str) -> Any:
    command: Any = typer.main.get_command(app)
    for part in name.split():  # "data check": a command of a group
        command = command.commands[part]
    return command


def _params(name: str) -> dict[str, object]:
    return {p.name: p.default for p in _command(name).params}


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
    for command in ("train", "convert", "data check"):
        params = _params(command)
        assert (params["mask_kind"], params["mask_threshold"], params["mask_connectivity"], params["mask_min_area"],
                params["mask_class_name"], params["mask_split"], params["mask_classes"]) == (
            m.kind, m.threshold, m.connectivity, m.min_area, m.class_name, m.split, None), command


def test_the_mask_option_table_is_mask_options() -> None:
    from maskrt.cli.data import MASK_OPTIONS

    assert {field for field, *_ in MASK_OPTIONS} == {f.name for f in fields(MaskOptions)} - {"split_ratio"}
