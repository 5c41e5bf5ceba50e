"""Synthetic-scene generation speed: images per minute per scene on one CPU core.

Each scene renders ``--images`` images (drawing, camera effects, RLE masks, JPEG encoding; no disk) with
OpenCV limited to one thread and the process pinned to one core. The baseline, measured in the same run,
is the floor cost of one image: a flat background through the same camera effects and JPEG encoding with
no objects. Rows report images/minute (CPU time and wall time) and the ratio to that baseline.

    python benchmarks/synth_speed.py [--size 512] [--images 30] [--out benchmarks/results/synth_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from maskrt.atomic import write_text
from maskrt.train.synth import SCENES, render_image
from maskrt.train.synth.effects import apply_camera, sample_camera

RESULTS = Path(__file__).resolve().parent / "results"


def _baseline(size: int, n: int) -> tuple[float, float]:
    """CPU and wall seconds per image for an empty scene through the camera and the JPEG encoder."""
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(n):
        rng = np.random.default_rng([0, i])
        cam = sample_camera(rng, size, size)
        img = apply_camera(np.full((size, size), 200, np.float32), cam, rng)
        cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, cam.jpeg_quality])
    return (time.process_time() - c0) / n, (time.perf_counter() - w0) / n


def _scene(name: str, size: int, n: int) -> dict[str, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    instances = 0
    for i in range(n):
        _, res = render_image(i, size, name, seed=0)
        cv2.imencode(".jpg", res.image, [cv2.IMWRITE_JPEG_QUALITY, res.jpeg_quality])
        instances += len(res.instances)
    cpu, wall = (time.process_time() - c0) / n, (time.perf_counter() - w0) / n
    return {"cpu_ms_per_image": 1000 * cpu, "wall_ms_per_image": 1000 * wall, "images_per_min_cpu": 60 / cpu,
            "images_per_min_wall": 60 / wall, "instances_per_image": instances / n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--images", type=int, default=30, help="images per scene")
    p.add_argument("--out", type=Path, default=RESULTS / "synth_speed.json")
    args = p.parse_args()
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    base_cpu, base_wall = _baseline(args.size, args.images)
    rows = {}
    for name in SCENES:
        row = _scene(name, args.size, args.images)
        row["ratio_to_baseline_cpu"] = row["cpu_ms_per_image"] / (1000 * base_cpu)
        rows[name] = row
        print(f"{name:15s} {row['images_per_min_cpu']:7.0f} img/min (cpu)  {row['images_per_min_wall']:7.0f} img/min "
              f"(wall)  {row['cpu_ms_per_image']:6.1f} ms  x{row['ratio_to_baseline_cpu']:.1f} baseline  "
              f"{row['instances_per_image']:.0f} instances/img")
    doc = {
        "benchmark": "synth_speed",
        "size": args.size,
        "images_per_scene": args.images,
        "threads": 1,
        "system": {"machine": platform.machine(), "processor": platform.processor(), "python": platform.python_version(),
                   "cpu_count": os.cpu_count(), "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "baseline": {"what": "empty scene: camera effects + JPEG encode", "cpu_ms_per_image": 1000 * base_cpu,
                     "wall_ms_per_image": 1000 * base_wall},
        "scenes": rows,
    }
    write_text(args.out, json.dumps(doc, indent=2))
    print(f"baseline {1000 * base_cpu:.1f} ms/image; wrote {args.out}")


if __name__ == "__main__":
    main()
