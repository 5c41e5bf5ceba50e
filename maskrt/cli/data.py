"""`maskrt convert` and `maskrt data check`: turn any supported annotations into COCO, and inspect a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from maskrt.cli.app import app, data_app
from maskrt.train.data.masks import MaskOptions

if TYPE_CHECKING:
    from rich.console import Console

    from maskrt.train.data.record import Dataset
    from maskrt.train.data.stats import DatasetStats

FORMAT_HELP = "Annotation format: auto, coco, labelme, via, cvat or masks."
CLASS_ATTR_HELP = "VIA only: the region attribute that holds the class (default: the only attribute)."
DATA_HELP = "Annotation file or folder (COCO, labelme, VIA, CVAT or mask images)."
IMAGES_HELP = "Folder holding the images, when they are not beside the annotation file."
MASK_KIND_HELP = (
    "Mask images: binary, labels (each value a class) or instances (each value one instance); "
    "auto: labels when --classes is given, else binary."
)
THRESHOLD_HELP = "Binary/soft masks: foreground from this fraction of the mask's maximum (<=1) or grey level."
CONNECTIVITY_HELP = "Mask images: 8 or 4 neighbours for connected components."
MIN_AREA_HELP = "Mask images: drop instances with fewer pixels."
CLASSES_HELP = "Label-map masks: VALUE=NAME pairs, e.g. 1=bubble,2=droplet."
CLASS_NAME_HELP = "Binary and instance-id masks: the class of their instances."
SPLIT_HELP = "Mask images: separate touching blobs by a distance-transform watershed."

# the mask-image options of convert, data check and train: declared once, defaults from MaskOptions
MASK_DEFAULTS = MaskOptions()
MaskKind = Annotated[str, typer.Option("--mask-kind", help=MASK_KIND_HELP)]
MaskThreshold = Annotated[float, typer.Option("--mask-threshold", help=THRESHOLD_HELP)]
Connectivity = Annotated[int, typer.Option("--connectivity", help=CONNECTIVITY_HELP)]
MinArea = Annotated[int, typer.Option("--min-area", help=MIN_AREA_HELP)]
MaskClasses = Annotated[str | None, typer.Option("--classes", help=CLASSES_HELP)]
ClassName = Annotated[str, typer.Option("--class-name", help=CLASS_NAME_HELP)]
SplitTouching = Annotated[bool, typer.Option("--split-touching", help=SPLIT_HELP)]


def mask_options(
    kind: str,
    threshold: float,
    connectivity: int,
    min_area: int,
    classes: str | None,
    class_name: str,
    split: bool,
) -> dict[str, object]:
    """The mask-image options of a command, checked, as ``MaskOptions`` keyword arguments."""
    opts = {
        "kind": kind, "threshold": threshold, "connectivity": connectivity, "min_area": min_area,
        "classes": classes, "class_name": class_name, "split": split,
    }
    MaskOptions.from_dict(opts).check()
    return opts


def _load(
    console: Console,
    path: Path,
    fmt: str,
    class_attribute: str | None,
    images: Path | None,
    decode: bool,
    allow_empty: bool,
    masks: dict[str, object] | None = None,
) -> tuple[str, Dataset]:
    from maskrt.train.data import detect_format, load_dataset
    from maskrt.train.data.loader import has_splits
    from maskrt.train.data.masks import MaskOptions

    kind = "split folders" if has_splits(path) else detect_format(path, fmt)[0]
    with console.status(f"Loading {path} ...", spinner="dots") as status:
        ds = load_dataset(
            path,
            fmt,
            class_attribute=class_attribute,
            images=images,
            decode_images=decode,
            allow_empty=allow_empty,
            mask_options=MaskOptions.from_dict(masks) if masks else None,
            on_split=lambda s: status.update(f"Loading {path} ({s}) ..."),
        )
    return kind, ds


def _print_stats(console: Console, st: DatasetStats, kind: str, classes: list[str]) -> None:
    from rich.table import Table

    console.print(f"format: {kind}; {st.images} images, {st.instances} instances, {len(classes)} classes")
    t = Table("class", "instances", title="Instances per class", title_justify="left")
    for name, n in st.class_counts.items():
        t.add_row(name, str(n))
    console.print(t)
    console.print("image sizes (w x h): " + ", ".join(f"{k} ({v})" for k, v in st.image_sizes.items()))
    if st.area_percentiles:
        console.print(
            "instance area (px^2): " + ", ".join(f"p{k} {v:.0f}" for k, v in st.area_percentiles.items())
        )
        console.print("instance sizes: " + ", ".join(f"{k} {v}" for k, v in st.size_buckets.items()))
    if st.per_image:
        p = st.per_image
        console.print(
            f"instances per image: min {p['min']:.0f}, mean {p['mean']:.1f}, median {p['median']:.0f}, "
            f"max {p['max']:.0f}; {st.images_without_instances} images without instances; {st.crowd} crowd"
        )


def _print_problems(console: Console, problems: list[str]) -> None:
    if not problems:
        console.print("problems: none")
        return
    console.print(f"problems: {len(problems)}")
    for p in problems:
        console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)


@app.command()
def convert(
    src: Annotated[Path, typer.Argument(help=DATA_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="COCO JSON file to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "auto",
    class_attribute: Annotated[str | None, typer.Option("--class-attribute", help=CLASS_ATTR_HELP)] = None,
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP)] = None,
    mask_kind: MaskKind = MASK_DEFAULTS.kind,
    threshold: MaskThreshold = MASK_DEFAULTS.threshold,
    connectivity: Connectivity = MASK_DEFAULTS.connectivity,
    min_area: MinArea = MASK_DEFAULTS.min_area,
    classes: MaskClasses = None,
    class_name: ClassName = MASK_DEFAULTS.class_name,
    split: SplitTouching = MASK_DEFAULTS.split,
) -> None:
    """Convert annotations in any supported format to one COCO instance JSON, reporting every problem."""
    from rich.console import Console

    from maskrt.paths import check_writable, refuse_overwriting_inputs
    from maskrt.train.data.stats import dataset_stats

    fix = "write the COCO file elsewhere, e.g. --out converted.coco.json"
    check_writable(out, kind="file", option="--out")
    refuse_overwriting_inputs([src, *([images] if images is not None else [])], files=[out], fix=fix)
    console = Console(highlight=False, soft_wrap=True)
    masks = mask_options(mask_kind, threshold, connectivity, min_area, classes, class_name, split)
    kind, ds = _load(
        console, src, fmt, class_attribute, images, decode=False, allow_empty=False, masks=masks
    )
    refuse_overwriting_inputs([im.file for im in ds.images], files=[out], fix=fix)
    ds.save_coco(out)
    st = dataset_stats(ds)
    counts = ", ".join(f"{k} {v}" for k, v in st.class_counts.items())
    console.print(f"wrote {out}: {st.images} images, {st.instances} instances ({counts}) from {kind}")
    _print_problems(console, ds.problems)


@data_app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help=DATA_HELP)],
    fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "auto",
    class_attribute: Annotated[str | None, typer.Option("--class-attribute", help=CLASS_ATTR_HELP)] = None,
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP)] = None,
    decode: Annotated[bool, typer.Option(
        "--decode/--headers-only",
        help="Decode every image (thorough) or read headers.",
    )] = True,
    json_out: Annotated[Path | None, typer.Option(
        "--json",
        help="Also write the statistics and problems as JSON.",
    )] = None,
    mask_kind: MaskKind = MASK_DEFAULTS.kind,
    threshold: MaskThreshold = MASK_DEFAULTS.threshold,
    connectivity: Connectivity = MASK_DEFAULTS.connectivity,
    min_area: MinArea = MASK_DEFAULTS.min_area,
    classes: MaskClasses = None,
    class_name: ClassName = MASK_DEFAULTS.class_name,
    split: SplitTouching = MASK_DEFAULTS.split,
) -> None:
    """Report counts per class, image and instance sizes, and every problem; exit 2 when nothing is usable."""
    import json

    from rich.console import Console

    from maskrt.atomic import write_text
    from maskrt.paths import check_writable, refuse_overwriting_inputs
    from maskrt.train.data.stats import dataset_stats

    if json_out is not None:
        check_writable(json_out, kind="file", option="--json")
        refuse_overwriting_inputs([path, *([images] if images is not None else [])], files=[json_out],
                                  fix="write the statistics elsewhere, e.g. --json stats.json")
    console = Console(highlight=False, soft_wrap=True)
    masks = mask_options(mask_kind, threshold, connectivity, min_area, classes, class_name, split)
    kind, ds = _load(
        console, path, fmt, class_attribute, images, decode=decode, allow_empty=True, masks=masks
    )
    st = dataset_stats(ds)
    _print_stats(console, st, kind, ds.classes)
    _print_problems(console, ds.problems)
    if json_out is not None:
        write_text(json_out, json.dumps({"path": str(path), "format": kind, **st.as_dict()}, indent=2))
    if st.instances == 0:
        typer.echo(f"error: {path}: no usable instance; fix the problems listed above", err=True)
        raise typer.Exit(2)
