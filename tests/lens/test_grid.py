"""Activation grids: tile positions checked pixel by pixel against the channels they show."""

import numpy as np
import pytest
import torch

from inceptionkit.lens.grid import grid, grid_shape, tile_origin


def normalized(channel: torch.Tensor) -> np.ndarray:
    """Min-max to 0..255, by hand."""
    low, high = channel.min(), channel.max()
    return ((channel - low) / (high - low) * 255).round().to(torch.uint8).numpy()


def test_a_35x35x32_branch_tiles_into_8_rows_of_4():
    x = torch.randn(32, 35, 35, generator=torch.Generator().manual_seed(0))
    picture = np.asarray(grid(x, cols=4, scale=1))
    assert picture.shape == (8 * 36 + 1, 4 * 36 + 1, 3)  # 1 px between tiles and around them
    for r in range(8):
        for c in range(4):
            top, left = 1 + r * 36, 1 + c * 36
            assert np.array_equal(picture[top:top + 35, left:left + 35, 0], normalized(x[4 * r + c]))


def test_global_normalization_keeps_channels_comparable():
    x = torch.stack([torch.full((4, 4), 1.0), torch.full((4, 4), 3.0), torch.linspace(0, 4, 16).reshape(4, 4)])
    picture = np.asarray(grid(x, cols=3, scale=1, normalize="global"))[..., 0]
    assert picture[1, 1] == round(255 / 4) and picture[1, 6] == round(3 * 255 / 4)
    assert picture[1, 11] == 0 and picture[4, 14] == 255


def test_shapes_and_errors():
    assert grid_shape(32) == (6, 6) and grid_shape(10, cols=5) == (2, 5) and grid_shape(1) == (1, 1)
    assert tile_origin(5, 4, (10, 10)) == (12, 12)
    assert grid(torch.randn(1, 3, 8, 8)).size == (2 * 49 + 1, 2 * 49 + 1)  # 2 x 2 tiles of 8 px upscaled 6x to 48
    with pytest.raises(ValueError, match="C x H x W"):
        grid(torch.randn(8, 8))
    with pytest.raises(ValueError, match="normalize must be one of tile, global"):
        grid(torch.randn(2, 4, 4), normalize="batch")
