"""Random transforms applied to the image at every optimization step, so that what is found excites
the unit robustly rather than through one exact arrangement of pixels (Lucid's "transformation
robustness"). Each is a callable ``(images, generator) -> images``; :func:`compose` chains them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _pick(options: Sequence, generator: torch.Generator):
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def pad(width: int, value: float = 0.5) -> Transform:
    """Pad every side by ``width`` pixels of ``value`` (grey), so that jitter moves content, not edges."""
    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return F.pad(x, (width, width, width, width), value=value)
    return apply


def jitter(distance: int) -> Transform:
    """A random crop that shifts the image by up to ``distance - 1`` pixels in x and y (it shrinks by
    ``distance - 1``)."""
    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if distance <= 1:
            return x
        dy, dx = (int(v) for v in torch.randint(distance, (2,), generator=generator))
        h, w = x.shape[-2] - distance + 1, x.shape[-1] - distance + 1
        return x[..., dy:dy + h, dx:dx + w]
    return apply


def random_scale(scales: Sequence[float]) -> Transform:
    """Resize by a factor drawn from ``scales`` (bilinear)."""
    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        factor = float(_pick(scales, generator))
        size = (max(1, round(x.shape[-2] * factor)), max(1, round(x.shape[-1] * factor)))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return apply


def random_rotate(degrees: Sequence[float]) -> Transform:
    """Rotate about the centre by an angle drawn from ``degrees`` (bilinear, edges repeated)."""
    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        angle = math.radians(float(_pick(degrees, generator)))
        if angle == 0:
            return x
        cos, sin = math.cos(angle), math.sin(angle)
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return apply


def compose(transforms: Sequence[Transform]) -> Transform:
    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for transform in transforms:
            x = transform(x, generator)
        return x
    return apply


def standard(size: int) -> Transform:
    """Lucid's standard set, scaled to the image: pad, jitter, scale 0.9-1.1, rotate -10..10 degrees
    (0 most often), jitter. For 224 px that is pad 12, jitter 8 and 4, as Lucid has it."""
    unit = max(1, round(size / 224 * 8))
    return compose([
        pad(round(1.5 * unit)),
        jitter(unit),
        random_scale([1 + (i - 5) / 50 for i in range(11)]),
        random_rotate(list(range(-10, 11)) + 5 * [0]),
        jitter(max(1, unit // 2)),
    ])


def none() -> Transform:
    return compose([])
