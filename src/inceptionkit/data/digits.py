"""The embedded default: scikit-learn's handwritten digits, upscaled to the model's input.

1,797 real 8x8 grey images of the digits 0-9 (values 0..16), from the UCI "Optical Recognition
of Handwritten Digits" test set, shipped inside scikit-learn (``sklearn.datasets.load_digits``),
so nothing is downloaded.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits

from .options import LoadOptions
from .splits import DataSplits, stratified_split, tensor_splits
from .transforms import RandomShift, check_input_size


def load_digits_splits(
    input_size: tuple[int, int, int], *, options: LoadOptions | None = None, **keywords
) -> DataSplits:
    """Digits split stratified by ``seed``; train items shifted by up to 1/8 of the side when ``augment``.

    ``options``, or its fields as ``keywords``: a :class:`LoadOptions`. The 8x8 images stay in memory and
    are upscaled per item; no flips (digits are not mirror-symmetric).
    """
    input_size = check_input_size(input_size)
    options = LoadOptions.of(options, **keywords)
    digits = load_digits()
    images = torch.from_numpy(digits.images).float().div_(16).unsqueeze(1)  # (1797, 1, 8, 8) in [0, 1]
    labels = torch.from_numpy(digits.target).long()
    parts = stratified_split(labels.numpy(), options.val_fraction, options.test_fraction, options.seed)
    shift = RandomShift(min(input_size[1:]) // 8, fill=0.0)  # 0 is the paper's blank
    return tensor_splits(images, labels, parts, input_size=input_size, options=options, augmentation=[shift],
                         after_resize=True,
                         classes=[str(d) for d in digits.target_names], name="digits")
