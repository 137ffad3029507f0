"""Data sets ready for a model: the embedded digits, CIFAR-10, FER2013 and image folders.

``load_data(spec, model_config.input_size, mean=..., std=...)`` gives a :class:`DataSplits` of
train/val/test datasets whose items are ``(normalized C x H x W tensor, int label)``; the keywords
every loader shares are the fields of :class:`LoadOptions`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BadValue
from .cifar import load_cifar10
from .digits import load_digits_splits
from .fer import load_fer2013
from .folder import ImageFiles, check_image, load_folder, open_image
from .options import LoadOptions
from .splits import DataSplits, ImageTensors, data_splits, stratified_split
from .transforms import channel_stats

__all__ = [
    "DataSplits",
    "ImageFiles",
    "ImageTensors",
    "LoadOptions",
    "channel_stats",
    "check_image",
    "open_image",
    "data_location",
    "data_splits",
    "load_cifar10",
    "load_data",
    "load_digits_splits",
    "load_fer2013",
    "load_folder",
    "stratified_split",
]

ACCEPTED = (
    '"digits" (or nothing: the embedded default), "cifar10" or "cifar10:FOLDER", '
    '"fer2013:FILE.csv" or any FILE.csv, or an image folder (one subfolder per class)'
)


def data_location(data: str | os.PathLike | None) -> str | None:
    """``data`` with its folder or file made absolute (``imgs`` -> ``/home/me/imgs``,
    ``cifar10:~/c10`` -> ``cifar10:/home/me/c10``), so that a run finds it from any working folder.

    None and bare names ("digits", "cifar10", "fer2013") are returned as they are.
    """
    if data is None:
        return None
    spec = os.fspath(data)
    name, _, rest = spec.partition(":")
    if spec.strip().lower() == "digits" or (name.strip().lower() in ("cifar10", "fer2013") and not rest):
        return spec
    if name.strip().lower() in ("cifar10", "fer2013"):
        return f"{name}:{os.path.abspath(Path(rest).expanduser())}"
    return os.path.abspath(Path(spec).expanduser())


def load_data(
    data: str | os.PathLike | None,
    input_size: tuple[int, int, int],
    *,
    options: LoadOptions | None = None,
    download: bool = False,
    crop_pct: float = 0.875,
    verify: bool = True,
    **keywords,
) -> DataSplits:
    """The data set named by ``data``, sized and normalized for a model's ``input_size`` (C, H, W).

    ``data``: None or "digits", "cifar10[:FOLDER]", "fer2013[:FILE.csv]" or a .csv path, or a folder.
    ``options``, or its fields as ``keywords`` (``mean=``, ``std=``, ``augment=``, ``seed=``,
    ``val_fraction=``, ``test_fraction=``, ``interpolation=``): a :class:`LoadOptions`.
    ``download``: fetch CIFAR-10 when absent. ``crop_pct``: folders' eval resize, as in the model's config.
    ``verify=False`` reads a CIFAR-10-format archive without checking the official md5 sums.
    """
    options = LoadOptions.of(options, **keywords)
    spec = "digits" if data is None else os.fspath(data)
    name, _, rest = spec.partition(":")
    if spec.strip().lower() == "digits":
        return load_digits_splits(input_size, options=options)
    if name.strip().lower() == "cifar10":
        return load_cifar10(rest or None, input_size, options=options, download=download, verify=verify)
    if name.strip().lower() == "fer2013":
        return load_fer2013(rest or None, input_size, options=options)
    path = Path(spec).expanduser()
    if spec.lower().endswith(".csv"):
        return load_fer2013(path, input_size, options=options)
    if path.is_dir():
        return load_folder(path, input_size, options=options, crop_pct=crop_pct)
    what = "is a file, not a folder" if path.exists() else "is neither a data set name nor an existing folder"
    raise BadValue(f"data {spec!r} {what}; accepted: {ACCEPTED}")
