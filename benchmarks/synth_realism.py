"""How close the synthetic ``boiling-bottom`` scene is to real bottom-view boiling frames, in numbers.

Measures the same statistics on the real frames of ``../shared/data/boiling-bottom-videosam`` (tuning frames only:
the held-out blocks 200-248 and 900-998 are never read) and on synthetic scenes rendered at the real frame size,
per regime (isolated bubbles, dense boiling), for the realistic scene and for the classic look it replaced, and
prints them side by side:

- void fraction; vapour regions (8-connected components) of 8 px or more, and of any size; region area and
  equivalent diameter; the largest region as a fraction of the frame; holes (liquid islands) per frame and their
  share of the vapour; solidity of regions of 30 px or more (1 = convex, lower = irregular);
- liquid and vapour intensity percentiles (interior pixels); the contrast of a region against the liquid just
  around it; the edge profile (ring just outside a region, and just inside it, against the liquid and vapour
  further away: negative = a dark rim);
- pixel noise (std of the image minus its 3 px Gaussian blur, in liquid interiors) and its correlation at 1 and
  2 px; vignetting / uneven light (spread of the liquid level over a 4x4 grid of cells, corner / centre ratio).

Usage:
    python benchmarks/synth_realism.py                    # 24 scenes per regime and style, real frames every 4th
    python benchmarks/synth_realism.py --scenes 8 --json benchmarks/results/synth_realism.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REAL = ROOT.parent / "shared" / "data" / "boiling-bottom-videosam"
HELD_OUT = (range(200, 249), range(900, 999))  # never read here: the real-footage benchmark measures on them
REGIMES = {"isolated": range(249), "dense": range(250, 999)}
SIZE = 256


def real_frames(regime: str, step: int = 4) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Grey image and vapour mask of every ``step``-th available tuning frame of ``regime``."""
    frames = [i for i in REGIMES[regime] if i % 2 == 0 and not any(i in h for h in HELD_OUT)]
    for i in frames[::step]:
        img = cv2.imread(str(REAL / "images" / f"train_{i:04d}.png"), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(REAL / "masks" / f"train_{i:04d}.png"), cv2.IMREAD_GRAYSCALE)
        if img is None or mask is None:
            raise SystemExit(f"cannot read frame {i} under {REAL}; is ../shared/data there?")
        yield img, mask > 127


