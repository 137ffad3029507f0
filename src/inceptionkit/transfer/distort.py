"""Random distortions of training images (TensorFlow retrain.py's ``--flip_left_right``,
``--random_crop``, ``--random_scale``, ``--random_brightness``): each training step sees a new
version of each image, so its bottleneck is computed afresh and never cached.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch import nn
from torchvision.transforms import v2

from ..data.folder import open_image
from ..errors import BadValue
from ..probe import probing
from ..weights.preprocessing import Preprocessing, preprocessing_of
from .bottlenecks import pre_logits


@dataclass(frozen=True)
class Distortions:
    """How much to distort: ``crop_pct`` enlarges the view by up to that percentage before a random
    crop of the input size (a margin to crop from), ``scale_pct`` enlarges it by a further random
    0 .. ``scale_pct`` percent, ``brightness_pct`` multiplies pixel values by 1 +- that percentage,
    ``flip`` mirrors half the images left to right."""

    flip: bool = False
    crop_pct: float = 0.0
    scale_pct: float = 0.0
    brightness_pct: float = 0.0

    def __post_init__(self):
        for name in ("crop_pct", "scale_pct", "brightness_pct"):
            value = getattr(self, name)
            if not 0 <= value < (100 if name == "brightness_pct" else math.inf):
                limit = "in [0, 100)" if name == "brightness_pct" else "0 or more"
                raise BadValue(f"{name} must be {limit} (a percentage), got {value}")

    @property
    def any(self) -> bool:
        return self.flip or bool(self.crop_pct or self.scale_pct or self.brightness_pct)

    def transform(self, prep: Preprocessing, rng: random.Random | None = None) -> Callable[[Image.Image], torch.Tensor]:
        """PIL image -> distorted model input, as ``prep.transform()`` would give it undistorted."""
        return _Distorted(self, prep, rng or random.Random())


class _Distorted:
    """The model's own view of an image (shorter side to ``resize``, centre crop), enlarged by a random
    factor, randomly cropped back to the input size, maybe mirrored, brightened or darkened."""

    def __init__(self, distortions: Distortions, prep: Preprocessing, rng: random.Random):
        self.d, self.prep, self.rng = distortions, prep, rng
        self.mode = v2.InterpolationMode(prep.interpolation)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        d, prep, rng = self.d, self.prep, self.rng
        _, height, width = prep.input_size
        scale = (1 + d.crop_pct / 100) * rng.uniform(1.0, 1 + d.scale_pct / 100)
        view = v2.functional.resize(image, round(prep.resize * scale), interpolation=self.mode, antialias=True)
        view = v2.functional.center_crop(view, [round(height * scale), round(width * scale)])
        top = rng.randint(0, view.height - height)
        left = rng.randint(0, view.width - width)
        view = view.crop((left, top, left + width, top + height))
        if d.flip and rng.random() < 0.5:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        x = v2.functional.to_dtype(v2.functional.pil_to_tensor(view.convert("L" if prep.colour == "L" else "RGB")),
                                   torch.float32, scale=True)
        if d.brightness_pct:
            x = (x * rng.uniform(1 - d.brightness_pct / 100, 1 + d.brightness_pct / 100)).clamp(0, 1)
        return prep.normalize(x)


class DistortedFeatures:
    """Training batches for a new head when distortions are on: each batch's images opened, distorted
    and run through the network (eval mode) anew, in place of cached bottlenecks."""

    def __init__(self, model: nn.Module, samples: Sequence[tuple[str, int]], distortions: Distortions,
                 seed: int = 0):
        prep = preprocessing_of(model)
        self.model, self.samples = model, list(samples)
        self.transform = distortions.transform(prep, random.Random(seed))
        self.mode = "L" if prep.colour == "L" else "RGB"
        self.labels = torch.tensor([label for _, label in self.samples], dtype=torch.long)
        self.dim = model.head_hidden_size

    def __len__(self) -> int:
        return len(self.samples)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([self.transform(open_image(self.samples[i][0], self.mode)) for i in index.tolist()])
        with probing(self.model):
            return pre_logits(self.model, x), self.labels[index]
