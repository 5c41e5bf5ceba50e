"""CVAT XML is untrusted input: entity-expansion bombs and external entities are refused in one line.

A plain CVAT export declares no entities, so any entity declaration is refused before it is expanded or
resolved, whatever the version of the system's expat.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.train.data.loader import load_dataset

BODY = (
    "<annotations><version>1.1</version><meta><task><labels><label><name>{name}</name></label></labels>"
    "</task></meta>"
    '<image id="0" name="a.png" width="8" height="8">'
    '<polygon label="{name}" points="1,1;6,1;6,6" occluded="0"/></image></annotations>'
)


def _billion_laughs(path: Path, levels: int = 9) -> Path:
    """10**levels copies of "lol" if expanded (a gigabyte at 9 levels) from a file of under 1 kB."""
    decl = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{"".join(f"&lol{i - 1};" for _ in range(10))}">' for i in range(1, levels + 1)
    ]
    path.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE annotations [\n{chr(10).join(decl)}\n]>\n'
                    + BODY.format(name=f"&lol{levels};"))
    return path


def _external_entity(path: Path, secret: Path) -> Path:
    path.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE annotations [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
                    + BODY.format(name="&xxe;"))
    return path


def test_entity_bomb_is_refused(tmp_path: Path) -> None:
    bomb = _billion_laughs(tmp_path / "annotations.xml")
    assert bomb.stat().st_size < 2000
    with pytest.raises(MaskrtError) as info:
        load_dataset(bomb)
    text = str(info.value)
    assert text.startswith(f"{bomb}: refused: XML entities are not allowed (entity 'lol0'")
    assert "truncated" not in text


def test_external_entity_is_refused_and_never_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top-secret-token")
    xxe = _external_entity(tmp_path / "annotations.xml", secret)
    with pytest.raises(MaskrtError, match=r"refused: XML entities are not allowed \(entity 'xxe' -> file://"):
        load_dataset(xxe)
    for argv in (["convert", str(xxe), "--out", str(tmp_path / "out.json")], ["data", "check", str(xxe)]):
        assert main(argv) == 2
        out = capsys.readouterr()
        lines = out.err.strip().splitlines()
        assert len(lines) == 1 and str(xxe) in lines[0] and "refused: XML entities are not allowed" in lines[0]
        assert "top-secret-token" not in out.out + out.err
    assert not (tmp_path / "out.json").exists()


def test_plain_cvat_file_still_imports(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(_png(8, 8))
    ok = tmp_path / "annotations.xml"
    ok.write_text('<?xml version="1.0" encoding="utf-8"?>\n' + BODY.format(name="bubble"))
    ds = load_dataset(ok)
    assert ds.classes == ["bubble"] and len(ds.images) == 1 and ds.num_instances == 1


def _png(w: int, h: int) -> bytes:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".png", np.full((h, w, 3), 128, np.uint8))
    assert ok
    return buf.tobytes()
