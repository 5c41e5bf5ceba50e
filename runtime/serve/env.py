"""The environment ``maskrt serve`` runs PyTriton in: a venv of its own, reproducible from this checkout.

PyTriton (``nvidia-pytriton``, which ships the Triton server binary in its wheel) needs ``numpy<2``, and its
Python-backend stub embeds an interpreter that must match the venv's standard library: it works in a venv made
from Debian's ``/usr/bin/python3.11``, not under a pyenv build of 3.11 (``'_thread.RLock' object has no attribute
'_recursion_count'`` at model load). So the server lives in ``~/.cache/maskrt/triton-venv`` (made by
``maskrt serve --setup``, or ``make triton-env``) with :data:`REQUIREMENTS` and this checkout of maskrt installed
``--no-deps`` (editable), or in the interpreter named by ``MASKRT_TRITON_PYTHON``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path

from maskrt.atomic import write_text
from maskrt.errors import MaskrtError

log = logging.getLogger(__name__)

BASE_PYTHON = Path("/usr/bin/python3.11")
"""The interpreter the venv is made from (Debian's python3.11: PyTriton's stub runs on its stdlib)."""

DEFAULT_ENV = Path("~/.cache/maskrt/triton-venv")
PYTHON_VAR = "MASKRT_TRITON_PYTHON"
ENV_VAR = "MASKRT_TRITON_ENV"
REQUIREMENTS = (
    "nvidia-pytriton==0.7.0", "numpy<2", "opencv-python-headless>=4.8", "onnxruntime>=1.16", "wheel",
    "setuptools>=77",  # maskrt is installed --no-build-isolation, and its pyproject needs setuptools 77 (SPDX licence)
)
"""What the server needs besides maskrt (PyTriton pinned: ``maskrt.runtime.serve.server`` extends its model config)."""

STAMP = ".maskrt-triton-env.json"
SETUP_HINT = "create it with `maskrt serve --setup` (or `make triton-env`)"


def env_dir() -> Path:
    """The PyTriton venv's folder: ``$MASKRT_TRITON_ENV`` or ``~/.cache/maskrt/triton-venv``."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_ENV).expanduser()


def source_root() -> Path:
    """The maskrt checkout this code runs from (what the venv installs, editable)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "setup.py").is_file() or not (root / "runtime" / "serve").is_dir():
        raise MaskrtError("maskrt serve --setup installs maskrt from its source checkout, and this maskrt is not one; "
                          f"install a checkout with `pip install -e`, or point {PYTHON_VAR} at a Python with "
                          "nvidia-pytriton, numpy<2 and maskrt installed", path=root)
    return root


def _stamp(env: Path) -> dict[str, object]:
    try:
        data = json.loads((env / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def server_python() -> Path:
    """The interpreter that runs the server: ``$MASKRT_TRITON_PYTHON``, or the venv's once it is set up for this checkout.

    Raises:
        MaskrtError: no such interpreter, or the venv is missing or installs another checkout (with the one
            command that fixes it).
    """
    given = os.environ.get(PYTHON_VAR)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise MaskrtError(f"{PYTHON_VAR} names no interpreter; unset it to use the default venv, which you can "
                              + SETUP_HINT, path=path)
        return path
    env = env_dir()
    python = env / "bin" / "python"
    stamp = _stamp(env)
    if not python.is_file() or not stamp:
        raise MaskrtError(f"no PyTriton environment for maskrt serve here; {SETUP_HINT}", path=env)
    if stamp.get("requirements") != list(REQUIREMENTS):
        raise MaskrtError(f"the PyTriton environment was made for other requirements; {SETUP_HINT} again", path=env)
    if stamp.get("source") != str(source_root()):
        raise MaskrtError(f"the PyTriton environment installs maskrt from {stamp.get('source')}, not this checkout; "
                          f"{SETUP_HINT} again", path=env)
    return python


def _run(cmd: list[str], what: str, env: Path) -> None:
    log.info("%s", what)
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
        raise MaskrtError(f"{what} failed ({(lines or ['exit code ' + str(proc.returncode)])[-1][:200]}); check the "
                          "network and rerun `maskrt serve --setup`", path=env)


def setup(env: Path | None = None, base_python: Path = BASE_PYTHON) -> Path:
    """Create or update the PyTriton venv for this checkout; return its interpreter.

    Idempotent and quick when nothing changed: the packages are installed when the venv is new or
    :data:`REQUIREMENTS` changed, and maskrt (``--no-deps``, editable) when it points at another checkout.
    """
    env = (env or env_dir()).expanduser()
    if not base_python.is_file():
        raise MaskrtError(f"maskrt serve runs PyTriton in a venv made from {base_python} (Debian's python3.11: "
                          "PyTriton's stub fails under other builds); install it with `apt-get install python3.11 "
                          f"python3.11-venv`, or point {PYTHON_VAR} at a Python that has nvidia-pytriton",
                          path=base_python)
    root = source_root()
    python = env / "bin" / "python"
    stamp = _stamp(env)
    if not python.is_file():
        env.parent.mkdir(parents=True, exist_ok=True)
        _run([str(base_python), "-m", "venv", str(env)], f"creating a venv from {base_python}", env)
        stamp = {}
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if stamp.get("requirements") != list(REQUIREMENTS):
        _run([*pip, *REQUIREMENTS], f"installing {', '.join(REQUIREMENTS)}", env)
        stamp = {"requirements": list(REQUIREMENTS)}
        write_text(env / STAMP, json.dumps(stamp))
    if stamp.get("source") != str(root):
        _run([*pip, "--no-deps", "--no-build-isolation", "-e", str(root)], f"installing maskrt from {root}", env)
    write_text(env / STAMP, json.dumps({"requirements": list(REQUIREMENTS), "source": str(root)}))
    return python
