"""Read annotation files (JSON, XML), turning unreadable or truncated ones into one-line user errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import defusedxml
import defusedxml.ElementTree as SafeET

from maskrt.errors import MaskrtError


def read_json(path: Path, shown: str | None = None) -> Any:
    """Parse a JSON file; raise :class:`MaskrtError` naming the file and where it broke."""
    shown = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MaskrtError(f"{shown}: file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MaskrtError(
            f"{shown}: cannot read the file ({exc}); check that it is a UTF-8 JSON file"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        end = text.rstrip()
        cut = exc.pos >= len(end) - 1 or end[-1:] not in ("}", "]")
        hint = "the file looks truncated" if cut else "the file is not valid JSON"
        raise MaskrtError(
            f"{shown}: {hint} (line {exc.lineno} column {exc.colno}: {exc.msg}); re-export or repair it"
        ) from None


def peek_json(path: Path, limit: int = 1 << 16) -> str:
    """The first ``limit`` characters of a file, for format detection without parsing all of it."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            return f.read(limit)
    except OSError:
        return ""


def read_xml(path: Path, shown: str | None = None) -> ET.Element:
    """Parse an untrusted XML file (entities refused); raise :class:`MaskrtError` naming the file and the fault."""
    shown = shown or str(path)
    if not path.is_file():
        raise MaskrtError(f"{shown}: file not found; check the path")
    try:
        return SafeET.parse(path).getroot()  # defusedxml: no entity expansion, no external references
    except defusedxml.EntitiesForbidden as exc:
        target = f" -> {exc.sysid}" if exc.sysid else ""
        raise MaskrtError(
            f"{shown}: refused: XML entities are not allowed (entity {exc.name!r}{target} declared); "
            "annotation exports declare none, so export the file again from CVAT"
        ) from None
    except defusedxml.ExternalReferenceForbidden as exc:
        raise MaskrtError(
            f"{shown}: refused: XML entities are not allowed (external reference {exc.sysid!r}); "
            "annotation exports declare none, so export the file again from CVAT"
        ) from None
    except defusedxml.DefusedXmlException as exc:
        raise MaskrtError(f"{shown}: refused: unsafe XML ({exc}); export the file again from CVAT") from None
    except ET.ParseError as exc:
        line, col = exc.position
        raise MaskrtError(
            f"{shown}: not well-formed XML, the file may be truncated (line {line} column {col}); re-export it"
        ) from None
    except OSError as exc:
        raise MaskrtError(f"{shown}: cannot read the file ({exc})") from None


def json_kind(path: Path) -> str | None:
    """Which format a JSON file is in (``coco``, ``labelme``, ``via``, ``via3``), from its first bytes."""
    head = peek_json(path)
    stripped = head.lstrip()
    if not stripped.startswith("{"):
        return None
    if '"_via_img_metadata"' in head or ('"regions"' in head and '"filename"' in head):
        return "via"
    if (
        '"project"' in head
        and '"vid_list"' in head
        or '"_via_data_format_version"' in head
        and '"metadata"' in head
    ):
        return "via3"
    if '"shapes"' in head and ('"imagePath"' in head or '"version"' in head or '"flags"' in head):
        return "labelme"
    if '"images"' in head and ('"annotations"' in head or '"categories"' in head):
        return "coco"
    if '"images"' in head or '"annotations"' in head:
        return "coco"
    return None
