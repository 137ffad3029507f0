"""Transforms from stored images to a model's input: resize, channels, shifts, flips, normalization.

The tensor transforms below work on one image ``(C, H, W)`` or a batch ``(N, C, H, W)`` of floats
in [0, 1] and cost microseconds each (torchvision's v2 transforms on tensors cost ~50-300 us per
call, which a 32x32 training loop would feel). Folders of files use torchvision's v2 pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

from ..errors import BadValue
from ..normalization import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (the data package's defaults)

# ITU-R 601-2 luma, the weights PIL's convert("L") uses.
_LUMA = (0.299, 0.587, 0.114)


def channel_stats(
    mean: Sequence[float], std: Sequence[float], channels: int
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std for ``channels`` channels.

    One value serves every channel; three values for a one-channel model are averaged (the grey
    image is the average colour, so its statistics are the average of the colour statistics).
    """
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != len(std):
        raise BadValue(f"mean has {len(mean)} values and std {len(std)}; give one per channel")
    if any(s <= 0 for s in std):
        raise BadValue(f"std must be positive, got {std}")
    if len(mean) == channels:
        return mean, std
    if len(mean) == 1:
        return mean * channels, std * channels
    if channels == 1:
        return (sum(mean) / len(mean),), (sum(std) / len(std),)
    raise BadValue(f"mean/std have {len(mean)} values for a {channels}-channel input; give 1 or {channels}")


def check_input_size(input_size: Sequence[int]) -> tuple[int, int, int]:
    """``input_size`` as ``(C, H, W)`` ints, with C 1 (grey) or 3 (RGB)."""
    size = tuple(int(v) for v in input_size)
    if len(size) != 3 or size[0] not in (1, 3) or min(size[1:]) < 1:
        raise BadValue(f"input_size must be (C, H, W) with C 1 or 3, got {tuple(input_size)}")
    return size


class Resize(nn.Module):
    """Resize to ``(H, W)`` with ``F.interpolate``; antialiased when it shrinks."""

    def __init__(self, size: tuple[int, int], interpolation: str = "bilinear"):
        super().__init__()
        if interpolation not in ("bilinear", "bicubic", "nearest"):
            raise BadValue(f"interpolation must be bilinear, bicubic or nearest, got {interpolation!r}")
        self.size, self.interpolation = tuple(size), interpolation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) == self.size:
            return x
        batch = x if x.dim() == 4 else x.unsqueeze(0)
        smooth = self.interpolation != "nearest"
        shrink = smooth and (x.shape[-2] > self.size[0] or x.shape[-1] > self.size[1])
        out = F.interpolate(
            batch,
            size=self.size,
            mode=self.interpolation,
            align_corners=False if smooth else None,
            antialias=shrink,
        )
        if self.interpolation == "bicubic":
            out = out.clamp_(0, 1)  # bicubic overshoots
        return out if x.dim() == 4 else out.squeeze(0)

    def extra_repr(self) -> str:
        return f"size={self.size}, interpolation={self.interpolation}"


class Channels(nn.Module):
    """Grey to RGB by replication, RGB to grey by luma (as PIL's ``convert("L")``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.register_buffer("luma", torch.tensor(_LUMA).view(3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        have = x.shape[-3]
        if have == self.channels:
            return x
        if have == 1:
            return x.expand(*x.shape[:-3], self.channels, *x.shape[-2:])
        return (x * self.luma).sum(dim=-3, keepdim=True)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(-1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={tuple(self.mean.flatten().tolist())}, std={tuple(self.std.flatten().tolist())}"


class RandomShift(nn.Module):
    """Translate by up to ``max_shift`` pixels each way, filling with ``fill`` (a value or "edge").

    The same as random-cropping the image padded by ``max_shift`` (the CIFAR recipe's
    "crop 32 with padding 4"). One shift per call, so a batch moves together.
    """

    def __init__(self, max_shift: int, fill: float | str = 0.0):
        super().__init__()
        self.max_shift, self.fill = int(max_shift), fill if fill == "edge" else float(fill)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.max_shift
        if p <= 0:
            return x
        h, w = x.shape[-2:]
        top, left = torch.randint(0, 2 * p + 1, (2,)).tolist()
        if self.fill == "edge":
            padded = F.pad(x, (p, p, p, p), mode="replicate")
        else:
            padded = F.pad(x, (p, p, p, p), value=self.fill)
        return padded[..., top : top + h, left : left + w]

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}, fill={self.fill}"


class RandomHorizontalFlip(nn.Module):
    """Mirror left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1) if torch.rand(()).item() < self.p else x

    def extra_repr(self) -> str:
        return f"p={self.p}"


def tensor_pipeline(
    input_size: tuple[int, int, int],
    mean: Sequence[float],
    std: Sequence[float],
    *,
    before_resize: Sequence[nn.Module] = (),
    after_resize: Sequence[nn.Module] = (),
    interpolation: str = "bilinear",
) -> nn.Sequential:
    """Stored float image -> model input: augment, resize, augment, channels, normalize."""
    channels, height, width = input_size
    return nn.Sequential(
        *before_resize,
        Resize((height, width), interpolation),
        *after_resize,
        Channels(channels),
        Normalize(*channel_stats(mean, std, channels)),
    )


_PIL_INTERPOLATION = {
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
    "nearest": v2.InterpolationMode.NEAREST,
}


def folder_transforms(
    input_size: tuple[int, int, int],
    mean: Sequence[float],
    std: Sequence[float],
    *,
    crop_pct: float = 0.875,
    interpolation: str = "bilinear",
) -> tuple[v2.Compose, v2.Compose]:
    """The (train, eval) pipelines for PIL images, as in the Inception papers' ImageNet recipe.

    train: a random crop of 35-100% of the area, resized, mirrored at random;
    eval: resize to ``H / crop_pct`` then take the centre ``H x W``.
    """
    channels, height, width = input_size
    if not 0 < crop_pct <= 1:
        raise BadValue(f"crop_pct must be in (0, 1], got {crop_pct}")
    mode = _PIL_INTERPOLATION[interpolation]
    mean, std = channel_stats(mean, std, channels)
    to_tensor = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    train = v2.Compose(
        [
            v2.RandomResizedCrop((height, width), scale=(0.35, 1.0), interpolation=mode, antialias=True),
            v2.RandomHorizontalFlip(),
            *to_tensor,
        ]
    )
    scale = (
        math.floor(height / crop_pct)
        if height == width
        else (math.floor(height / crop_pct), math.floor(width / crop_pct))
    )
    evaluate = v2.Compose(
        [v2.Resize(scale, interpolation=mode, antialias=True), v2.CenterCrop((height, width)), *to_tensor]
    )
    return train, evaluate
