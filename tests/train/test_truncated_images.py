"""Truncated or vanished images: skipped with one line at import (convert, data check, train), and a file
that becomes unreadable after import is a skipped sample inside a data-loader worker, not a dead run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.train.data import load_dataset

SIZE = 64


def write_dataset(folder: Path, names: list[str]) -> Path:
    """A one-class COCO dataset: one bright disc per image, each image written in the format its name says."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    for i, name in enumerate(names, start=1):
        img = rng.normal(90, 12, (SIZE, SIZE, 3)).clip(0, 255).astype(np.uint8)
        cx, cy, r = 20 + 4 * i, 30, 10
        poly = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
        cv2.fillPoly(img, [np.round(poly).astype(np.int32)], (220, 220, 220))
        assert cv2.imwrite(str(folder / name), img)
        images.append({"id": i, "file_name": name, "width": SIZE, "height": SIZE})
        anns.append(
            {"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "segmentation": [poly.ravel().tolist()]}
        )
    cats = [{"id": 1, "name": "bubble", "supercategory": "none"}]
    (folder / "annotations.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats})
    )
    return folder


def cut(path: Path, keep: float = 0.5) -> int:
    """Truncate a real image file to ``keep`` of its bytes (header intact, pixels cut off); the new size."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return int(len(data) * keep)


@pytest.fixture()
def truncated(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    """Two good images, a truncated PNG and a truncated JPEG (both with intact headers)."""
    folder = write_dataset(tmp_path / "data", ["a.png", "b.jpg", "cut.png", "cut.jpg"])
    return folder, {name: cut(folder / name) for name in ("cut.png", "cut.jpg")}


def flat(text: str) -> str:
    """Output with rich's line wrapping undone (log lines are folded inside long paths too): no whitespace."""
    return "".join(text.split())


def assert_reports_both(text: str, folder: Path, sizes: dict[str, int]) -> None:
    for name, size in sizes.items():
        assert flat(
            f"annotations.json: image '{name}': image file {folder / name} is truncated "
            f"(its data stops after {size} bytes); skipped (re-copy or re-export the image)"
        ) in flat(text)
        assert flat(f"annotations.json: image '{name}': its 1 annotations skipped with it") in flat(text)


def test_convert_skips_truncated_png_and_jpeg(
    truncated: tuple[Path, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, sizes = truncated
    out = tmp_path / "coco.json"
    assert main(["convert", str(folder), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert flat(f"wrote {out}: 2 images, 2 instances (bubble 2)") in flat(text) and "problems: 4" in text
    assert_reports_both(text, folder, sizes)
    assert sorted(Path(im["file_name"]).name for im in json.loads(out.read_text())["images"]) == [
        "a.png",
        "b.jpg",
    ]


@pytest.mark.parametrize("mode", ["--decode", "--headers-only"])
def test_data_check_lists_truncated_images(
    truncated: tuple[Path, dict[str, int]], mode: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, sizes = truncated
    assert main(["data", "check", str(folder), mode]) == 0
    text = capsys.readouterr().out
    assert flat("2 images, 2 instances") in flat(text) and "problems: 4" in text
    assert_reports_both(text, folder, sizes)


def test_train_skips_truncated_images_and_prints_the_problems(
    truncated: tuple[Path, dict[str, int]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, sizes = truncated
    out = tmp_path / "run"
    args = ["train", "--data", str(folder), "--arch", "lite", "--imgsz", "64", "--iters", "2", "--batch", "2"]
    args += ["--val-split", "0", "--augment", "none", "--workers", "0", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    text = "\n".join(capsys.readouterr())
    assert flat(f"{folder}: 4 problems on import, each fixed or skipped as it says") in flat(text)
    assert_reports_both(text, folder, sizes)
    assert "trained 2 iterations" in text and (out / "last.pt").is_file()


def test_image_unreadable_after_import_is_a_skipped_sample_in_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import maskrt.train.dataset as dataset_module
    from maskrt.train.trainer import TrainConfig, train

    folder = write_dataset(tmp_path / "data", ["a.png", "gone.png", "garbage.jpg"])
    real_load, views = dataset_module.load_datasets, []

    def load_then_break(paths, **kwargs):  # type: ignore[no-untyped-def]
        ds = real_load(paths, **kwargs)
        assert ds.problems == [] and len(ds.images) == 3  # all fine at import
        (folder / "gone.png").unlink()
        (folder / "garbage.jpg").write_bytes(b"\x00not a jpeg any more")
        return ds

    class Recorded(dataset_module.MaskDataset):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            views.append(self)

    monkeypatch.setattr(dataset_module, "load_datasets", load_then_break)
    monkeypatch.setattr(dataset_module, "MaskDataset", Recorded)
    result = train(
        TrainConfig(
            data=[str(folder)],
            val_split=0.0,
            arch="lite",
            imgsz=64,
            iters=2,
            batch=3,
            workers=1,
            augment="none",
            out=str(tmp_path / "run"),
            progress=False,
        )
    )
    assert result.iterations == 2 and result.last.is_file()
    (view,) = views
    # every batch drew all three images; the two broken ones were skipped (marked in the worker process)
    assert sorted(p.name for p in view.unreadable) == ["garbage.jpg", "gone.png"]


def test_when_no_image_is_readable_any_more_one_error_names_the_first(tmp_path: Path) -> None:
    from maskrt.train.dataset import MaskDataset

    folder = write_dataset(tmp_path / "data", ["a.png", "b.png"])
    view = MaskDataset(load_dataset(folder))
    (folder / "b.png").unlink()
    image, target = view[1]  # b is gone: a is drawn in its place
    assert target["image_id"].item() == 0 and tuple(image.shape) == (3, SIZE, SIZE)
    assert [p.name for p in view.unreadable] == ["b.png"]
    (folder / "a.png").unlink()
    with pytest.raises(MaskrtError, match=r"none of the 2 images can be read any more \(first: .*a\.png\)"):
        view[0]
