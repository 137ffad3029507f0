"""The embedded default: scikit-learn's handwritten digits, upscaled to the model's input.

1,797 real 8x8 grey images of the digits 0-9 (values 0..16), from the UCI "Optical Recognition
of Handwritten Digits" test set, shipped inside scikit-learn (``sklearn.datasets.load_digits``),
so nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from sklearn.datasets import load_digits

from .splits import DataSplits, ImageTensors, stratified_split
from .transforms import IMAGENET_MEAN, IMAGENET_STD, RandomShift, channel_stats, check_input_size, tensor_pipeline


def load_digits_splits(
    input_size: tuple[int, int, int],
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    augment: bool = True,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    interpolation: str = "bilinear",
) -> DataSplits:
    """Digits split stratified by ``seed``; train items shifted by up to 1/8 of the side when ``augment``.

    The 8x8 images stay in memory and are upscaled per item; no flips (digits are not mirror-symmetric).
    """
    input_size = check_input_size(input_size)
    digits = load_digits()
    images = torch.from_numpy(digits.images).float().div_(16).unsqueeze(1)  # (1797, 1, 8, 8) in [0, 1]
    labels = torch.from_numpy(digits.target).long()
    train, val, test = stratified_split(labels.numpy(), val_fraction, test_fraction, seed)
    plain = tensor_pipeline(input_size, mean, std, interpolation=interpolation)
    shifted = tensor_pipeline(
        input_size,
        mean,
        std,
        after_resize=[RandomShift(min(input_size[1:]) // 8, fill=0.0)],  # 0 is the paper's blank
        interpolation=interpolation,
    )
    channel_mean, channel_std = channel_stats(mean, std, input_size[0])
    return DataSplits(
        train=ImageTensors(images, labels, train, shifted if augment else plain, plain),
        val=ImageTensors(images, labels, val, plain),
        test=ImageTensors(images, labels, test, plain),
        classes=[str(d) for d in digits.target_names],
        input_size=input_size,
        name="digits",
        mean=channel_mean,
        std=channel_std,
    )
