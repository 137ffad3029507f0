"""A folder of images, one subfolder per class (torchvision's ImageFolder layout).

Either ``root/<class>/*.jpg``, split stratified by seed, or ``root/train/<class>/...`` with
optional ``val/`` (or ``valid/``, ``validation/``) and ``test/``; a part that is missing is taken
from train with its fraction. Every image is opened and decoded once at load time; unreadable
ones (truncated, empty, not an image) are skipped and listed, so the loaders never meet them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS

from ..errors import BadValue, MissingFile, SmallImageWarning
from .options import LoadOptions
from .splits import DataSplits, data_splits, stratified_split
from .transforms import check_input_size, folder_transforms

_PARTS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


class ImageFiles(Dataset):
    """Image files with labels, opened as RGB (or L for one channel) and transformed per item."""

    def __init__(self, samples: Sequence[tuple[str, int]], transform: Callable, mode: str):
        self.samples, self.transform, self.mode = list(samples), transform, mode

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def targets(self) -> list[int]:
        """The label of every item, in order."""
        return [label for _, label in self.samples]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        return self.transform(open_image(path, self.mode)), label


def open_image(path: str | os.PathLike, mode: str = "RGB") -> Image.Image:
    """The image at ``path`` decoded in ``mode`` ("RGB" or "L"); a missing or unreadable file is an error
    naming it."""
    try:
        with Image.open(path) as image:
            return image.convert(mode)
    except FileNotFoundError:
        raise MissingFile(f"{path}: no such image file") from None
    except Exception as err:  # noqa: BLE001  (PIL raises OSError, SyntaxError, ValueError... for broken files)
        raise BadValue(f"{path} cannot be read as an image ({type(err).__name__}: {err})") from None


SMALLEST_SIDE = 8  # pixels: below it the first layers (a 7x7 convolution, stride 2) see almost nothing


def warn_if_small(image: Image.Image, where: str | os.PathLike | None = None) -> Image.Image:
    """``image``, after a :class:`~inceptionkit.errors.SmallImageWarning` naming it when a side is under
    :data:`SMALLEST_SIDE` pixels (it would be scaled up from almost nothing, and classified all the same)."""
    if min(image.size) < SMALLEST_SIDE:
        name = where if where is not None else "an image"
        warnings.warn(f"{name} is {image.width}x{image.height} pixels, under {SMALLEST_SIDE} on a side: it is "
                      f"scaled up to the network's input, and what the network sees says little",
                      SmallImageWarning, stacklevel=3)
    return image


def check_images(paths: list[str]) -> dict[str, str | None]:
    """:func:`check_image` of every path, a few threads at a time (decoding releases the GIL)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return dict(zip(paths, pool.map(check_image, paths)))


def check_image(path: str) -> str | None:
    """Why ``path`` cannot be used as an image, or None when it decodes completely."""
    try:
        if os.path.getsize(path) == 0:
            return "empty file"
        with Image.open(path) as image:
            image.verify()  # structure and checksums, without decoding
        with Image.open(path) as image:
            image.draft(image.mode, (1, 1))  # JPEG: decode at 1/8 scale, still reads every byte
            image.load()
        return None
    except Exception as err:  # noqa: BLE001  (PIL raises OSError, SyntaxError, ValueError... for broken files)
        return f"{type(err).__name__}: {err}"


def subfolders(root: Path) -> list[str]:
    """Names of the visible subfolders of ``root``, sorted (the class folders)."""
    return sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))


def _class_folders(root: Path) -> list[str]:
    classes = subfolders(root)
    if not classes:
        raise BadValue(f"{root} has no class folders (expected {root}/<class>/<image files>)")
    return classes


def _two_or_more(root: Path, classes: list[str]) -> list[str]:
    if len(classes) < 2:
        raise BadValue(f"{root} has only one class ({classes[0]}): a classifier needs at least two classes, "
                         f"one subfolder of images per class ({root}/{classes[0]}/, {root}/<another class>/ ...)")
    return classes


