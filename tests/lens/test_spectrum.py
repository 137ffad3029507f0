"""Fourier against pixels at a matched objective: the share of spectral energy above half Nyquist."""

import math

import pytest
import torch

from inceptionkit.lens import objectives as obj
from inceptionkit.lens.spectrum import compare_parameterizations, high_frequency_share


def test_the_share_of_white_noise_is_the_area_outside_the_circle_and_a_smooth_image_has_none():
    """Radial frequency above 0.25 cycles per pixel: 1 - pi/4 of the square of frequencies (by hand)."""
    noise = torch.randn(16, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert high_frequency_share(noise).mean() == pytest.approx(1 - math.pi * 0.25 ** 2, abs=0.01)
    rows = torch.arange(64.0)
    wave = torch.cos(2 * math.pi * 3 * rows / 64)[None, None, :, None].expand(1, 3, 64, 64)  # 3 cycles: low
    assert high_frequency_share(wave).item() < 1e-6
    fine = torch.cos(2 * math.pi * 24 * rows / 64)[None, None, None, :].expand(1, 1, 8, 64)  # 0.375 cycles/px
    assert high_frequency_share(fine).item() == pytest.approx(1.0)


def test_fourier_pictures_hold_less_high_frequency_energy_than_pixels_at_the_same_objective(digits_net):
    """Lucid's argument on a network we train offline (the digits network, 8 channels of inception3b, no
    jitter so that only the parameterization differs): the pixel images are stopped at the step where
    they first reach the Fourier images' final objective, and hold well more energy above half Nyquist."""
    found = compare_parameterizations(digits_net, obj.channel("inception3b", range(8)), steps=64)
    assert found.pixel_objective >= 0.9 * found.fourier_objective  # matched (or the whole run when short)
    assert found.pixel_share > 1.4 * found.fourier_share, found.describe()