def synthetic_frames(regime: str, style: str, count: int, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Grey image and union of the instance masks of ``count`` synthetic bottom-view scenes."""
    from maskrt import rle
    from maskrt.train.synth.dataset import render_image

    for i in range(count):
        _, res = render_image(i, SIZE, "boiling-bottom", seed, min_area=1, regime=regime, style=style)
        union = np.zeros((SIZE, SIZE), bool)
        for inst in res.instances:
            union |= rle.decode(inst.rle).astype(bool)
        _, buf = cv2.imencode(".jpg", res.image, [cv2.IMWRITE_JPEG_QUALITY, res.jpeg_quality])
        img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)  # what training sees: the saved JPEG
        yield img, union


def _ring(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """Pixels between ``inner`` and ``outer`` px outside ``mask`` (negative: inside)."""
    m = mask.astype(np.uint8)
    out = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    ins = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    signed = np.where(mask, -ins + 0.5, out - 0.5)
    return (signed >= inner) & (signed < outer)


def frame_stats(img: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """The statistics of one frame (see the module docstring)."""
    f = img.astype(np.float32)
    m8 = mask.astype(np.uint8)
    _, labels, st, _ = cv2.connectedComponentsWithStats(m8, connectivity=8)
    areas = st[1:, cv2.CC_STAT_AREA]
    big = areas >= 8
    out: dict[str, float] = {
        "void_fraction": float(mask.mean()),
        "regions_8px": float(big.sum()),
        "regions_all": float(len(areas)),
        "area_median": float(np.median(areas[big])) if big.any() else np.nan,
        "area_p90": float(np.percentile(areas[big], 90)) if big.any() else np.nan,
        "diam_p10": float(np.percentile(np.sqrt(4 * areas[big] / np.pi), 10)) if big.any() else np.nan,
        "diam_p90": float(np.percentile(np.sqrt(4 * areas[big] / np.pi), 90)) if big.any() else np.nan,
        "largest_frac": float(areas.max() / mask.size) if len(areas) else 0.0,
    }
    # holes: liquid components not touching the border and enclosed by one vapour region
    _, _, lst, _ = cv2.connectedComponentsWithStats(1 - m8, connectivity=4)
    h, w = mask.shape
    x0, y0, ww, hh = lst[1:, 0], lst[1:, 1], lst[1:, 2], lst[1:, 3]
    inner = (x0 > 0) & (y0 > 0) & (x0 + ww < w) & (y0 + hh < h)
    out["holes"] = float(inner.sum())
    out["hole_share"] = float(lst[1:, 4][inner].sum() / max(1, int(mask.sum())))
    sol = []
    for k in np.flatnonzero(areas >= 30):
        x, y, bw, bh = st[k + 1, :4]
        comp = (labels[y : y + bh, x : x + bw] == k + 1).astype(np.uint8)
        cnts, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull = np.zeros_like(comp)
        cv2.fillPoly(hull, [cv2.convexHull(np.concatenate(cnts))], 1)  # in pixels, as the area is
        sol.append(areas[k] / max(int(np.count_nonzero(hull | comp)), 1))
    out["solidity"] = float(np.median(sol)) if sol else np.nan
    liquid = cv2.erode(1 - m8, np.ones((5, 5), np.uint8)) > 0
    vapour = cv2.erode(m8, np.ones((3, 3), np.uint8)) > 0
    for name, sel in (("liquid", liquid), ("vapour", vapour)):
        p = np.percentile(f[sel], [5, 50, 95]) if sel.sum() > 20 else [np.nan] * 3
        out[f"{name}_p5"], out[f"{name}_p50"], out[f"{name}_p95"] = (float(v) for v in p)
    rim_out = _ring(mask, 0, 1.5)
    far_out = _ring(mask, 3, 6)
    rim_in = _ring(mask, -1.5, 0)
    deep_in = _ring(mask, -100, -2)
    out["contrast"] = float(np.median(f[rim_in | deep_in]) - np.median(f[far_out])) if far_out.any() else np.nan
    out["rim_outside"] = float(f[rim_out].mean() - f[far_out].mean()) if far_out.any() else np.nan
    out["rim_inside"] = float(f[rim_in].mean() - f[deep_in].mean()) if deep_in.sum() > 20 else np.nan
    res = f - cv2.GaussianBlur(f, (0, 0), 3.0)
    sel = cv2.erode(1 - m8, np.ones((9, 9), np.uint8)) > 0
    r = np.where(sel, res, np.nan)
    out["noise"] = float(np.nanstd(r))
    for lag in (1, 2):
        a = np.concatenate([r[:, :-lag].ravel(), r[:-lag, :].ravel()])
        b = np.concatenate([r[:, lag:].ravel(), r[lag:, :].ravel()])
        ok = np.isfinite(a) & np.isfinite(b)
        out[f"noise_corr{lag}"] = float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 50 else np.nan
    cells = []
    for gy in range(4):
        for gx in range(4):
            c = f[gy * h // 4 : (gy + 1) * h // 4, gx * w // 4 : (gx + 1) * w // 4]
            s = liquid[gy * h // 4 : (gy + 1) * h // 4, gx * w // 4 : (gx + 1) * w // 4]
            cells.append(np.median(c[s]) if s.sum() > 30 else np.nan)
    g = np.asarray(cells).reshape(4, 4)
    med = np.nanmedian(g)
    out["light_spread"] = float((np.nanmax(g) - np.nanmin(g)) / med) if med > 0 else np.nan
    corners = np.nanmean([g[0, 0], g[0, 3], g[3, 0], g[3, 3]])
    centre = np.nanmean(g[1:3, 1:3])
    out["corner_centre"] = float(corners / centre) if centre > 0 else np.nan
    return out


def summarise(frames: Iterator[tuple[np.ndarray, np.ndarray]]) -> dict[str, list[float]]:
    """Median and 5-95 % range over frames of every statistic: ``{name: [p5, median, p95]}``."""
    rows = [frame_stats(img, mask) for img, mask in frames]
    keys = rows[0].keys()
    out = {}
    for k in keys:
        v = np.asarray([r[k] for r in rows], float)
        v = v[np.isfinite(v)]
        out[k] = [float(x) for x in np.percentile(v, [5, 50, 95])] if len(v) else [np.nan] * 3
    out["frames"] = [float(len(rows))] * 3
    return out


def _cell(v: list[float]) -> str:
    p5, p50, p95 = v
    if not np.isfinite(p50):
        return "-"
    fmt = "{:.3f}" if abs(p50) < 1 else ("{:.2f}" if abs(p50) < 10 else "{:.0f}")
    return f"{fmt.format(p50)} ({fmt.format(p5)}-{fmt.format(p95)})"


def table(results: dict[str, dict[str, dict[str, list[float]]]]) -> str:
    """Markdown table: one row per statistic, one column per (regime, source)."""
    cols = [(reg, src) for reg in results for src in results[reg]]
    head = "| statistic | " + " | ".join(f"{reg}: {src}" for reg, src in cols) + " |"
    lines = [head, "|---" * (len(cols) + 1) + "|"]
    for k in next(iter(next(iter(results.values())).values())):
        lines.append(f"| {k} | " + " | ".join(_cell(results[reg][src][k]) for reg, src in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenes", type=int, default=24, help="synthetic scenes per regime and style")
    ap.add_argument("--step", type=int, default=4, help="real frames: every N-th tuning frame")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    for regime in REGIMES:
        results[regime] = {
            "real": summarise(real_frames(regime, args.step)),
            "classic": summarise(synthetic_frames(regime, "classic", args.scenes, args.seed)),
            "realistic": summarise(synthetic_frames(regime, "realistic", args.scenes, args.seed)),
        }
    print("median (5-95 % over frames); real = tuning frames only, synthetic at 256 px")
    print(table(results))
    if args.json is not None:
        from maskrt.atomic import write_text

        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_text(args.json, json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
