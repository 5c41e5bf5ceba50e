"""The realistic bottom-view boiling scene: deterministic, masks that match the picture, real-frame statistics.

The ranges come from the real frames of ``../shared/data/boiling-bottom-videosam`` (tuning frames only, measured
with ``benchmarks/synth_realism.py``): isolated bubbles have a void fraction of 0.036-0.046 and 73-90 regions of
8 px or more a frame; dense boiling 0.44-0.56 and 146-283 regions (5-95 % over frames).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt import rle
from maskrt.cli import main
from maskrt.train.synth.dataset import render_image
from maskrt.train.synth.scenes import Rendered

SIZE = 256


def _render(i: int, regime: str, seed: int = 0, size: int = SIZE, **kw: str) -> Rendered:
    return render_image(i, size, "boiling-bottom", seed, min_area=8, regime=regime, **kw)[1]


def _union(res: Rendered) -> np.ndarray:
    h, w = res.image.shape[:2]
    out = np.zeros((h, w), bool)
    for inst in res.instances:
        m = rle.decode(inst.rle).astype(bool)
        assert not (out & m).any()  # instances never overlap
        out |= m
    return out


@pytest.mark.parametrize("regime", ["isolated", "dense"])
def test_same_seed_same_scene_other_seed_other_scene(regime: str) -> None:
    a, b, c = _render(1, regime), _render(1, regime), _render(1, regime, seed=1)
    assert np.array_equal(a.image, b.image)
    assert [i.rle for i in a.instances] == [i.rle for i in b.instances]
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("regime", ["isolated", "dense"])
def test_vapour_is_brighter_than_liquid_and_grey(regime: str) -> None:
    for i in range(3):
        res = _render(i, regime)
        img = res.image
        assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
        grey = img[..., 0].astype(np.float32)
        union = _union(res).astype(np.uint8)
        far = cv2.dilate(union, np.ones((7, 7), np.uint8)) - union  # liquid within 3 px of the vapour
        inner = cv2.erode(union, np.ones((3, 3), np.uint8)) > 0
        assert grey[inner].mean() > grey[far > 0].mean() + 40
        # each sizeable instance, against the liquid right around it
        for inst in [x for x in res.instances if x.area >= 30][:20]:
            m = rle.decode(inst.rle).astype(np.uint8)
            ring = (cv2.dilate(m, np.ones((5, 5), np.uint8)) - cv2.dilate(m, np.ones((3, 3), np.uint8))) > 0
            ring &= union == 0
            if ring.sum() >= 10:
                assert grey[m > 0].mean() > grey[ring].mean() + 20


@pytest.mark.parametrize("regime", ["isolated", "dense"])
def test_instances_are_the_connected_components_of_the_vapour(regime: str) -> None:
    res = _render(0, regime)
    union = _union(res)
    n, _, stats, _ = cv2.connectedComponentsWithStats(union.astype(np.uint8), connectivity=8)
    assert n - 1 == len(res.instances)
    assert sorted(stats[1:, cv2.CC_STAT_AREA].tolist()) == sorted(i.area for i in res.instances)
    assert min(i.area for i in res.instances) >= 8


def _holes(mask: np.ndarray) -> int:
    _, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return 0 if hierarchy is None else int((hierarchy[0][:, 3] >= 0).sum())


def test_dense_patches_are_one_instance_with_their_liquid_islands_as_holes() -> None:
    res = _render(2, "dense")
    biggest = max(res.instances, key=lambda i: i.area)
    m = rle.decode(biggest.rle)
    assert biggest.area > 0.02 * SIZE * SIZE  # a merged patch, not one bubble
    assert _holes(m) >= 3
    assert sum(_holes(rle.decode(i.rle)) for i in res.instances) >= 20


@pytest.mark.parametrize(
    ("regime", "count_median", "count_each", "void_median", "void_each"),
    [
        ("isolated", (60, 100), (40, 130), (0.030, 0.052), (0.015, 0.08)),
        ("dense", (146, 300), (60, 500), (0.43, 0.58), (0.35, 0.72)),
    ],
)
def test_counts_and_void_fraction_match_the_real_regime(
    regime: str, count_median: tuple[int, int], count_each: tuple[int, int], void_median: tuple[float, float],
    void_each: tuple[float, float],
) -> None:
    counts, voids = [], []
    for i in range(6):
        res = _render(i, regime)
        counts.append(len(res.instances))
        voids.append(float(_union(res).mean()))
    assert all(count_each[0] <= c <= count_each[1] for c in counts), counts
    assert all(void_each[0] <= v <= void_each[1] for v in voids), voids
    assert count_median[0] <= np.median(counts) <= count_median[1], counts
    assert void_median[0] <= np.median(voids) <= void_median[1], voids
    if regime == "isolated":  # small bubbles: 3-30 px across
        diam = [np.sqrt(4 * i.area / np.pi) for i in _render(0, regime).instances]
        assert 3.0 <= np.median(diam) <= 7.0 and max(diam) <= 34


def test_a_larger_image_shows_the_same_field_of_view() -> None:
    small, big = _render(3, "dense"), _render(3, "dense", size=512)
    assert abs(_union(small).mean() - _union(big).mean()) < 0.12
    assert np.median([i.area for i in big.instances]) > 2.5 * np.median([i.area for i in small.instances])


def test_classic_style_and_other_scenes_stay_reachable_and_unchanged() -> None:
    classic, realistic = _render(0, "both", style="classic"), _render(0, "both")
    assert not np.array_equal(classic.image, realistic.image)
    # the regime and style options touch boiling-bottom only
    a = render_image(0, 128, "droplets", 0)[1]
    b = render_image(0, 128, "droplets", 0, regime="dense", style="classic")[1]
    assert np.array_equal(a.image, b.image)
    with pytest.raises(ValueError, match="regime"):
        _render(0, "foam")


def test_cli_regime_and_style_options(tmp_path: Path, capsys) -> None:
    code = main(["synth", str(tmp_path / "d"), "--images", "2", "--size", "256", "--scene", "boiling-bottom",
                 "--regime", "dense", "--format", "png"])
    assert code == 0
    info = json.loads((tmp_path / "d" / "annotations.json").read_text())
    assert info["info"]["regime"] == "dense" and info["info"]["bottom_style"] == "realistic"
    assert len(info["annotations"]) > 2 * 100  # two dense frames
    assert main(["synth", str(tmp_path / "e"), "--images", "1", "--regime", "foam"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--regime" in err and "dense" in err and len(err.splitlines()) == 1
    assert main(["synth", str(tmp_path / "e"), "--images", "1", "--bottom-style", "old"]) == 2
