"""Augmentation keyed by (seed, epoch, sample): the same random crop or shift for a sample in an epoch,
whichever worker process, rank or resumed run draws it.

:class:`EpochSampler` yields ``(epoch, index)`` keys; :class:`SeededItems` draws each item with
torch's and Python's random generators seeded from ``(seed, epoch, index)`` and puts the caller's
generator state back afterwards, so data loading in the main process (``workers=0``) leaves the
training's own random draws (dropout) as they would be with worker processes. NumPy's global
generator is not keyed (seeding it costs ~100 us an item): augmentations draw from torch's.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler

_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample in one epoch: splitmix64 over the three numbers, the same on
    every machine and Python version."""
    x = _splitmix64(seed & _MASK)
    x = _splitmix64(x ^ (epoch & _MASK))
    return _splitmix64(x ^ (index & _MASK)) >> 1


class EpochSampler(DistributedSampler):
    """:class:`~torch.utils.data.DistributedSampler` (this rank's share of a permutation seeded by
    ``(seed, epoch)``) that yields ``(epoch, index)`` for :class:`SeededItems`."""

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return ((epoch, index) for index in super().__iter__())


class SeededItems(Dataset):
    """``dataset`` read by ``(epoch, index)`` keys, each item drawn under generators seeded by
    :func:`item_seed` ``(seed, epoch, index)``; a bare index reads epoch 0."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int] | int):
        epoch, index = key if isinstance(key, tuple) else (0, key)
        seed = item_seed(self.seed, epoch, index)
        generator = torch.default_generator
        torch_state, python_state = generator.get_state(), random.getstate()
        generator.manual_seed(seed)
        random.seed(seed)
        try:
            return self.dataset[index]
        finally:
            generator.set_state(torch_state)
            random.setstate(python_state)
