"""How an image being optimized is parameterized: raw pixels, or a frequency-scaled Fourier spectrum
with decorrelated colour, each mapped through a sigmoid into [0, 1].

The Fourier parameterization (Olah et al., "Feature Visualization", Distill 2017) scales each
frequency by 1 / frequency, so that gradient steps change every scale of the image at a similar
rate instead of mostly adding high-frequency noise; colour decorrelation does the same for the
three channels, which in natural images are strongly correlated. The result optimizes faster and
looks less like noise than raw pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import BadValue

# The square root of ImageNet's RGB colour covariance (Lucid's constant): decorrelated -> RGB.
COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_MATRIX = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()


class ImageParam(nn.Module):
    """A batch of images, B x C x H x W in [0, 1], as a function of learnable parameters."""

    def __init__(self, batch: int, channels: int, height: int, width: int, fft: bool = True,
                 decorrelate: bool = True, sd: float = 0.01, generator: torch.Generator | None = None,
                 decay_power: float = 1.0, generators: Sequence[torch.Generator] | None = None):
        super().__init__()
        if min(batch, channels, height, width) < 1:
            raise BadValue(f"image size must be positive, got batch {batch}, {channels}x{height}x{width}")
        self.shape = (batch, channels, height, width)
        self.fft, self.decorrelate = fft, decorrelate and channels == 3
        if fft:
            freqs = _frequencies(height, width)
            self.register_buffer("scale", 1.0 / freqs.clamp_min(1.0 / max(height, width)) ** decay_power)
            self.spectrum = nn.Parameter(_start((batch, channels, *freqs.shape, 2), sd, generator, generators))
        else:
            self.pixels = nn.Parameter(_start((batch, channels, height, width), sd, generator, generators))

    def forward(self) -> torch.Tensor:
        batch, channels, height, width = self.shape
        if self.fft:
            spectrum = torch.view_as_complex(self.spectrum) * self.scale
            x = torch.fft.irfft2(spectrum, s=(height, width), norm="ortho") / 4.0
        else:
            x = self.pixels
        if self.decorrelate:
            x = torch.einsum("bchw,dc->bdhw", x, _COLOR_MATRIX.to(x))
        return torch.sigmoid(x)


def _start(shape: tuple[int, ...], sd: float, generator: torch.Generator | None,
           generators: Sequence[torch.Generator] | None) -> torch.Tensor:
    """Normal noise of ``shape`` times ``sd``: from one generator, or image i from ``generators[i]``."""
    if generators is None:
        return torch.randn(shape, generator=generator) * sd
    if len(generators) != shape[0]:
        raise BadValue(f"{len(generators)} generators for a batch of {shape[0]} images: give one per image")
    return torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in generators]) * sd


def _frequencies(height: int, width: int) -> torch.Tensor:
    """|f| of each coefficient of a real 2-D FFT of an H x W image (cycles per pixel)."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def image(size: int | tuple[int, int], batch: int = 1, channels: int = 3, fft: bool = True,
          decorrelate: bool = True, sd: float = 0.01, seed: int | None = None,
          generators: Sequence[torch.Generator] | None = None) -> ImageParam:
    """An image parameterization of ``size`` (an int for square); ``fft`` and ``decorrelate`` as above.
    ``generators``: one per image, each drawing its image's start alone (else ``seed`` draws the batch)."""
    height, width = (size, size) if isinstance(size, int) else size
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return ImageParam(batch, channels, height, width, fft=fft, decorrelate=decorrelate, sd=sd, generator=generator,
                      generators=generators)
