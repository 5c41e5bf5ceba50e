"""A model with the ``phase`` output in the stream: the void fraction comes from the phase map, the instances'
union is kept beside it (``void_fraction_instances``), and ``maskrt run``'s frame table carries both."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maskrt.cli import main
from maskrt.runtime import Segmenter
from maskrt.runtime.stream import Stream, StreamOptions


def test_void_fraction_follows_the_phase_map(phase_model: Path, image_folder: tuple[Path, Any]) -> None:
    folder, seq = image_folder
    with Segmenter(phase_model, threads=1) as seg:
        results = list(Stream(seg, str(folder)))
        roi = list(Stream(seg, str(folder), StreamOptions(roi=(0, 0, 80, 160))))
    assert len(results) == len(seq.frames)
    for r, truth, r_roi in zip(results, seq.void, roi, strict=True):
        inst = r.instances
        assert inst.phase is not None and inst.phase.shape == (160, 160)
        assert r.stats["void_fraction"] == inst.void_fraction()
        assert r.stats["void_fraction"] == pytest.approx(truth, abs=0.02)  # the drawn discs, at stride 4
        assert r.stats["void_fraction_instances"] == pytest.approx(inst.masks.any(axis=0).mean())
        assert r_roi.stats["void_fraction"] == r_roi.instances.void_fraction(roi=(0, 0, 80, 160))
    # the constant instances never move; the phase map follows the frames' moving discs
    assert len({r.stats["void_fraction_instances"] for r in results}) == 1
    assert len({r.stats["void_fraction"] for r in results}) > 1


def test_run_writes_both_void_fractions(phase_model: Path, image_folder: tuple[Path, Any], tmp_path: Path) -> None:
    folder, _ = image_folder
    out = tmp_path / "out"
    assert main(["run", str(phase_model), str(folder), "--threads", "1", "--csv", str(out / "f.csv"),
                 "--jsonl", str(out / "f.jsonl")]) == 0
    with open(out / "f.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    records = [json.loads(line) for line in (out / "f.jsonl").read_text().splitlines()]
    header = list(rows[0])
    assert header.index("void_fraction_instances") == header.index("void_fraction") + 1
    for row, rec in zip(rows, records, strict=True):
        assert float(row["void_fraction"]) == pytest.approx(rec["stats"]["void_fraction"], abs=1e-6)
        assert float(row["void_fraction_instances"]) == pytest.approx(rec["stats"]["void_fraction_instances"],
                                                                      abs=1e-6)
    assert any(r["void_fraction"] != r["void_fraction_instances"] for r in rows)


def test_old_models_write_the_same_value_twice(constant_model: Path, image_folder: tuple[Path, Any],
                                               tmp_path: Path) -> None:
    folder, _ = image_folder
    assert main(["run", str(constant_model), str(folder), "--threads", "1", "--csv", str(tmp_path / "f.csv")]) == 0
    with open(tmp_path / "f.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["void_fraction"] == r["void_fraction_instances"] for r in rows)
    assert np.isclose(float(rows[0]["void_fraction"]), float(rows[-1]["void_fraction"]))
