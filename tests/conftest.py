"""Fixtures for the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _openvino_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """OpenVINO's compiled-model cache goes to a temporary folder, not the user's ``~/.cache/maskrt``."""
    folder: Path = tmp_path_factory.mktemp("openvino-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MASKRT_OPENVINO_CACHE", str(folder))
        yield
