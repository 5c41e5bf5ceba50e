"""Two `maskrt train --out same` at once: the second is refused naming the first; a killed run's lock is no lock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskrt.cli import main
from maskrt.errors import MaskrtError
from maskrt.lock import LOCK_NAME, FolderLock

# A real second process holding the lock, as a running `maskrt train` does; with "fork" it also forks a child
# that outlives it (what a data-loader worker is), and prints that child's pid.
HOLDER = """
import os, sys, time
from maskrt.lock import FolderLock
lock = FolderLock(sys.argv[1], what="training run")
lock.acquire()
child = os.fork() if sys.argv[2:] == ["fork"] else None
if child == 0:
    time.sleep(60)
    os._exit(0)
print("locked", child or "", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder():
    """Start a process that holds the lock on a folder; every one started is killed at the end."""
    procs: list[subprocess.Popen[str]] = []
    children: list[int] = []

    def start(folder: Path, fork: bool = False) -> tuple[subprocess.Popen[str], int | None]:
        args = [sys.executable, "-c", HOLDER, str(folder), *(["fork"] if fork else [])]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        line = proc.stdout.readline().split() if proc.stdout else []  # blocks until it holds the lock
        assert line[:1] == ["locked"], f"holder did not lock {folder}"
        child = int(line[1]) if len(line) > 1 else None
        if child is not None:
            children.append(child)
        return proc, child

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_second_train_into_a_run_folder_in_use_is_refused_naming_the_first(
    holder, shapes_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    first, _ = holder(run)
    code = main(["train", "--data", str(shapes_coco), "--out", str(run), "--iters", "1", "--workers", "0",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {run}: in use by another training run (pid {first.pid}, host "
                          f"{socket.gethostname()}, started 20")
    assert "pass another --out" in err
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # the second run wrote nothing
    _kill(first)
    with FolderLock(run):  # free once the first is gone
        pass


def test_lock_of_a_killed_run_does_not_block_resume(holder, tiny_run: Path, tmp_path: Path) -> None:
    from maskrt.train.trainer import TrainConfig, train

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    proc, _ = holder(run)
    _kill(proc)
    assert json.loads((run / LOCK_NAME).read_text())["pid"] == proc.pid  # its details are still there
    result = train(TrainConfig(out=str(run), resume=True, workers=0, progress=False))
    assert result.iterations == 3


def test_a_forked_child_of_the_run_does_not_keep_its_lock(holder, tmp_path: Path) -> None:
    """Data-loader workers are forked: when the run is killed, an orphaned worker must not hold the folder."""
    proc, child = holder(tmp_path / "run", fork=True)
    with pytest.raises(MaskrtError, match=f"pid {proc.pid}"):
        FolderLock(tmp_path / "run").acquire()
    _kill(proc)
    assert child is not None
    os.kill(child, 0)  # the forked child still runs (raises if it is gone)
    with FolderLock(tmp_path / "run"):
        pass


def test_lock_in_one_process_refuses_a_second_and_cleans_up_what_it_made(tmp_path: Path) -> None:
    run = tmp_path / "new-run"
    with FolderLock(run, what="training run"):
        info = json.loads((run / LOCK_NAME).read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        with pytest.raises(MaskrtError, match="in use by another training run"):
            FolderLock(run, what="training run").acquire()
    assert not run.exists()  # made by the lock and nothing else used it: removed again
    kept = tmp_path / "kept"
    with FolderLock(kept):
        (kept / "last.pt").write_bytes(b"x")
    assert sorted(p.name for p in kept.iterdir()) == [LOCK_NAME, "last.pt"]


@pytest.mark.slow
def test_two_real_train_processes_into_the_same_folder(shapes_coco: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "maskrt", "-q", "train", "--data", str(shapes_coco), "--val-split", "0",
           "--imgsz", "96", "--batch", "1", "--iters", "400", "--save-every", "1", "--workers", "1",
           "--augment", "none", "--no-progress", "--out", str(run)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run / "last.pt").exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        assert (run / "last.pt").exists(), "the first run did not start training"
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert second.returncode == 2
        assert f"in use by another training run (pid {first.pid}," in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    done = subprocess.run([*cmd[:cmd.index("--data")], "--out", str(run), "--resume", "--iters", "2",
                           "--workers", "1", "--no-progress"], capture_output=True, text=True, timeout=180,
                          check=False)
    assert done.returncode == 0, done.stderr
