"""labelme, VIA 1, VIA 2 (export and project) and CVAT fixtures import to the same instances as their COCO twin."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from maskrt.train.data import Dataset, detect_format, load_dataset


def instances(ds: Dataset) -> dict[str, list[tuple[str, int]]]:
    """Per image file name: sorted (class, pixel area) of its instances."""
    out = {}
    for im in ds.images:
        items = [(ds.classes[a.category], a.area(im.height, im.width)) for a in im.annotations]
        out[Path(im.file).name] = sorted(items, key=lambda t: (t[0], t[1]))
    return out


def assert_same(got: Dataset, want: Dataset) -> None:
    g, w = instances(got), instances(want)
    assert sorted(g) == sorted(w)
    for name in w:
        assert [c for c, _ in g[name]] == [c for c, _ in w[name]], name
        assert np.allclose([a for _, a in g[name]], [a for _, a in w[name]], rtol=0.01), (
            name,
            g[name],
            w[name],
        )
    assert got.problems == []


def via_twin(folder: Path, fx: SimpleNamespace, imgs: list) -> Dataset:
    keep = [
        fx.Img(i.name, i.width, i.height, [s for s in i.insts if s.kind in fx.VIA_SUPPORTED]) for i in imgs
    ]
    return load_dataset(fx.write_coco(folder, keep, "via_twin.coco.json"))


def test_coco_twin_has_every_shape(twin: tuple[Path, list], fx: SimpleNamespace) -> None:
    path, imgs = twin
    ds = load_dataset(path.parent)
    assert ds.classes == fx.CLASSES
    assert ds.num_instances == sum(len(i.insts) for i in imgs)
    mask_inst = [a for a in ds.images[0].annotations if a.rle is not None]
    assert len(mask_inst) == 1 and mask_inst[0].area(120, 160) == int(imgs[0].insts[-1].geom.sum())
    group = [a for a in ds.images[0].annotations if len(a.polygons) == 2]
    assert len(group) == 1


def test_labelme(twin: tuple[Path, list], fx: SimpleNamespace, tmp_path: Path) -> None:
    path, imgs = twin
    folder = fx.write_labelme(path.parent / "labelme", imgs, image_dir="../")
    assert detect_format(folder) == ("labelme", folder)
    ds = load_dataset(folder)
    assert_same(ds, load_dataset(path))
    shapes_in_files = sum(len(i.insts) + (1 if any(s.kind == "group" for s in i.insts) else 0) for i in imgs)
    assert ds.num_instances == shapes_in_files - 1  # the two group_id shapes are one instance


def test_labelme_embedded_image_is_decoded_to_cache(
    twin: tuple[Path, list], fx: SimpleNamespace, tmp_path: Path
) -> None:
    path, imgs = twin
    folder = tmp_path / "lm"
    fx.write_images(folder, imgs)
    fx.write_labelme(folder, imgs, embed=True)
    for im in imgs:
        (folder / im.name).unlink()
    cache = tmp_path / "cache"
    ds = load_dataset(folder, cache_dir=cache)
    assert_same(ds, load_dataset(path))
    assert all(Path(im.file).parent.parent == cache and Path(im.file).is_file() for im in ds.images)
    assert ds.images[0].load().shape[:2] == (ds.images[0].height, ds.images[0].width)


@pytest.mark.parametrize(("version", "project"), [(1, False), (2, False), (2, True)])
def test_via(twin: tuple[Path, list], fx: SimpleNamespace, version: int, project: bool) -> None:
    path, imgs = twin
    via = fx.write_via(path.parent / "via.json", imgs, version, project)
    assert detect_format(via)[0] == "via"
    ds = load_dataset(via)
    assert ds.classes == fx.CLASSES
    assert_same(ds, via_twin(path.parent, fx, imgs))


def test_via_class_attribute_must_be_named_when_there_are_several(
    twin: tuple[Path, list], fx: SimpleNamespace
) -> None:
    from maskrt.errors import MaskrtError

    path, imgs = twin
    via = fx.write_via(path.parent / "via.json", imgs, 2, attrs={"quality": "good"})
    with pytest.raises(
        MaskrtError, match=r"via\.json: regions have several attributes \('type', 'quality'\)"
    ):
        load_dataset(via)
    ds = load_dataset(via, class_attribute="type")
    assert_same(ds, via_twin(path.parent, fx, imgs))
    assert load_dataset(via, class_attribute="quality").classes == ["good"]
    with pytest.raises(MaskrtError, match="no attribute 'kind'"):
        load_dataset(via, class_attribute="kind")


def test_cvat(twin: tuple[Path, list], fx: SimpleNamespace, tmp_path: Path) -> None:
    path, imgs = twin
    xml = fx.write_cvat(path.parent / "annotations.xml", imgs)
    assert detect_format(xml) == ("cvat", xml)
    ds = load_dataset(xml)
    assert ds.classes == fx.CLASSES
    assert_same(ds, load_dataset(path))
    masks = [a for im in ds.images for a in im.annotations if a.rle is not None]
    want = imgs[0].insts[-1].geom
    assert len(masks) == 1 and np.array_equal(masks[0].mask(120, 160), want)


def test_split_folders_of_another_format_merge(
    twin: tuple[Path, list], fx: SimpleNamespace, tmp_path: Path
) -> None:
    path, imgs = twin
    for split, part in (("train", imgs[:1]), ("valid", imgs[1:])):
        fx.write_images(tmp_path / split, part)
        fx.write_cvat(tmp_path / split / "annotations.xml", part)
    ds = load_dataset(tmp_path)
    assert_same(ds, load_dataset(path))


def test_convert_round_trip_keeps_instances(
    twin: tuple[Path, list], fx: SimpleNamespace, tmp_path: Path
) -> None:
    path, imgs = twin
    xml = fx.write_cvat(path.parent / "annotations.xml", imgs)
    out = tmp_path / "out" / "coco.json"
    load_dataset(xml).save_coco(out)
    assert_same(load_dataset(out), load_dataset(path))


def test_coco_export_layout_with_annotations_and_images_folders(
    twin: tuple[Path, list], fx: SimpleNamespace, tmp_path: Path
) -> None:
    path, imgs = twin
    root = tmp_path / "export"
    fx.write_images(root / "images", imgs)
    (root / "annotations").mkdir()
    coco = fx.write_coco(root / "annotations", imgs, "instances_default.json")
    assert detect_format(root) == ("coco", coco)
    assert_same(load_dataset(root, images=root / "images"), load_dataset(path))
    assert_same(load_dataset(root), load_dataset(path))


def test_unknown_files_and_folders_are_user_errors(tmp_path: Path) -> None:
    from maskrt.errors import MaskrtError

    (tmp_path / "notes.json").write_text('{"hello": 1}')
    with pytest.raises(MaskrtError, match=r"notes\.json: not a known annotation file; pass --format"):
        load_dataset(tmp_path / "notes.json")
    with pytest.raises(MaskrtError, match="no COCO JSON, VIA JSON, CVAT XML or labelme JSONs found"):
        load_dataset(tmp_path)
    with pytest.raises(MaskrtError, match="no such file or folder"):
        load_dataset(tmp_path / "missing")
    (tmp_path / "via3.json").write_text(
        '{"project": {"vid_list": []}, "config": {}, "attribute": {}, "file": {}, "metadata": {}}'
    )
    with pytest.raises(MaskrtError, match="VIA version 3 projects are not supported"):
        load_dataset(tmp_path / "via3.json")
