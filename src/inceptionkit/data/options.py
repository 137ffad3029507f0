"""What every data loader takes besides where the data is and the model's input size."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from ..normalization import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class LoadOptions:
    """How a loader normalizes, augments and splits a data set, whichever data set it is.

    ``mean``/``std``: one value per channel or one for all (three are averaged for a grey model).
    ``augment``: random shifts/flips/crops on the train split (never on val/test).
    ``seed``, ``val_fraction``, ``test_fraction``: the seeded stratified split where the data set has
    none (CIFAR-10 brings its own test set and takes no ``test_fraction``; so does a FER2013 CSV with
    ``Usage``, which brings val as well). ``interpolation``: how images are resized to the model's input.
    """

    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    augment: bool = True
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    interpolation: str = "bilinear"

    @classmethod
    def of(cls, options: LoadOptions | None = None, **keywords) -> LoadOptions:
        """``options`` (the defaults when None) with the fields named in ``keywords`` replaced, so that a
        loader accepts either; a keyword that is no field is a TypeError naming it."""
        return dataclasses.replace(options if options is not None else cls(), **keywords)
