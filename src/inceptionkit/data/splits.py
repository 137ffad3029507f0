"""Train/val/test splits: the seeded stratified split, the in-memory image dataset, DataSplits."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import Dataset

from ..errors import BadValue
from .options import LoadOptions
from .transforms import channel_stats, tensor_pipeline


@dataclass
class DataSplits:
    """A data set ready for a model: three datasets of ``(normalized C x H x W tensor, int label)``.

    ``skipped_files`` lists ``(where, why)`` for each image left out as unreadable (a file of a
    folder, a row of a CSV); ``mean`` and ``std`` are the per-channel values the tensors were
    normalized with (to turn them back into pictures).
    """

    train: Dataset
    val: Dataset
    test: Dataset
    classes: list[str]
    input_size: tuple[int, int, int]
    name: str
    skipped: int = 0
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def skipped_reasons(self) -> dict[str, int]:
        """How many images were skipped for each short reason ("truncated JPEG", "empty file", "not an
        image" ...), the commonest first."""
        counts = Counter(skip_kind(where, why) for where, why in self.skipped_files)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF"}


def skip_kind(where: str, why: str) -> str:
    """A short reason to group a skipped image by: ``why`` as the loaders give it, in a few words."""
    if re.search(r"\.csv:\d+$", where, re.IGNORECASE):
        return "malformed CSV row"
    if why == "empty file":
        return why
    if "cannot identify image file" in why:
        return "not an image"
    suffix = PurePath(where).suffix.lstrip(".").lower()
    kind = _FORMATS.get(suffix, suffix.upper() or "image")
    return f"truncated {kind}" if "truncated" in why.lower() else f"broken {kind}"


def stratified_split(
    labels: Sequence[int], val_fraction: float, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train, val and test: disjoint, covering ``labels``, each class in proportion.

    The same seed gives the same split. When a class is too small to appear in every part, the
    split is seeded but not stratified.
    """
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise BadValue(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be >= 0 and sum below 1"
        )
    labels = np.asarray(labels)
    everything = np.arange(len(labels))
    rest, test = _split(everything, labels, test_fraction, seed)
    train, val = _split(rest, labels[rest], val_fraction / (1 - test_fraction), seed + 1)
    return np.sort(train), np.sort(val), np.sort(test)


def _split(indices: np.ndarray, labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if fraction == 0 or len(indices) == 0:
        return indices, indices[:0]
    try:
        return tuple(train_test_split(indices, test_size=fraction, random_state=seed, stratify=labels))
    except ValueError:  # a class with fewer members than parts: split without stratifying
        return tuple(train_test_split(indices, test_size=fraction, random_state=seed))


class ImageTensors(Dataset):
    """Images held in memory as one tensor, transformed per item.

    ``images`` is ``(N, c, h, w)``, uint8 (0..255) or float (0..1), shared by the splits of one
    source; ``indices`` picks this split's images. ``transform`` maps a float image to the model's input.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        indices: Sequence[int],
        transform: Callable[[torch.Tensor], torch.Tensor],
    ):
        self.images, self.labels = images, torch.as_tensor(labels, dtype=torch.long)
        self.indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        self.transform = transform
        self._index, self._labels = self.indices.tolist(), self.labels[self.indices].tolist()

    def __len__(self) -> int:
        return len(self._index)

    @property
    def targets(self) -> list[int]:
        """The label of every item, in order."""
        return list(self._labels)

    def _float(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255) if x.dtype == torch.uint8 else x.float()

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.transform(self._float(self.images[self._index[i]]))
        return x.contiguous(), self._labels[i]


def data_splits(train: Dataset, val: Dataset, test: Dataset, *, classes: Sequence[str],
                input_size: tuple[int, int, int], name: str, mean: Sequence[float], std: Sequence[float],
                skipped_files: Sequence[tuple[str, str]] = ()) -> DataSplits:
    """The three datasets as :class:`DataSplits`, with the per-channel ``mean``/``std`` they were normalized with."""
    channel_mean, channel_std = channel_stats(mean, std, input_size[0])
    return DataSplits(train, val, test, list(classes), input_size, name, len(skipped_files), list(skipped_files),
                      channel_mean, channel_std)


def tensor_splits(images: torch.Tensor, labels: torch.Tensor, parts: Sequence[Sequence[int]], *,
                  input_size: tuple[int, int, int], options: LoadOptions, augmentation: Sequence[nn.Module] = (),
                  after_resize: bool = False, **meta) -> DataSplits:
    """In-memory images split by ``parts`` (train, val, test indices) as :class:`DataSplits`: resized and
    normalized for ``input_size`` as ``options`` say; the train split is also augmented (before the resize,
    or after it with ``after_resize``) when ``options.augment``. ``meta``: :func:`data_splits`' classes,
    name, skipped_files."""
    mean, std, interpolation = options.mean, options.std, options.interpolation
    plain = tensor_pipeline(input_size, mean, std, interpolation=interpolation)
    where = "after_resize" if after_resize else "before_resize"
    augmented = tensor_pipeline(input_size, mean, std, interpolation=interpolation, **{where: list(augmentation)})
    train, val, test = parts
    return data_splits(ImageTensors(images, labels, train, augmented if options.augment else plain),
                       ImageTensors(images, labels, val, plain), ImageTensors(images, labels, test, plain),
                       input_size=input_size, mean=mean, std=std, **meta)
