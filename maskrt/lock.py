"""An exclusive lock on a folder (a run folder), held by one process at a time and freed when that process dies.

``maskrt train --out runs/a`` takes it so that a second run into the same folder is refused instead of
interleaving ``metrics.jsonl`` and overwriting ``last.pt``. The lock is an OS lock (``flock``) on a file in the
folder, so a run killed with SIGKILL or a power cut leaves no lock behind that could block ``--resume``; the file
only names the holder (pid, host, start time, command) for the refusal message.

Written by hand rather than with ``filelock``: that library truncates the lock file whenever it opens it, so the
holder's details could not live in the file the lock is on.

Example:
    >>> with FolderLock("runs/a", what="training run", option="--out"):
    ...     ...  # a second process entering here gets a MaskrtError naming this one
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

from maskrt.errors import MaskrtError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not guarded there
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_NAME = ".maskrt.lock"

_held: dict[int, FolderLock] = {}  # fd -> lock held by this process
_held_guard = threading.Lock()


def _close_in_child() -> None:
    """After fork (data-loader workers), drop the children's copies: only the process that locked holds it."""
    global _held_guard
    _held_guard = threading.Lock()  # another thread may have held it at the fork
    for fd, lock in list(_held.items()):
        lock._fd = None
        try:
            os.close(fd)
        except OSError:
            pass
    _held.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


class FolderLock:
    """Hold ``folder`` exclusively for as long as this object is entered (or between acquire and release)."""

    def __init__(self, folder: str | Path, *, what: str = "run", option: str = "--out") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self.option = option
        self._fd: int | None = None
        self._made_folder = False

    def holder(self) -> dict[str, object]:
        """What the lock file says about the process that holds (or last held) the lock; {} if unreadable."""
        try:
            info = json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def acquire(self) -> None:
        """Take the lock, creating the folder if needed.

        Raises:
            MaskrtError: another process holds it (the message names it), or the folder cannot be written.
        """
        if fcntl is None or self._fd is not None:
            return
        try:
            self._made_folder = not self.folder.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MaskrtError(
                f"cannot create this folder ({exc.strerror or type(exc).__name__}); pass another {self.option}",
                path=self.folder,
            ) from exc
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as exc:
                raise MaskrtError(
                    f"cannot write in this folder ({exc.strerror or type(exc).__name__}); pass another "
                    f"{self.option}",
                    path=self.folder,
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise MaskrtError(self._busy_message(), path=self.folder) from None
            try:
                if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)  # the last holder removed the file between our open and our lock: take the new one
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        self._fd = fd
        with _held_guard:
            _held[fd] = self
        log.debug("locked %s for pid %d", self.folder, info["pid"])

    def _busy_message(self) -> str:
        info = self.holder()
        who = ", ".join(
            f"{k} {info[k]}" for k in ("pid", "host", "started") if info.get(k) not in (None, "")
        ) or "its details unreadable"
        command = f"; it runs `{info['command']}`" if info.get("command") else ""
        return (
            f"in use by another {self.what} ({who}){command}; wait for it to finish or stop it, "
            f"or pass another {self.option}"
        )

    def release(self) -> None:
        """Free the lock; a folder this lock created and nothing else used is removed again."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with _held_guard:
            _held.pop(fd, None)
        try:
            if self._made_folder and [p.name for p in self.folder.iterdir()] == [LOCK_NAME]:
                self.path.unlink()
                self.folder.rmdir()
            else:
                os.ftruncate(fd, 0)
        except OSError:
            pass
        finally:
            os.close(fd)

    def __enter__(self) -> FolderLock:  # noqa: PYI034 (typing_extensions is no runtime dependency)
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
