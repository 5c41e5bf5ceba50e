"""`maskrt convert` and `maskrt data check`: turn any supported annotations into COCO, and inspect a dataset."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

from maskrt.cli.app import app, data_app
from maskrt.options import MaskOptions

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

MASK_OPTIONS = (  # MaskOptions field, its command-line option, type and help
    ("kind", "--mask-kind", str, MASK_KIND_HELP),
    ("threshold", "--mask-threshold", float, THRESHOLD_HELP),
    ("connectivity", "--connectivity", int, CONNECTIVITY_HELP),
    ("min_area", "--min-area", int, MIN_AREA_HELP),
    ("classes", "--classes", str | None, CLASSES_HELP),
    ("class_name", "--class-name", str, CLASS_NAME_HELP),
    ("split", "--split-touching", bool, SPLIT_HELP),
)
"""The mask-image options of convert, data check and train, declared once (:func:`with_mask_options`); each
default is the MaskOptions field's (``classes`` is given as text, ``"1=bubble,2=droplet"``)."""

Command = TypeVar("Command", bound=Callable[..., Any])


def with_mask_options(command: Command) -> Command:
    """Give a command the mask-image options; it receives them checked, as one ``masks`` keyword argument.

    The options are added after the command's own.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "masks"]
    defaults = MaskOptions()
    added = [
        inspect.Parameter(f"mask_{field}", inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, field),
                          annotation=Annotated[kind, typer.Option(flag, help=text)])
        for field, flag, kind, text in MASK_OPTIONS
    ]

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        values = {field: kwargs.pop(f"mask_{field}") for field, *_ in MASK_OPTIONS}
        MaskOptions.from_dict(values).check()
        return command(*args, masks=values, **kwargs)

    run.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
    return cast(Command, run)


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
@with_mask_options
def convert(
    src: Annotated[Path, typer.Argument(help=DATA_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="COCO JSON file to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=FORMAT_HELP)] = "auto",
    class_attribute: Annotated[str | None, typer.Option("--class-attribute", help=CLASS_ATTR_HELP)] = None,
    images: Annotated[Path | None, typer.Option("--images", help=IMAGES_HELP)] = None,
    masks: dict[str, object] | None = None,
) -> None:
    """Convert annotations in any supported format to one COCO instance JSON, reporting every problem."""
    from rich.console import Console

    from maskrt.paths import check_writable, refuse_overwriting_inputs
    from maskrt.train.data.stats import dataset_stats

    fix = "write the COCO file elsewhere, e.g. --out converted.coco.json"
    check_writable(out, kind="file", option="--out")
    refuse_overwriting_inputs([src, *([images] if images is not None else [])], files=[out], fix=fix)
    console = Console(highlight=False, soft_wrap=True)
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
@with_mask_options
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
    masks: dict[str, object] | None = None,
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
