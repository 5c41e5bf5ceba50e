"""``maskrt predict --csv`` and ``maskrt run --instances`` write the shared columns of one frame as the same text."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from maskrt.cli import main
from maskrt.runtime.tables import csv_cell


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_predict_and_run_write_one_frame_alike(make_model, tmp_path: Path) -> None:
    model = make_model()
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((200, 300, 3), 80, np.uint8))
    out = tmp_path / "out"
    assert main(["predict", str(model), str(folder), "-o", str(out), "--csv", "--um-per-px", "0.37",
                 "--threads", "1"]) == 0
    assert main(["run", str(model), str(folder), "--instances", str(tmp_path / "run.csv"), "--um-per-px", "0.37",
                 "--threads", "1"]) == 0
    predicted, ran = _rows(out / "instances.csv"), _rows(tmp_path / "run.csv")
    assert len(predicted) == len(ran) == 2
    shared = [k for k in predicted[0] if k in ran[0]]
    assert {"eq_diameter_px", "eq_diameter_um", "area_px", "score"} <= set(shared)
    for p, r in zip(predicted, ran, strict=True):
        assert {k: p[k] for k in shared} == {k: r[k] for k in shared}
    # calibrated floats carry more than 4 decimals: the old predict formatter would have cut them
    assert any(len(p["eq_diameter_um"].split(".")[-1]) > 4 for p in predicted)


def test_csv_cell() -> None:
    assert [csv_cell(v) for v in (1 / 3, -0.0, None, [1, 2], {"a": 1}, 7, "x")] == [
        0.333333, 0.0, "", "[1, 2]", '{"a": 1}', 7, "x"]
