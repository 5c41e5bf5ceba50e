"""`maskrt convert` and `maskrt data check` through the real entry point (exit codes, one-line errors, output)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from maskrt.cli import main
from maskrt.train.data import load_dataset

TAYLOR = Path(__file__).resolve().parents[2] / "data" / "taylor-bubbles-coco"


def test_convert_truncated_json_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "annotations.json"
    bad.write_text(
        '{"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}], "annotations": [{"id"'
    )
    code = main(["convert", str(bad), "--out", str(tmp_path / "out.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith(f"error: {bad}: the file looks truncated (line 1 column")
    assert not (tmp_path / "out.json").exists()


def test_convert_labelme_round_trip(
    twin: tuple[Path, list], fx: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, imgs = twin
    folder = fx.write_labelme(path.parent / "lm", imgs, image_dir="../")
    out = tmp_path / "converted" / "annotations.json"
    assert main(["convert", str(folder), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"wrote {out}: 2 images, 7 instances (bubble 4, drop 3) from labelme" in " ".join(text.split())
    assert "problems: none" in text
    back, want = load_dataset(out), load_dataset(path)
    assert back.classes == want.classes
    got = sorted(
        (back.classes[a.category], a.area(i.height, i.width)) for i in back.images for a in i.annotations
    )
    ref = sorted(
        (want.classes[a.category], a.area(i.height, i.width)) for i in want.images for a in i.annotations
    )
    assert [c for c, _ in got] == [c for c, _ in ref]
    assert all(abs(g - r) <= 0.01 * r for (_, g), (_, r) in zip(got, ref))
    data = json.loads(out.read_text())
    assert {c["id"] for c in data["categories"]} == {1, 2}


def test_data_check_reports_counts_sizes_and_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = tmp_path / "stats.json"
    assert main(["data", "check", str(TAYLOR), "--json", str(stats)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "52 images, 151 instances, 1 classes" in out
    assert "taylor bubble │ 151" in out
    assert "640x640 (52)" in out
    assert "problems: none" in out
    s = json.loads(stats.read_text())
    assert s["class_counts"] == {"taylor bubble": 151}
    assert s["instances_per_image"]["max"] >= s["instances_per_image"]["mean"] >= 1
    assert s["area_percentiles"]["p0"] <= s["area_percentiles"]["p50"] <= s["area_percentiles"]["p100"]


def test_data_check_lists_every_problem(twin: tuple[Path, list], capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = twin
    data = json.loads(path.read_text())
    data["annotations"][0]["segmentation"] = [[1, 1, 5, 5]]
    data["annotations"][1]["category_id"] = 99
    path.write_text(json.dumps(data))
    assert main(["data", "check", str(path.parent)]) == 0
    out = capsys.readouterr().out
    assert "problems: 2" in out
    assert "annotations.json: annotation id 1 (image 'a.png'): polygon has 2 points; skipped" in out
    assert (
        "annotations.json: annotation id 2 (image 'a.png'): category id 99 is not a known class; skipped"
        in out
    )


def test_data_check_exits_2_when_nothing_is_usable(
    twin: tuple[Path, list], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = twin
    data = json.loads(path.read_text())
    data["categories"] = [{"id": 42, "name": "other"}]
    path.write_text(json.dumps(data))
    assert main(["data", "check", str(path)]) == 2
    cap = capsys.readouterr()
    assert "problems: 7" in cap.out
    assert cap.err.strip().splitlines() == [
        f"error: {path}: no usable instance; fix the problems listed above"
    ]
    assert main(["convert", str(path), "--out", str(path.parent / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: no usable instance (2 images, 7 problems")
