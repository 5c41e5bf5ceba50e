"""A batch sampler whose position is one integer, so a killed run resumes on the exact next batch.

Batch ``i`` (global iteration) is a pure function of ``(seed, i, rank)``: each epoch shuffles with
its own seed, every rank takes its own slice, and each sample gets its own augmentation seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch


class ResumableBatchSampler(torch.utils.data.Sampler[list[tuple[int, int]]]):
    """Yield batches of ``(index, augmentation seed)`` for global iterations ``[start, stop)``.

    Args:
        n: dataset size.
        batch_size: images per batch on this rank.
        seed: run seed.
        start: first global iteration to yield.
        stop: one past the last global iteration.
        rank, world_size: this rank's slice of every epoch.
    """

    def __init__(
        self, n: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if n <= 0:
            raise ValueError("empty dataset")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.stop, self.rank, self.world_size = start, stop, rank, world_size
        self.iters_per_epoch = iters_per_epoch(n, batch_size, world_size)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def epoch_order(self, epoch: int) -> list[int]:
        """This rank's sample order for ``epoch`` (padded by wrapping so every batch is full)."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        need = self.iters_per_epoch * self.batch_size * self.world_size
        perm = (perm * math.ceil(need / self.n))[:need]
        return perm[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order: list[int] = []
        cur_epoch = -1
        for it in range(self.start, self.stop):
            epoch, pos = divmod(it, self.iters_per_epoch)
            if epoch != cur_epoch:
                order, cur_epoch = self.epoch_order(epoch), epoch
            idxs = order[pos * self.batch_size : (pos + 1) * self.batch_size]
            base = (self.seed * 1_000_003 + it * 7919 + self.rank * 104_729) % (2**62)
            yield [(i, base + j) for j, i in enumerate(idxs)]


def iters_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Iterations in one pass over ``n`` images with ``batch_size`` per rank on ``world_size`` ranks."""
    return max(1, math.ceil(n / (batch_size * world_size)))
