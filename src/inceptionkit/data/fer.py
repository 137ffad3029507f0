"""FER2013 from its CSV: 48x48 grey faces, 7 emotions.

The file ``fer2013.csv`` of the Kaggle challenge "Challenges in Representation Learning: Facial
Expression Recognition" (Goodfellow et al. 2013): 35,887 rows of ``emotion`` (0..6), ``pixels``
(2,304 space-separated values) and ``Usage`` (Training 28,709 / PublicTest 3,589 / PrivateTest 3,589).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import BadValue, MissingFile
from .options import LoadOptions
from .splits import DataSplits, stratified_split, tensor_splits
from .transforms import RandomHorizontalFlip, RandomShift, check_input_size

CLASSES = ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SIDE = 48
_NUMBERS = re.compile(r"[0-9 ]*")
URL = "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data"


def default_path() -> Path:
    """``$INCEPTIONKIT_CACHE/fer2013/fer2013.csv``, by default under ``~/.cache/inceptionkit``."""
    return Path(os.environ.get("INCEPTIONKIT_CACHE", "~/.cache/inceptionkit")).expanduser() / "fer2013" / "fer2013.csv"


def _parse(row: dict, has_usage: bool) -> tuple[np.ndarray, int, str]:
    """One row -> (48x48 uint8 image, label, split); ValueError says what is wrong with it."""
    try:
        label = int(row["emotion"])
    except (TypeError, ValueError):
        raise BadValue(f"emotion {row['emotion']!r} is not a number") from None
    if not 0 <= label < len(CLASSES):
        raise BadValue(f"emotion {label} is not in 0..6")
    text = row["pixels"] or ""
    if not _NUMBERS.fullmatch(text):
        raise BadValue("pixels are not all numbers")
    pixels = np.fromstring(text, dtype=np.int64, sep=" ")  # 4x faster than int() per value
    if pixels.size != SIDE * SIDE:
        raise BadValue(f"{pixels.size} pixels instead of {SIDE * SIDE}")
    if pixels.min() < 0 or pixels.max() > 255:
        raise BadValue("pixels outside 0..255")
    split = "train"
    if has_usage:
        split = USAGE.get((row["Usage"] or "").strip())
        if split is None:
            raise BadValue(f"Usage {row['Usage']!r} is none of {', '.join(USAGE)}")
    return pixels.astype(np.uint8).reshape(SIDE, SIDE), label, split


def load_fer2013(
    path: str | os.PathLike | None,
    input_size: tuple[int, int, int],
    *,
    options: LoadOptions | None = None,
    **keywords,
) -> DataSplits:
    """FER2013 split by ``Usage``: Training / PublicTest / PrivateTest -> train / val / test.

    Rows that cannot be read (a wrong pixel count, text among the numbers, an unknown emotion or
    Usage) are skipped and counted. A CSV without ``Usage`` (Kaggle's ``train.csv``) is split
    stratified by ``seed`` with the fractions. Train augmentation at 48x48: a horizontal flip and
    a shift of up to 4 pixels (edges replicated), then resize to the model's input. ``options``, or its
    fields as ``keywords``: a :class:`LoadOptions`.
    """
    input_size = check_input_size(input_size)
    options = LoadOptions.of(options, **keywords)
    path = default_path() if path in (None, "") else Path(path).expanduser()
    if not path.is_file():
        raise MissingFile(f"FER2013 CSV not found at {path}; get fer2013.csv from {URL}")
    images, labels, splits, skipped = [], [], [], []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("emotion", "pixels") if c not in columns]
        if missing:
            raise BadValue(
                f"{path} is not FER2013: row 1 (the header) lacks column(s) {', '.join(missing)} "
                f"(expected emotion, pixels, Usage; found {', '.join(columns) or 'nothing'})"
            )
        reader.fieldnames = columns
        has_usage = "Usage" in columns
        for number, row in enumerate(reader, start=2):  # row 1 is the header
            try:
                image, label, split = _parse(row, has_usage)
            except ValueError as err:
                skipped.append((f"{path}:{number}", str(err)))
                continue
            images.append(image)
            labels.append(label)
            splits.append(split)
    if not images:
        raise BadValue(f"{path} has no readable FER2013 row ({len(skipped)} skipped)")

    images = torch.from_numpy(np.stack(images)).unsqueeze(1)  # (N, 1, 48, 48) uint8
    labels = torch.tensor(labels, dtype=torch.long)
    if has_usage:
        splits = np.array(splits)
        parts = [np.flatnonzero(splits == part) for part in ("train", "val", "test")]
    else:
        parts = stratified_split(labels.numpy(), options.val_fraction, options.test_fraction, options.seed)
    return tensor_splits(images, labels, parts, input_size=input_size, options=options,
                         augmentation=[RandomHorizontalFlip(), RandomShift(4, fill="edge")],
                         classes=CLASSES, name="fer2013", skipped_files=skipped)
