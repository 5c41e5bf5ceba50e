"""maskrt.train: datasets, synthetic scenes, augmentation, Mask R-CNN presets, training, evaluation.

The training API is imported lazily, so ``maskrt.train.synth`` and ``maskrt.train.data`` work without torch:

    >>> from maskrt.train import TrainConfig, train
    >>> result = train(TrainConfig(data=["synth/annotations.json"], iters=500, out="runs/x"))
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainConfig", "TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from maskrt.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'maskrt.train' has no attribute {name!r}")