def _no_empty_class(root: Path, classes: list[str], samples: list[tuple[str, int]]) -> None:
    found = {label for _, label in samples}
    empty = [name for i, name in enumerate(classes) if i not in found]
    if empty:
        raise BadValue(f"class folder(s) with no readable image in {root}: {', '.join(empty)}")


def _image_paths(folder: Path) -> list[str]:
    found = []
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        subdirs.sort()
        found += [os.path.join(directory, f) for f in sorted(files) if f.lower().endswith(IMG_EXTENSIONS)]
    return found


def _scan(root: Path, classes: list[str], checked: dict[str, str | None]) -> list[tuple[str, int]]:
    """(path, label) of every image under ``root/<class>``; fills ``checked`` with each file's problem."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = [name for name in subfolders(root) if name not in index]
    if unknown:
        raise BadValue(f"{root} has class folder(s) {', '.join(unknown)} that the training set lacks")
    samples = []
    for name in classes:
        folder = root / name
        if folder.is_dir():
            samples += [(path, index[name]) for path in _image_paths(folder)]
    checked.update(check_images([path for path, _ in samples]))
    return [(path, label) for path, label in samples if checked[path] is None]


def load_folder(
    root: str | os.PathLike,
    input_size: tuple[int, int, int],
    *,
    options: LoadOptions | None = None,
    crop_pct: float = 0.875,
    **keywords,
) -> DataSplits:
    """An image folder as train/val/test; unreadable images are skipped and listed in ``skipped_files``.

    Train: random crop of 35-100% of the area + horizontal flip (when ``augment``);
    val/test: resize to ``H / crop_pct``, centre crop ``H``. Two classes at least, each with a readable image.
    ``options``, or its fields as ``keywords``: a :class:`LoadOptions`.
    """
    input_size = check_input_size(input_size)
    options = LoadOptions.of(options, **keywords)
    val_fraction, test_fraction, seed = options.val_fraction, options.test_fraction, options.seed
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MissingFile(f"image folder {root} does not exist")
    subfolders = _class_folders(root)
    checked: dict[str, str | None] = {}
    if "train" in subfolders:
        others = [name for name in subfolders if name not in _PARTS]
        if others:
            raise BadValue(
                f"{root} has train/ beside {', '.join(others)}; "
                f"expected only train/, val/, test/ (each with one folder per class)"
            )
        aliases = [name for name in subfolders if _PARTS[name] == "val"]
        if len(aliases) > 1:
            raise BadValue(f"{root} has {', '.join(aliases)}; keep one validation folder")
        classes = _two_or_more(root / "train", _class_folders(root / "train"))
        parts = {_PARTS[name]: _scan(root / name, classes, checked) for name in subfolders}
        train_samples = parts["train"]
        _no_empty_class(root, classes, train_samples)
        labels = [label for _, label in train_samples]
        fractions = (0.0 if "val" in parts else val_fraction, 0.0 if "test" in parts else test_fraction)
        carved = stratified_split(labels, *fractions, seed)
        samples = {part: [train_samples[i] for i in idx] for part, idx in zip(("train", "val", "test"), carved)}
        samples.update({part: parts[part] for part in ("val", "test") if part in parts})
    else:
        classes = _two_or_more(root, subfolders)
        everything = _scan(root, classes, checked)
        _no_empty_class(root, classes, everything)
        carved = stratified_split([label for _, label in everything], val_fraction, test_fraction, seed)
        samples = {part: [everything[i] for i in idx] for part, idx in zip(("train", "val", "test"), carved)}

    skipped = [(path, why) for path, why in checked.items() if why is not None]

    mean, std = options.mean, options.std
    train_tf, eval_tf = folder_transforms(input_size, mean, std, crop_pct=crop_pct,
                                          interpolation=options.interpolation)
    mode = "L" if input_size[0] == 1 else "RGB"
    return data_splits(
        ImageFiles(samples["train"], train_tf if options.augment else eval_tf, mode),
        ImageFiles(samples["val"], eval_tf, mode),
        ImageFiles(samples["test"], eval_tf, mode),
        classes=classes, input_size=input_size, name=str(root), mean=mean, std=std, skipped_files=skipped,
    )
