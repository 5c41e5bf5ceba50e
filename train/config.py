"""What a training run is asked to do: :class:`TrainConfig` (run by :mod:`maskrt.train.trainer`).

It is declared in :mod:`maskrt.options`, torch-free and outside maskrt.train, so that ``maskrt train``'s options
take their defaults from it without importing this package; imported from here, it is the same class.
"""

from maskrt.options import TrainConfig

__all__ = ["TrainConfig"]
