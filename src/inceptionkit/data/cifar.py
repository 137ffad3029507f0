"""CIFAR-10 from its official python archive in a local folder (downloaded on request).

The archive is https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (Krizhevsky 2009): 50,000
training and 10,000 test 32x32 colour images of 10 classes, read with torchvision's ``CIFAR10``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import extract_archive

from ..errors import MissingFile, UserError
from .options import LoadOptions
from .splits import DataSplits, stratified_split, tensor_splits
from .transforms import RandomHorizontalFlip, RandomShift, check_input_size


def default_root() -> Path:
    """``$INCEPTIONKIT_CACHE/cifar10``, by default ``~/.cache/inceptionkit/cifar10``."""
    return Path(os.environ.get("INCEPTIONKIT_CACHE", "~/.cache/inceptionkit")).expanduser() / "cifar10"


class CorruptArchive(UserError, RuntimeError):
    """CIFAR-10 files that do not match the official md5 sums."""


class _AnyCIFAR10(CIFAR10):
    """CIFAR10 that reads any archive in the official format: files must exist, md5s are not checked."""

    train_list = [[name, None] for name, _ in CIFAR10.train_list]  # noqa: RUF012  (torchvision's attributes)
    test_list = [[name, None] for name, _ in CIFAR10.test_list]  # noqa: RUF012
    meta = {**CIFAR10.meta, "md5": None}  # noqa: RUF012


def _files_present(root: Path) -> bool:
    folder = root / CIFAR10.base_folder
    names = [name for name, _ in CIFAR10.train_list + CIFAR10.test_list] + [CIFAR10.meta["filename"]]
    return all((folder / name).is_file() for name in names)


def _read(root: Path, train: bool, download: bool, verify: bool) -> CIFAR10:
    if not _files_present(root):
        if (root / CIFAR10.filename).is_file():  # the archive is here but not unpacked
            extract_archive(str(root / CIFAR10.filename), str(root))
        elif download:
            try:
                CIFAR10(str(root), train=train, download=True)
            except OSError as err:  # URLError is an OSError
                raise MissingFile(
                    f"CIFAR-10 is not in {root} and downloading {CIFAR10.url} failed ({err}); "
                    f"put the archive (or its unpacked {CIFAR10.base_folder}/ folder) in {root}"
                ) from err
        else:
            raise MissingFile(
                f"CIFAR-10 is not in {root} (no {CIFAR10.base_folder}/ folder with data_batch_1..5, "
                f"test_batch, batches.meta). Download {CIFAR10.url} and unpack it there, "
                f"or pass --download (download=True)"
            )
    try:
        return (CIFAR10 if verify else _AnyCIFAR10)(str(root), train=train)
    except RuntimeError as err:  # torchvision's "not found or corrupted"
        raise CorruptArchive(
            f"the CIFAR-10 files in {root / CIFAR10.base_folder} do not match the official md5 sums; "
            f"delete the folder and download again (or pass verify=False for your own archive in the same format)"
        ) from err


def load_cifar10(
    root: str | os.PathLike | None,
    input_size: tuple[int, int, int],
    *,
    options: LoadOptions | None = None,
    download: bool = False,
    verify: bool = True,
    **keywords,
) -> DataSplits:
    """CIFAR-10: train minus a seeded stratified val split, and the official test batch.

    Train augmentation (the usual recipe): a shift of up to 4 pixels (crop 32 of the image padded
    by 4) and a horizontal flip at 32x32, then resize to the model's input. ``root`` holds the
    archive or its unpacked ``cifar-10-batches-py/``; ``verify=False`` skips the md5 check, for
    archives in the same format that are not the official one. ``options``, or its fields as ``keywords``:
    a :class:`LoadOptions` (its ``test_fraction`` is not used: the test set is the official one).
    """
    input_size = check_input_size(input_size)
    options = LoadOptions.of(options, **keywords)
    root = default_root() if root in (None, "") else Path(root).expanduser()
    if root.name == CIFAR10.base_folder:
        root = root.parent
    train_set, test_set = _read(root, True, download, verify), _read(root, False, download, verify)
    # (N, 32, 32, 3) uint8 -> (N, 3, 32, 32); the official test batch follows the training batches
    images = torch.from_numpy(train_set.data).permute(0, 3, 1, 2).contiguous()
    images = torch.cat([images, torch.from_numpy(test_set.data).permute(0, 3, 1, 2).contiguous()])
    labels = torch.tensor(list(train_set.targets) + list(test_set.targets), dtype=torch.long)
    n_train = len(train_set.targets)
    train, val, _ = stratified_split(labels[:n_train].numpy(), options.val_fraction, 0.0, options.seed)
    test = range(n_train, len(labels))
    return tensor_splits(images, labels, (train, val, test), input_size=input_size, options=options,
                         augmentation=[RandomShift(4, fill=0.0), RandomHorizontalFlip()],
                         classes=train_set.classes, name="cifar10")
