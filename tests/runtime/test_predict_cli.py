"""`maskrt predict` on a folder of images: outputs, skipped files, labels that load back for training."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt import rle as rle_codec
from maskrt.cli import main
from maskrt.runtime import Segmenter
from maskrt.runtime.images import read_image


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((200, 300, 3), 80, np.uint8))
    cv2.imwrite(str(folder / "b.tif"), (np.arange(256 * 256).reshape(256, 256) % 4000).astype(np.uint16))
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    return folder


def test_predict_writes_every_output_and_skips_the_broken_image(make_model, images: Path, tmp_path: Path,
                                                                capsys) -> None:
    model = make_model()
    out = tmp_path / "out"
    code = main(["predict", str(model), str(images), "-o", str(out), "--save-images", "--json", "--csv",
                 "--um-per-px", "2.0", "--threads", "1"])
    assert code == 0
    stdout = capsys.readouterr().out
    assert "a.png" in stdout and "b.tif" in stdout and "1 bubble, 1 droplet" in stdout
    assert "2 image(s), 4 instance(s), 1 skipped" in stdout
    assert (out / "a.png").is_file() and (out / "b.png").is_file()
    assert read_image(out / "a.png").shape == (200, 300, 3)

    # COCO results equal the Python API's masks for the same image
    inst = Segmenter(model, threads=1)(read_image(images / "a.png"))
    results = json.loads((out / "predictions.json").read_text())
    assert len(results) == 4
    first = [r for r in results if r["image_id"] == 1]
    assert [r["category_id"] for r in first] == [1, 2]
    np.testing.assert_array_equal(rle_codec.decode(first[0]["segmentation"]), inst.mask(0))

    rows = list(csv.DictReader((out / "instances.csv").open()))
    assert len(rows) == 4
    assert float(rows[0]["eq_diameter_um"]) == pytest.approx(2.0 * float(rows[0]["eq_diameter_px"]), rel=1e-3)
    per_image = list(csv.DictReader((out / "images.csv").open()))
    assert [r["count"] for r in per_image] == ["2", "2"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats[0]["void_fraction"] == pytest.approx(inst.masks.any(axis=0).mean(), rel=1e-6)


def test_bundled_model_option_and_errors(make_model, images: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o2"
    # --model form, classes filter, default outputs (images + JSON)
    code = main(["predict", str(images / "a.png"), "--model", str(make_model()), "-o", str(out),
                 "--classes", "droplet", "--threads", "1"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "predictions.json", "stats.json"]
    assert [r["category_id"] for r in json.loads((out / "predictions.json").read_text())] == [2]
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "missing.onnx"), str(images)]) == 2
    assert "missing.onnx: model file not found" in capsys.readouterr().err
    assert main(["predict", str(make_model()), str(images / "broken.jpg"), "-o", str(out)]) == 2
    assert main(["predict", str(make_model()), str(tmp_path / "nothing-here")]) == 2
    assert main(["predict", str(make_model()), str(images), "--labels", "voc"]) == 2


@pytest.mark.parametrize("fmt", ["labelme", "coco"])
def test_labels_load_back_as_a_training_dataset(fmt: str, make_model, images: Path, tmp_path: Path) -> None:
    data = pytest.importorskip("maskrt.train.data")
    model = make_model()
    out = tmp_path / "labels-out"
    assert main(["predict", str(model), str(images), "-o", str(out), "--labels", fmt, "--threads", "1"]) == 0
    ds = data.load_dataset(out / "labels" if fmt == "labelme" else out / "annotations.coco.json")
    assert ds.classes == ["bubble", "droplet"]
    assert len(ds.images) == 2 and ds.num_instances == 4
    seg = Segmenter(model, threads=1)
    for rec in ds.images:
        inst = seg(read_image(rec.file))
        assert (rec.height, rec.width) == inst.frame_hw
        for ann, i in zip(rec.annotations, range(len(inst))):
            assert ann.category == int(inst.class_ids[i])
            got, want = ann.mask(rec.height, rec.width), inst.mask(i)
            iou = (got & want).sum() / (got | want).sum()
            assert iou > 0.98
            assert got.sum() == pytest.approx(want.sum(), rel=0.01)


def test_without_a_model_the_bundled_one_is_used(images: Path, tmp_path: Path, capsys) -> None:
    from maskrt.runtime import BUNDLED_MODEL

    code = main(["predict", str(images / "a.png"), "-o", str(tmp_path / "o3"), "--threads", "1"])
    if BUNDLED_MODEL.is_file():
        assert code == 0
        assert (tmp_path / "o3" / "predictions.json").is_file()
    else:
        assert code == 2
        assert "no bundled default model" in capsys.readouterr().err


def test_label_option_defaults_are_output_options() -> None:
    """--labels and --draw-labels have OutputOptions' defaults; the output flags are off unless given."""
    import typer.main

    from maskrt.cli import app
    from maskrt.runtime.outputs import OutputOptions

    command = typer.main.get_command(app).commands["predict"]  # type: ignore[attr-defined]
    params = {p.name: p.default for p in command.params}
    o = OutputOptions()
    assert (params["labels"], params["draw_labels"]) == (o.labels, o.draw_labels)
    assert (params["save_images"], params["json_out"], params["csv_out"]) == (False, False, False)
