"""torchvision's published weights, read from the torch hub cache (and downloaded there when online).

Offline machines get a :class:`MaskrtError` naming the exact file to place in the cache folder,
instead of a network traceback.

Example:
    >>> from torchvision.models import MobileNet_V3_Large_Weights
    >>> ensure_cached(MobileNet_V3_Large_Weights.IMAGENET1K_V1)    # Path of the cached file
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from maskrt.errors import MaskrtError

log = logging.getLogger(__name__)


def cache_file(weights: Any) -> Path:
    """Where torch hub keeps (or would keep) the file of a torchvision weights enum member."""
    name = os.path.basename(urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def ensure_cached(weights: Any) -> Path:
    """Return the cached file of ``weights``, downloading it when missing; MaskrtError when that fails."""
    path = cache_file(weights)
    if path.is_file():
        return path
    if os.environ.get("MASKRT_OFFLINE"):
        raise _offline_error(weights, path, "MASKRT_OFFLINE is set")
    path.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s to %s", weights.url, path)
    try:
        torch.hub.download_url_to_file(weights.url, str(path), progress=True)
    except Exception as exc:  # URLError, HTTPError, timeouts, SSL errors...
        raise _offline_error(weights, path, f"{type(exc).__name__}: {exc}") from exc
    return path


def fetch_torchvision_state_dict(weights: Any) -> dict[str, torch.Tensor]:
    """State dict of a torchvision weights enum member (e.g. ``MaskRCNN_ResNet50_FPN_Weights.COCO_V1``)."""
    path = ensure_cached(weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise MaskrtError(
            f"cannot read cached weights ({type(exc).__name__}); delete it and download {weights.url} again",
            path=path,
        ) from exc
    return state


def _offline_error(weights: Any, path: Path, why: str) -> MaskrtError:
    return MaskrtError(
        f"cannot download {weights.url} ({why}); download that file on a machine with internet and place it at "
        f"{path} (the torch hub cache; set TORCH_HOME to move it), or use --weights none or a checkpoint path"
    )


def imagenet_weights(arch: str) -> Any:
    """The torchvision ImageNet backbone weights a preset's ``--weights imagenet`` uses."""
    from torchvision.models import MobileNet_V3_Large_Weights, ResNet50_Weights

    return (
        MobileNet_V3_Large_Weights.IMAGENET1K_V1
        if arch in ("lite", "lite-fast", "mbv3-fpn")
        else ResNet50_Weights.IMAGENET1K_V1
    )
