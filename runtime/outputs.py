"""Write what ``maskrt predict`` produces for a set of still images, one image at a time.

Outputs (each optional) in one folder: annotated images, COCO results JSON (``predictions.json``),
per-image statistics (``stats.json``), per-instance measurements (``instances.csv``) and per-image
statistics (``images.csv``), and editable annotations (``labels/*.json`` for labelme or
``annotations.coco.json``). Everything is written atomically; the JSON/CSV files when :meth:`close` runs.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from maskrt.atomic import atomic_open, atomic_path, write_text
from maskrt.errors import MaskrtError
from maskrt.paths import check_writable, refuse_overwriting_inputs
from maskrt.runtime.draw import draw_overlay
from maskrt.runtime.instances import Instances
from maskrt.runtime.labels import CocoWriter, write_labelme, write_labelme_classes
from maskrt.runtime.measure import frame_stats, measure_instances
from maskrt.runtime.tables import csv_cell

LABEL_FORMATS = ("labelme", "coco")


@dataclass
class OutputOptions:
    """Which files to write, and the calibration for the measurements."""

    save_images: bool = True
    json: bool = True
    csv: bool = False
    labels: str | None = None
    um_per_px: float | None = None
    draw_labels: str = "auto"
    """Labels on the annotated images: auto (where they fit), all or none."""


@dataclass
class ImageResult:
    """What one image gave: its instances, per-instance measurements and per-image statistics."""

    path: Path
    inst: Instances
    measurements: list[dict[str, Any]]
    stats: dict[str, Any]
    timings: dict[str, float]


def check_outputs(out: Path, options: OutputOptions, inputs: list[Path]) -> None:
    """Refuse, before any image is read, an ``out`` that cannot be written or whose files would hit the inputs.

    Annotated images take their inputs' names, so they may not go into a folder that holds an input image
    (``maskrt predict imgs --out imgs``); no fixed-name output file may be one of the inputs either.

    Raises:
        MaskrtError: naming ``out`` (or the clashing file) and what to pass instead.
    """
    out = Path(out)
    check_writable(out, kind="folder", option="--out")
    files = []
    if options.json:
        files += [out / "predictions.json", out / "stats.json"]
    if options.csv:
        files += [out / "instances.csv", out / "images.csv"]
    if options.labels == "labelme":
        files.append(out / "labels" / "labels.txt")
    elif options.labels == "coco":
        files.append(out / "annotations.coco.json")
    folders = ([out] if options.save_images else []) + ([out / "labels"] if options.labels == "labelme" else [])
    refuse_overwriting_inputs(inputs, files=files, folders=folders,
                              fix="pass another output folder, e.g. --out runs/predict")


class PredictionWriter:
    """Accumulates per-image results and writes the requested outputs into ``out``."""

    def __init__(self, out: Path, class_names: list[str], options: OutputOptions) -> None:
        if options.labels is not None and options.labels not in LABEL_FORMATS:
            raise MaskrtError(f"unknown label format {options.labels!r}; use labelme or coco")
        self.out = Path(out)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MaskrtError(f"cannot create the output folder ({exc.strerror or type(exc).__name__}); pass "
                              "another --out", path=self.out) from exc
        self.class_names = list(class_names)
        self.options = options
        self.results: list[dict[str, Any]] = []
        self.stats: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.coco = CocoWriter(self.class_names) if options.labels == "coco" else None
        self._names: set[str] = set()
        self.written: list[Path] = []

    def _unique(self, stem: str, suffix: str) -> str:
        name, k = stem + suffix, 2
        while name in self._names:
            name, k = f"{stem}_{k}{suffix}", k + 1
        self._names.add(name)
        return name

    def measure(self, path: Path, inst: Instances, timings: dict[str, float]) -> ImageResult:
        """Measure one image's instances (calibrated when configured)."""
        rows = measure_instances(inst, um_per_px=self.options.um_per_px)
        stats = frame_stats(inst, inst.frame_hw, um_per_px=self.options.um_per_px, measurements=rows)
        return ImageResult(Path(path), inst, rows, stats, dict(timings))

    def add(self, result: ImageResult, frame: np.ndarray) -> None:
        """Record one image's result; writes its annotated image / labelme file right away."""
        opts = self.options
        image_id = len(self.stats) + 1
        stem = result.path.stem
        if opts.save_images:
            suffix = ".png" if result.path.suffix.lower() in (".png", ".tif", ".tiff", ".bmp") else ".jpg"
            name = self._unique(stem, suffix)
            view = draw_overlay(frame, result.inst, labels=opts.draw_labels, status=f"{len(result.inst)} instances")
            target = self.out / name
            with atomic_path(target) as tmp:
                ok, buf = cv2.imencode(suffix, view)
                if not ok:
                    raise MaskrtError("cannot encode the annotated image", path=target)
                tmp.write_bytes(buf.tobytes())
            self.written.append(target)
        if opts.json:
            for r in result.inst.to_coco_results(image_id):
                r["file_name"] = str(result.path)
                self.results.append(r)
        entry = {"image_id": image_id, "file": str(result.path), "height": result.inst.frame_hw[0],
                 "width": result.inst.frame_hw[1], **result.stats,
                 "timings_ms": {k: round(v, 3) for k, v in result.timings.items()}}
        self.stats.append(entry)
        if opts.csv:
            for row in result.measurements:
                self.rows.append({"file": str(result.path), **row})
        if opts.labels == "labelme":
            target = self.out / "labels" / self._unique(stem, ".json")
            self.written.append(write_labelme(result.inst, result.path, target))
        elif self.coco is not None:
            self.coco.add(result.path, result.inst)

    def close(self) -> list[Path]:
        """Write the collected JSON/CSV/COCO files; return every file written."""
        opts = self.options
        if opts.json:
            self.written.append(self._write_json("predictions.json", self.results))
            self.written.append(self._write_json("stats.json", self.stats))
        if opts.csv:
            self.written.append(self._write_csv("instances.csv", self.rows))
            flat = [_flatten_stats(s) for s in self.stats]
            self.written.append(self._write_csv("images.csv", flat))
        if opts.labels == "labelme":
            self.written.append(write_labelme_classes(self.out / "labels", self.class_names))
        if self.coco is not None:
            self.written.append(self.coco.write(self.out / "annotations.coco.json"))
        return self.written

    def _write_json(self, name: str, data: Any) -> Path:
        path = self.out / name
        write_text(path, json.dumps(data))
        return path

    def _write_csv(self, name: str, rows: list[dict[str, Any]]) -> Path:
        path = self.out / name
        fields: list[str] = []
        for row in rows:
            fields.extend(k for k in row if k not in fields)
        with atomic_open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields or ["file"])
            writer.writeheader()
            for row in rows:
                writer.writerow({k: csv_cell(v) for k, v in row.items()})
        return path


def _flatten_stats(s: dict[str, Any]) -> dict[str, Any]:
    """One CSV row per image: scalars, counts per class as ``count_<class>``; no histogram."""
    row = {k: v for k, v in s.items() if not isinstance(v, (dict, list))}
    for name, n in s.get("count_per_class", {}).items():
        row[f"count_{name}"] = n
    return row
