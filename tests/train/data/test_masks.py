"""The mask-image importer: layouts, mask kinds, components with their holes, stacks, split, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from maskrt import rle as rle_codec
from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.train.data import detect_format, load_dataset
from maskrt.train.data.components import label_rles, split_touching
from maskrt.train.data.masks import MaskOptions, load_masks, parse_classes

REAL = Path(__file__).resolve().parents[2] / "data" / "boiling-bottom-videosam"


def _grey(h: int = 64, w: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(60, 120, (h, w), dtype=np.uint8)


def _scene(h: int = 64, w: int = 80) -> np.ndarray:
    """0/255 mask: a ring (one instance with a hole), a disc, a square touching it diagonally, a 2 px speck."""
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (20, 20), 12, 255, -1)
    cv2.circle(m, (20, 20), 5, 0, -1)  # the ring's hole: liquid inside vapour
    cv2.circle(m, (60, 20), 6, 255, -1)
    m[40:50, 40:50] = 255
    m[50:56, 50:56] = 255  # touches the square above only at a corner
    m[60, 5:7] = 255  # a 2 px speck, under the 4 px minimum
    return m


def _write_pairs(root: Path, masks: dict[str, np.ndarray], layout: str = "folders") -> None:
    for i, (stem, m) in enumerate(masks.items()):
        img = _grey(*m.shape[:2], seed=i)
        if layout == "folders":
            (root / "images").mkdir(parents=True, exist_ok=True)
            (root / "masks").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "images" / f"{stem}.png"), img)
            cv2.imwrite(str(root / "masks" / f"{stem}.png"), m)
        else:
            root.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / f"{stem}.png"), img)
            cv2.imwrite(str(root / f"{stem}_mask.png"), m)


def _components(fg: np.ndarray, connectivity: int = 8, min_area: int = 4) -> list[np.ndarray]:
    n, lab, st, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=connectivity)
    return [lab == i for i in range(1, n) if st[i, cv2.CC_STAT_AREA] >= min_area]


def _masks_of(ds, i: int = 0) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    im = ds.images[i]
    return [a.mask(im.height, im.width) for a in im.annotations]


def _same_sets(got: list[np.ndarray], want: list[np.ndarray]) -> bool:
    key = lambda m: tuple(np.flatnonzero(m.ravel())[:3]) + (int(m.sum()),)
    return sorted(map(key, got)) == sorted(map(key, want)) and all(
        any(np.array_equal(g, w) for w in want) for g in got
    )


def test_folders_layout_gives_components_with_their_holes(tmp_path: Path) -> None:
    m = _scene()
    _write_pairs(tmp_path / "ds", {"a": m, "b": np.zeros_like(m)})
    assert detect_format(tmp_path / "ds") == ("masks", tmp_path / "ds")
    ds = load_dataset(tmp_path / "ds", allow_empty=True)
    assert ds.classes == ["bubble"] and ds.problems == []
    assert [im.file.name for im in ds.images] == ["a.png", "b.png"]
    want = _components(m > 0)
    assert len(want) == 3  # ring, disc, square + diagonal square (8-connected); the speck dropped
    got = _masks_of(ds)
    assert _same_sets(got, want)
    ring = max(got, key=lambda g: g.sum())
    hole_area = int((cv2.circle(np.zeros_like(m), (20, 20), 5, 1, -1) > 0).sum())
    assert not ring[20, 20]  # the hole stays a hole
    assert ring.sum() == int((m[:40, :40] > 0).sum())  # the ring's pixels, not its outer outline
    disc_with_hole = int((cv2.circle(np.zeros_like(m), (20, 20), 12, 1, -1) > 0).sum())
    assert ring.sum() == disc_with_hole - hole_area
    ann = next(a for a in ds.images[0].annotations if a.area(64, 80) == ring.sum())
    assert ann.bbox == (8.0, 8.0, 25.0, 25.0)
    assert ds.images[1].annotations == []  # an empty mask is an image without instances, not a problem


def test_connectivity_and_min_area(tmp_path: Path) -> None:
    m = _scene()
    _write_pairs(tmp_path, {"a": m}, layout="beside")
    for conn in (8, 4):
        for min_area in (1, 4, 120):
            ds = load_masks(tmp_path, MaskOptions(connectivity=conn, min_area=min_area))
            want = _components(m > 0, conn, min_area)
            assert len(ds.images[0].annotations) == len(want)
            assert _same_sets(_masks_of(ds), want)
    assert len(load_masks(tmp_path, MaskOptions(connectivity=4)).images[0].annotations) == 4


@pytest.mark.parametrize("scale", [1, 255, 128])
def test_binary_and_soft_masks_threshold_at_half_the_maximum(tmp_path: Path, scale: int) -> None:
    m = (_scene() > 0).astype(np.float32)
    soft = cv2.GaussianBlur(m, (5, 5), 1.2)  # anti-aliased edges, foreground value `scale`
    mask = np.rint(soft * scale).astype(np.uint8)
    _write_pairs(tmp_path, {"f": mask})
    ds = load_dataset(tmp_path)
    fg = mask >= 0.5 * mask.max()
    assert _same_sets(_masks_of(ds), _components(fg))
    # an absolute grey level instead of a fraction
    if scale == 255:
        ds = load_masks(tmp_path, MaskOptions(threshold=200))
        assert _same_sets(_masks_of(ds), _components(mask >= 200))


def test_label_map_classes_and_unknown_values(tmp_path: Path) -> None:
    m = np.zeros((40, 60), np.uint8)
    m[2:10, 2:10] = 1
    m[20:30, 2:10] = 1
    m[2:12, 30:40] = 2
    m[30:36, 40:50] = 7  # not named in --classes
    _write_pairs(tmp_path, {"a": m})
    ds = load_dataset(tmp_path, mask_options=MaskOptions(classes=parse_classes("1=bubble,2=droplet")))
    assert ds.classes == ["bubble", "droplet"]
    assert ds.class_counts() == {"bubble": 2, "droplet": 1}
    assert len(ds.problems) == 1
    assert "mask values 7 (in 1 masks, first masks/a.png) are not in --classes 1=bubble,2=droplet" in ds.problems[0]
    auto = load_masks(tmp_path, MaskOptions(kind="labels"))
    assert auto.class_counts() == {"class 1": 2, "class 2": 1, "class 7": 1}


def test_instance_id_maps_8_and_16_bit(tmp_path: Path) -> None:
    m = np.zeros((50, 50), np.uint16)
    m[2:10, 2:10] = 300
    m[10:20, 2:10] = 301  # touches 300: still its own instance
    m[30:34, 30:34] = 5
    m[40:44, 40:44] = 5  # two pieces, one id: one instance
    _write_pairs(tmp_path, {"a": m})
    ds = load_masks(tmp_path, MaskOptions(kind="instances", class_name="cell"))
    assert ds.classes == ["cell"]
    areas = sorted(a.area(50, 50) for a in ds.images[0].annotations)
    assert areas == [32, 64, 80]
    assert max(a.bbox for a in ds.images[0].annotations) == (30.0, 30.0, 14.0, 14.0)


def test_tiff_stacks_page_by_page(tmp_path: Path) -> None:
    frames, masks = [], []
    for k in range(3):
        m = np.zeros((32, 48), np.uint8)
        for j in range(k + 1):
            m[4 + 9 * j : 10 + 9 * j, 5:12] = 255
        masks.append(m)
        frames.append(_grey(32, 48, seed=k))
    root = tmp_path / "rec"
    root.mkdir()
    assert cv2.imwritemulti(str(root / "run.tif"), frames)
    assert cv2.imwritemulti(str(root / "run_mask.tif"), masks)
    assert cv2.imwritemulti(str(root / "bad.tif"), frames)
    assert cv2.imwritemulti(str(root / "bad_mask.tif"), masks[:2])
    ds = load_masks(root, cache_dir=tmp_path / "cache")
    assert [len(im.annotations) for im in ds.images] == [1, 2, 3]
    assert len(ds.problems) == 1
    assert "image 'bad.tif': the stack has 3 pages but its mask stack bad_mask.tif has 2" in ds.problems[0]
    for im, frame in zip(ds.images, frames, strict=True):
        assert im.file.parent.parent == tmp_path / "cache"
        assert np.array_equal(im.load()[..., 0], frame)  # the page written once as a PNG frame
    # a stack given as a file, its mask beside it
    one = load_dataset(root / "run.tif", cache_dir=tmp_path / "cache")
    assert one.num_instances == 6


def test_bad_pairs_are_one_line_each_and_the_rest_is_kept(tmp_path: Path) -> None:
    m = _scene()
    _write_pairs(tmp_path, {"good": m, "small": m, "nomask": m, "broken": m})
    cv2.imwrite(str(tmp_path / "masks" / "small.png"), m[:32, :40])
    (tmp_path / "masks" / "nomask.png").unlink()
    (tmp_path / "masks" / "broken.png").write_bytes(b"not a png at all")
    cv2.imwrite(str(tmp_path / "masks" / "orphan.png"), m)
    ds = load_dataset(tmp_path)
    assert [im.file.name for im in ds.images] == ["good.png"]
    assert ds.num_instances == 3
    text = "\n".join(ds.problems)
    assert len(ds.problems) == 4, text
    assert "image 'images/small.png': its mask masks/small.png is 40x32 but the image is 80x64" in text
    assert "image 'images/nomask.png': no mask for it in masks/" in text
    assert "image 'images/broken.png': its mask masks/broken.png cannot be read" in text
    assert "mask 'masks/orphan.png': no image named orphan in images/" in text


def test_options_that_cannot_work_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(MaskrtError, match="connectivity 6 is not 4 or 8"):
        MaskOptions(connectivity=6).check()
    with pytest.raises(MaskrtError, match="--classes item 'bubble' is not VALUE=NAME"):
        parse_classes("bubble")
    (tmp_path / "masks").mkdir()
    (tmp_path / "images").mkdir()
    with pytest.raises(MaskrtError, match="no image with a mask found"):
        load_masks(tmp_path)


def test_label_rles_match_per_label_encoding() -> None:
    rng = np.random.default_rng(3)
    for t in range(60):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        lab = rng.integers(0, 6, (h, w)) * (rng.random((h, w)) < rng.random())
        out = label_rles(lab)
        assert set(out) == {int(v) for v in np.unique(lab) if v > 0}
        for v, r in out.items():
            assert r == rle_codec.encode(lab == v), (t, v)


def test_watershed_splits_two_touching_discs_and_keeps_one_disc_whole() -> None:
    fg = np.zeros((60, 90), np.uint8)
    cv2.circle(fg, (30, 30), 15, 1, -1)
    cv2.circle(fg, (57, 30), 15, 1, -1)  # centres 27 px apart: overlapping discs, a clear neck
    lab = split_touching(fg > 0)
    assert lab.max() == 2
    assert cv2.connectedComponents(fg)[0] - 1 == 1
    left, right = lab[30, 30], lab[30, 57]
    assert left != right and left > 0 and right > 0
    # each region is within a few percent of its disc's own half of the union, and nothing is lost
    assert ((lab > 0) == (fg > 0)).all()
    a, b = int((lab == left).sum()), int((lab == right).sum())
    assert abs(a - b) <= 0.01 * (a + b)  # mirror-symmetric pair: halves (697 and 697 px when measured)
    cut = np.flatnonzero((lab == left).any(axis=0)).max()
    assert 42 <= cut <= 45  # the cut lies at the neck (x = 43.5)
    # a big and a small bubble: the small one keeps about its own disc (316 px measured for 314 = pi 10^2)
    pair = np.zeros((80, 100), np.uint8)
    cv2.circle(pair, (30, 40), 18, 1, -1)
    cv2.circle(pair, (58, 40), 10, 1, -1)
    lab = split_touching(pair > 0)
    assert lab.max() == 2
    small = int((lab == lab[40, 60]).sum())
    assert abs(small - np.pi * 10**2) <= 0.05 * np.pi * 10**2
    one = np.zeros((60, 90), np.uint8)
    cv2.ellipse(one, (45, 30), (30, 12), 20, 0, 360, 1, -1)
    assert split_touching(one > 0).max() == 1
    ring = np.zeros((60, 60), np.uint8)
    cv2.circle(ring, (30, 30), 20, 1, -1)
    cv2.circle(ring, (30, 30), 8, 0, -1)
    assert split_touching(ring > 0).max() == 1


def test_split_option_through_the_importer(tmp_path: Path) -> None:
    m = np.zeros((60, 90), np.uint8)
    cv2.circle(m, (30, 30), 15, 255, -1)
    cv2.circle(m, (57, 30), 15, 255, -1)
    _write_pairs(tmp_path, {"pair": m})
    assert load_dataset(tmp_path).num_instances == 1
    ds = load_dataset(tmp_path, mask_options=MaskOptions(split=True))
    assert ds.num_instances == 2
    assert sum(a.area(60, 90) for a in ds.images[0].annotations) == int((m > 0).sum())


@pytest.mark.parametrize(
    "stem", ["train_0010", "train_0100", "train_0190", "train_0300", "train_0600", "train_0880"]
)
def test_real_frames_instances_are_their_connected_components(stem: str) -> None:
    full = load_dataset(REAL)
    im = next(i for i in full.images if i.file.stem == stem)
    mask = cv2.imread(str(REAL / "masks" / f"{stem}.png"), cv2.IMREAD_GRAYSCALE)
    n, lab, st, _ = cv2.connectedComponentsWithStats((mask >= 128).astype(np.uint8), connectivity=8)
    kept = [i for i in range(1, n) if st[i, cv2.CC_STAT_AREA] >= 4]
    assert len(im.annotations) == len(kept)
    by_area = sorted(a.area(256, 256) for a in im.annotations)
    assert by_area == sorted(int(st[i, cv2.CC_STAT_AREA]) for i in kept)
    biggest = max(im.annotations, key=lambda a: a.area(256, 256))
    k = kept[int(np.argmax([st[i, cv2.CC_STAT_AREA] for i in kept]))]
    assert np.array_equal(biggest.mask(256, 256), lab == k)  # its pixels exactly, liquid islands left out


def test_real_dense_frame_keeps_liquid_islands() -> None:
    ds = load_dataset(REAL)
    im = next(i for i in ds.images if i.file.stem == "train_0600")
    mask = cv2.imread(str(REAL / "masks" / "train_0600.png"), cv2.IMREAD_GRAYSCALE) > 0
    biggest = max(im.annotations, key=lambda a: a.area(256, 256)).mask(256, 256)
    contours, _ = cv2.findContours(biggest.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = cv2.drawContours(np.zeros((256, 256), np.uint8), contours, -1, 1, -1) > 0
    islands = filled & ~mask
    assert islands.sum() > 50  # the patch has liquid islands inside its outline ...
    assert not (biggest & islands).any()  # ... and the instance leaves them out
    assert ds.num_instances == sum(len(i.annotations) for i in ds.images)
    assert ds.classes == ["bubble"] and len(ds.images) == 6


def test_cli_check_and_convert_with_mask_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = np.zeros((40, 60), np.uint8)
    m[2:10, 2:10] = 1
    m[2:12, 30:40] = 2
    _write_pairs(tmp_path / "ds", {"a": m})
    out = tmp_path / "coco.json"
    assert main(["convert", str(tmp_path / "ds"), "--out", str(out), "--classes", "1=bubble,2=droplet"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "wrote" in text and "1 images, 2 instances (bubble 1, droplet 1) from masks" in text
    coco = json.loads(out.read_text())
    assert sorted(a["area"] for a in coco["annotations"]) == [64.0, 100.0]
    assert main(["data", "check", str(tmp_path / "ds"), "--connectivity", "6"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: connectivity 6 is not 4 or 8; pass --connectivity 8 or 4"]
    assert main(["data", "check", str(tmp_path / "ds"), "--mask-kind", "instances", "--min-area", "70"]) == 0
    assert "format: masks; 1 images, 1 instances, 1 classes" in capsys.readouterr().out


def test_training_config_carries_mask_options(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from maskrt.train.dataset import load_datasets

    m = np.zeros((40, 60), np.uint8)
    m[2:10, 2:10] = 1
    m[2:12, 30:40] = 2
    _write_pairs(tmp_path, {"a": m})
    ds = load_datasets([str(tmp_path)], masks={"classes": "1=bubble,2=droplet"})
    assert ds.class_counts() == {"bubble": 1, "droplet": 1}
    assert MaskOptions.from_dict(MaskOptions(classes={1: "a"}, split=True).as_dict()) == MaskOptions(
        classes={1: "a"}, split=True
    )
