"""Guards on where a command writes: never over one of its own inputs, and never discover too late that it cannot.

Every command that writes calls these before any slow work:

- :func:`refuse_overwriting_inputs`: ``maskrt predict imgs --out imgs`` or ``maskrt convert a.json --out a.json``
  is refused, whatever spelling reaches the same file (relative paths, ``..``, symlinks, hard links).
- :func:`check_writable`: an output under ``/proc``, below a file, or in a folder without permission is refused
  with one line naming the path, instead of a traceback after the work is done.

:func:`user_cache_dir` is where maskrt keeps what it makes for the user (decoded embedded images, INT8 copies).

Example:
    >>> refuse_overwriting_inputs(["a.json"], files=["a.json"], fix="pass another --out")
    Traceback (most recent call last):
    maskrt.errors.MaskrtError: a.json: this output is also an input (a.json) and would overwrite it; ...
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from maskrt.errors import MaskrtError

PathLike = str | os.PathLike[str]


def user_cache_dir(name: str) -> Path:
    """``$MASKRT_CACHE/name``, else ``$XDG_CACHE_HOME/maskrt/name`` (``~/.cache/maskrt/name``)."""
    env = os.environ.get("MASKRT_CACHE")
    if env:
        return Path(env) / name
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "maskrt" / name


def _resolved(path: PathLike) -> Path:
    return Path(os.path.abspath(os.path.expanduser(path))).resolve()


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file: one resolved path, or (both existing) one inode."""
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _is_within(path: Path, folder: Path) -> bool:
    """Whether resolved ``path`` lies inside (or is) resolved ``folder``."""
    return path == folder or folder in path.parents


def refuse_overwriting_inputs(
    inputs: Iterable[PathLike],
    *,
    files: Iterable[PathLike] = (),
    folders: Iterable[PathLike] = (),
    fix: str,
) -> None:
    """Raise :class:`MaskrtError` when an output would overwrite one of the command's own inputs.

    Args:
        inputs: the files and folders the command reads.
        files: output files the command will write. One is refused when it is the same file as an input, or
            when it already exists inside an input folder (a folder's files are its inputs).
        folders: output folders the command fills with files named after its inputs (annotated images,
            frames). One is refused when it is an input folder or holds an input file directly.
        fix: what the user should do instead, e.g. ``"pass another folder, e.g. --out runs/predict"``.

    Raises:
        MaskrtError: naming the output, the input it would overwrite, and ``fix``.
    """
    ins = [Path(p) for p in inputs]
    in_keys = [(p, _resolved(p)) for p in ins]
    for out in (Path(p) for p in files):
        key = _resolved(out)
        for src, src_key in in_keys:
            if same_file(out, src):
                raise MaskrtError(f"this output is also an input ({src}) and would overwrite it; {fix}", path=out)
            if src_key.is_dir() and out.exists() and _is_within(key, src_key):
                raise MaskrtError(
                    f"this output already exists inside the input folder {src} and may be one of its inputs; "
                    f"it would be overwritten; {fix}",
                    path=out,
                )
    for folder in (Path(p) for p in folders):
        key = _resolved(folder)
        for src, src_key in in_keys:
            if src_key == key or (src_key.parent == key and not src_key.is_dir()):
                raise MaskrtError(
                    f"this output folder holds the input {src}; what is written there would overwrite or mix "
                    f"with the inputs; {fix}",
                    path=folder,
                )


def check_writable(path: PathLike, *, kind: str, option: str) -> None:
    """Raise :class:`MaskrtError` now when ``path`` cannot be written as a ``"file"`` or a ``"folder"``.

    Nothing is left behind: the check creates and removes one temporary file in the nearest existing folder.

    Args:
        path: the output the command will write (created later, with its missing parent folders).
        kind: ``"file"`` or ``"folder"``: what the command writes at ``path``.
        option: how the user gave ``path`` (``--out``, ``OUT``), named in the message.
    """
    if kind not in ("file", "folder"):
        raise ValueError(f"kind must be 'file' or 'folder', not {kind!r}")
    p = Path(path).expanduser()
    if kind == "folder" and p.exists() and not p.is_dir():
        raise MaskrtError(f"{option} needs a folder but this is a file; remove it or pass another path", path=p)
    if kind == "file" and p.is_dir():
        raise MaskrtError(f"{option} needs a file name but this is a folder; pass a file path inside it", path=p)
    target = p if kind == "folder" else p.parent
    existing = next((q for q in (target, *target.parents) if q.exists()), Path("."))
    if not existing.is_dir():
        raise MaskrtError(
            f"cannot create {option} here: {existing} is a file, not a folder; pass another path", path=p
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".maskrt-write-check-", dir=existing)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MaskrtError(
            f"cannot write {option} here ({reason} in {existing}); pass a path in a folder you can write to",
            path=p,
        ) from exc
    os.close(fd)
    os.unlink(probe)
