"""Tiny datasets the trainer tests draw: bright discs ("bubble") and squares ("droplet") on noise."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest


def make_shapes_coco(
    out: Path, images: int = 6, size: int = 128, seed: int = 0, classes: tuple[str, ...] = ("bubble",)
) -> Path:
    """Write a COCO dataset of ``images`` images with 2-4 discs (class 0) / squares (class 1) each."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    imgs, anns = [], []
    for i in range(images):
        img = (rng.normal(90, 12, (size, size, 3))).clip(0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(2, 5))):
            cat = int(rng.integers(0, len(classes)))
            r = float(rng.uniform(size * 0.07, size * 0.16))
            cx, cy = rng.uniform(r + 2, size - r - 2, 2)
            if cat == 0:
                t = np.linspace(0, 2 * math.pi, 32, endpoint=False)
                poly = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
            else:
                poly = np.array([[cx - r, cy - r], [cx + r, cy - r], [cx + r, cy + r], [cx - r, cy + r]])
            pts = np.round(poly).astype(np.int32)
            cv2.fillPoly(img, [pts], (220, 220, 220))
            cv2.polylines(img, [pts], True, (30, 30, 30), 2)
            x0, y0 = poly.min(0)
            x1, y1 = poly.max(0)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": cat + 1,
                    "iscrowd": 0,
                    "segmentation": [poly.reshape(-1).round(2).tolist()],
                    "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                    "area": float(cv2.contourArea(poly.astype(np.float32))),
                }
            )
        name = f"img_{i:03d}.png"
        cv2.imwrite(str(out / name), img)
        imgs.append({"id": i + 1, "file_name": name, "width": size, "height": size})
    cats = [{"id": k + 1, "name": n, "supercategory": "none"} for k, n in enumerate(classes)]
    path = out / "annotations.json"
    path.write_text(json.dumps({"images": imgs, "annotations": anns, "categories": cats}))
    return path


@pytest.fixture(scope="session")
def shapes_coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-image, one-class COCO dataset at 128 px."""
    return make_shapes_coco(tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="session")
def shapes_val(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-image held-out set drawn with another seed."""
    return make_shapes_coco(tmp_path_factory.mktemp("shapes_val"), images=2, seed=1)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, shapes_coco: Path, shapes_val: Path) -> Path:
    """A lite run of 3 iterations at 128 px (last.pt, best.pt, metrics.jsonl, curves.png); copy before changing."""
    from maskrt.train.trainer import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    train(
        TrainConfig(
            data=[str(shapes_coco)],
            val=[str(shapes_val)],
            arch="lite",
            imgsz=128,
            iters=3,
            batch=2,
            workers=0,
            out=str(out),
            save_every=2,
            progress=False,
            eval_every=100,
        )
    )
    return out
