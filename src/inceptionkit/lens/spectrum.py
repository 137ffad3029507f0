"""Fourier against pixels, measured the way Lucid argues it: the Fourier parameterization (with
decorrelated colour) preconditions the optimization towards low frequencies, so at a similar
activation its pictures hold less high-frequency noise than those optimized pixel by pixel.

:func:`high_frequency_share` is the share of an image's spectral energy above half the Nyquist
frequency; :func:`compare_parameterizations` renders the same channels both ways and compares the
shares with the pixel images stopped where they first reach the objective the Fourier images ended at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import BadValue
from .objectives import Objective, as_objective
from .render import render

LAST = 5  # steps averaged for an objective's final value (each step's jitter moves it)


def high_frequency_share(images: torch.Tensor, above: float = 0.5) -> torch.Tensor:
    """Per image (B x C x H x W), the share of the energy of its spectrum (each channel's mean removed)
    at radial frequencies above ``above`` times the Nyquist frequency (0.5 cycles per pixel). White
    noise puts about 80% there (the area of the square of frequencies outside that circle); a smooth
    picture, little."""
    if images.dim() != 4:
        raise BadValue(f"images must be B x C x H x W, got {tuple(images.shape)}")
    if not 0 < above < 1:
        raise BadValue(f"above must be a fraction of the Nyquist frequency in (0, 1), got {above}")
    x = images.double() - images.double().mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs() ** 2
    fy = torch.fft.fftfreq(x.shape[-2], dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(x.shape[-1], dtype=torch.float64)[None, :]
    high = (fy ** 2 + fx ** 2).sqrt() > above * 0.5
    total = power.sum(dim=(-3, -2, -1))
    return ((power * high).sum(dim=(-3, -2, -1)) / total.clamp_min(1e-30)).float()


@dataclass(frozen=True)
class ParamComparison:
    """The mean high-frequency share and objective of each parameterization's images; ``pixel_steps``:
    the steps after which the pixel images first reached the Fourier images' final objective (``steps``
    when they never did, their objective then below)."""

    objective: str
    steps: int
    fourier_share: float
    pixel_share: float
    fourier_objective: float
    pixel_objective: float
    pixel_steps: int

    def describe(self) -> str:
        return (f"{self.objective}: high-frequency share fourier {self.fourier_share:.3f} (objective "
                f"{self.fourier_objective:.3f} after {self.steps} steps), pixels {self.pixel_share:.3f} (objective "
                f"{self.pixel_objective:.3f} after {self.pixel_steps}); pixels / fourier "
                f"{self.pixel_share / self.fourier_share:.2f}x")


def compare_parameterizations(model: nn.Module, objective: Objective | str, steps: int = 256,
                              transforms: str = "none", lr: float = 0.05, seed: int = 0,
                              size: int | None = None) -> ParamComparison:
    """Render ``objective`` for ``steps`` steps with the Fourier parameterization and with pixels, then the
    pixels again for as many steps as they took to reach the Fourier images' final objective (a seeded
    render is the same up to any step), and compare the pictures' high-frequency shares there.
    ``transforms="none"`` isolates the parameterization; "standard" adds Lucid's jitter, which smooths both."""
    objective = as_objective(objective)
    options = dict(transforms=transforms, lr=lr, seed=seed, size=size)
    fourier = render(model, objective, steps=steps, param="fourier", **options)
    target = float(fourier.trace[-LAST:].mean())
    pixels = render(model, objective, steps=steps, param="pixels", **options)
    reached = (pixels.trace.mean(dim=1) >= target).nonzero()
    pixel_steps = int(reached[0]) + 1 if len(reached) else steps
    if pixel_steps < steps:
        pixels = render(model, objective, steps=pixel_steps, param="pixels", **options)
    return ParamComparison(objective.name, steps, float(high_frequency_share(fourier.images).mean()),
                           float(high_frequency_share(pixels.images).mean()), target,
                           float(pixels.trace[-LAST:].mean() if pixel_steps == steps else pixels.trace[-1].mean()),
                           pixel_steps)
