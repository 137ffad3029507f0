"""What a set of weights expects of its input, as data, and the transform built from it.

Preprocessing belongs to the weights, not to the architecture: torchvision's GoogLeNet weights
want [-1, 1] input, Cadene's BN-Inception wants BGR in [0, 255] minus the Caffe means, a network
trained here wants what its run used. Nothing in a model transforms input silently; the
transform below is the one explicit step from an image file to the model's input.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from ..errors import BadValue
from ..models import model_config
from ..normalization import IMAGENET_MEAN, IMAGENET_STD

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")


@dataclass(frozen=True)
class Preprocessing:
    """Image -> model input: resize the shorter side to ``resize``, centre-crop ``input_size``'s H x W,
    scale pixel values to ``value_range``, reorder to ``colour``, then ``(x - mean) / std``.

    ``mean`` and ``std`` are in the units of ``value_range`` (Caffe's BGR means are in 0..255).
    """

    input_size: tuple[int, int, int] = (3, 224, 224)
    resize: int = 256
    interpolation: str = "bilinear"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    value_range: tuple[float, float] = (0.0, 1.0)
    colour: str = "RGB"  # RGB, BGR, or L (one grey channel)

    def __post_init__(self):
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "value_range", tuple(float(v) for v in self.value_range))
        channels = self.input_size[0]
        if len(self.input_size) != 3 or channels not in (1, 3) or min(self.input_size[1:]) < 1:
            raise BadValue(f"input_size must be (C, H, W) with C 1 or 3, got {self.input_size}")
        if self.interpolation not in INTERPOLATIONS:
            raise BadValue(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        if self.colour not in ("RGB", "BGR", "L") or (self.colour == "L") != (channels == 1):
            raise BadValue(f"colour {self.colour!r} does not fit {channels} input channel(s): use RGB or BGR "
                             f"for 3, L for 1")
        if len(self.mean) != channels or len(self.std) != channels or min(self.std) <= 0:
            raise BadValue(f"mean and std need {channels} value(s) each, std positive; got {self.mean}, {self.std}")
        if self.resize < min(self.input_size[1:]):
            raise BadValue(f"resize {self.resize} is smaller than the {self.input_size[1]}x{self.input_size[2]} crop")

    @classmethod
    def from_crop_pct(cls, input_size, crop_pct: float, **fields) -> Preprocessing:
        """timm's convention: the shorter side is resized to ``floor(H / crop_pct)`` before the crop."""
        if not 0 < crop_pct <= 1:
            raise BadValue(f"crop_pct must be in (0, 1], got {crop_pct}")
        return cls(input_size=input_size, resize=math.floor(input_size[1] / crop_pct), **fields)

    @property
    def crop_pct(self) -> float:
        return self.input_size[1] / self.resize

    def for_channels(self, in_chans: int) -> Preprocessing:
        """This preprocessing for a network taking ``in_chans`` channels: one channel reads the image grey,
        normalised by the average of the channels' means and of their stds; a grey preprocessing asked for
        three reads RGB with its mean and std on each; other counts keep it as it is."""
        channels = self.input_size[0]
        if in_chans == 1 and channels != 1:
            return replace(self, input_size=(1, *self.input_size[1:]), colour="L",
                           mean=(sum(self.mean) / len(self.mean),), std=(sum(self.std) / len(self.std),))
        if in_chans == 3 and channels == 1:
            return replace(self, input_size=(3, *self.input_size[1:]), colour="RGB", mean=self.mean * 3,
                           std=self.std * 3)
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> Preprocessing:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in known.items()})

    def normalize(self, x):
        """Pixels in [0, 1] (C x H x W or B x C x H x W tensor, RGB or grey) -> the model's input values:
        scaled to ``value_range``, reordered to ``colour``, then ``(x - mean) / std``. Differentiable,
        so feature visualization and DeepDream optimize images through the same step."""
        low, high = self.value_range
        if (low, high) != (0.0, 1.0):
            x = x * (high - low) + low
        if self.colour == "BGR":
            x = x.flip(-3)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).reshape(-1, 1, 1)
        return (x - mean) / std

    def transform(self):
        """A torchvision v2 pipeline: PIL image (or uint8 tensor image) -> normalised float tensor C x H x W."""
        from torchvision.transforms import v2
        steps = [
            v2.Resize(self.resize, interpolation=v2.InterpolationMode(self.interpolation), antialias=True),
            v2.CenterCrop(self.input_size[1:]),
            v2.ToImage(),
        ]
        if self.colour == "L":
            steps.append(v2.Grayscale(1))
        steps += [v2.ToDtype(torch.float32, scale=True), self.normalize]
        return v2.Compose(steps)

    def describe(self) -> str:
        """One line for people: 'resize 256, crop 224x224 bilinear, RGB in [0, 1], mean 0.5, std 0.5'."""
        c, h, w = self.input_size
        low, high = self.value_range

        def values(v):
            return f"{v[0]:g}" if len(set(v)) == 1 else ", ".join(f"{x:g}" for x in v)

        return (f"resize {self.resize}, crop {h}x{w} {self.interpolation}, {self.colour} in [{low:g}, {high:g}], "
                f"mean {values(self.mean)}, std {values(self.std)}")


# --- what a network expects ------------------------------------------------------------------------


def preprocessing_of(model: nn.Module) -> Preprocessing:
    """What ``model`` expects: its weights' preprocessing, or for a network built from scratch its
    architecture's defaults (the ones training from scratch uses)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if "preprocessing" in cfg:
        return Preprocessing.from_dict(cfg["preprocessing"])
    config = getattr(model, "config", None)
    if config is None:
        raise BadValue(f"{type(model).__name__} carries no preprocessing: load it with inceptionkit.load or "
                         f"create_model(..., weights=...), or build a Preprocessing yourself")
    return default_preprocessing(config.name, in_chans=in_chans_of(model))


def network_identity(model: nn.Module, classifiers: bool = True) -> str:
    """A short hash of what decides a network's outputs: its architecture and arguments, its
    preprocessing and every weight and buffer (without the classifiers' with ``classifiers=False``, for
    features that retraining keeps). Keys the bottleneck cache and the microscope's pictures."""
    digest = hashlib.sha256()
    config = getattr(model, "config", None)
    about = {"model": config.name if config else type(model).__name__,
             "kwargs": {k: v for k, v in getattr(model, "init_kwargs", {}).items() if k != "num_classes"},
             "preprocessing": preprocessing_of(model).to_dict()}
    digest.update(json.dumps(about, sort_keys=True, default=str).encode())
    heads = () if classifiers else ("fc.", *(f"{aux}." for aux in getattr(model, "aux_taps", {}).values()))
    for key, tensor in sorted(model.state_dict().items()):
        if not key.startswith(heads):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


def in_chans_of(model: nn.Module) -> int:
    """The input channels of ``model``'s first convolution (3 where it has none)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return first.in_channels if first is not None else 3


def default_preprocessing(name: str, in_chans: int | None = None,
                          input_size: tuple[int, int, int] | None = None) -> Preprocessing:
    """The architecture's defaults (its registry config) as a Preprocessing: for networks trained here."""
    config = model_config(name)
    size = tuple(input_size or config.input_size)
    channels = in_chans or size[0]
    own = len(config.mean)  # the channels the architecture's mean and std are given for
    native = Preprocessing.from_crop_pct((own, *size[1:]), config.crop_pct, interpolation=config.interpolation,
                                         mean=config.mean, std=config.std, colour="L" if own == 1 else "RGB")
    return native.for_channels(channels)
