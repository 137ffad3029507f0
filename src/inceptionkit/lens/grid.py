"""Tile a layer's activations into one picture: one tile per channel, row by row."""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw

from ..errors import BadValue

NORMALIZE = ("tile", "global")
BACKGROUND = (0.85, 0.85, 0.85)  # between the tiles and where no channel is: no activation value looks like it


def grid_shape(channels: int, cols: int | None = None) -> tuple[int, int]:
    """``(rows, cols)`` for ``channels`` tiles: near-square (more columns than rows) unless ``cols`` is given."""
    if channels < 1:
        raise BadValue(f"nothing to tile: {channels} channels")
    if cols is None:
        cols = math.ceil(math.sqrt(channels))
    if cols < 1:
        raise BadValue(f"cols must be at least 1, got {cols}")
    return math.ceil(channels / cols), cols


def _scaled(x: torch.Tensor, normalize: str) -> torch.Tensor:
    """Values to [0, 1]: each channel on its own range ("tile") or all on one ("global")."""
    if normalize == "global":
        low, high = x.min(), x.max()
    else:
        flat = x.flatten(1)
        low, high = flat.min(1).values[:, None, None], flat.max(1).values[:, None, None]
    span = (high - low).clamp_min(1e-12)
    return ((x - low) / span).clamp(0, 1)


def grid(
    activations: torch.Tensor,
    cols: int | None = None,
    normalize: str = "tile",
    labels: bool = False,
    scale: int | None = None,
    pad: int = 1,
    cmap: str | None = None,
) -> Image.Image:
    """A PIL image of ``activations`` (C x H x W, or 1 x C x H x W): tile (r, c) is channel ``r * cols + c``.

    ``normalize``: "tile" stretches each channel to full range, "global" keeps channels comparable.
    ``scale``: integer upscaling of each tile (nearest); default makes small maps at least 48 px.
    ``pad`` pixels of light grey separate the tiles; ``labels`` writes each channel's index in its
    tile; ``cmap`` a matplotlib colormap name ("viridis"), black to white when None. RGB out.
    """
    x = activations.detach().float().cpu()
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3:
        raise BadValue(f"grid takes C x H x W activations (or a batch of one), got shape {tuple(activations.shape)}")
    if normalize not in NORMALIZE:
        raise BadValue(f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}")
    channels, height, width = x.shape
    rows, cols = grid_shape(channels, cols)
    scale = scale or max(1, math.ceil(48 / max(height, width)))
    if scale < 1 or pad < 0:
        raise BadValue(f"scale must be at least 1 and pad at least 0, got {scale} and {pad}")
    tiles = _scaled(x, normalize).repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    th, tw = height * scale, width * scale
    canvas = np.zeros((rows * (th + pad) + pad, cols * (tw + pad) + pad), dtype=np.float32)
    used = np.zeros(canvas.shape, dtype=bool)
    for i in range(channels):
        top, left = tile_origin(i, cols, (th, tw), pad)
        canvas[top:top + th, left:left + tw] = tiles[i].numpy()
        used[top:top + th, left:left + tw] = True
    if cmap is None:
        rgb = np.repeat(canvas[..., None], 3, axis=2)
    else:
        rgb = colormaps[cmap](canvas)[..., :3]
    rgb[~used] = BACKGROUND
    image = Image.fromarray((rgb * 255).round().astype(np.uint8), mode="RGB")
    if labels:
        draw = ImageDraw.Draw(image)
        for i in range(channels):
            top, left = tile_origin(i, cols, (th, tw), pad)
            box = draw.textbbox((left + 2, top + 1), str(i))
            draw.rectangle(box, fill=(0, 0, 0))
            draw.text((left + 2, top + 1), str(i), fill=(255, 220, 0))
    return image


def tile_origin(index: int, cols: int, tile: tuple[int, int], pad: int = 1) -> tuple[int, int]:
    """``(top, left)`` pixel of tile ``index`` in a grid of ``cols`` columns of ``tile`` = (h, w) tiles."""
    r, c = divmod(index, cols)
    return pad + r * (tile[0] + pad), pad + c * (tile[1] + pad)


def image_sheet(images: torch.Tensor, labels: list[str] | None = None, cols: int | None = None,
                min_side: int = 96, pad: int = 2) -> Image.Image:
    """Pictures (B x C x H x W in [0, 1], C 1 or 3) side by side, each upscaled to at least ``min_side``
    pixels (nearest), with an optional label under each."""
    x = images.detach().float().cpu().clamp(0, 1)
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise BadValue(f"image_sheet takes B x C x H x W images with C 1 or 3, got {tuple(images.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    count, _, height, width = x.shape
    rows, cols = grid_shape(count, cols)
    scale = max(1, math.ceil(min_side / max(height, width)))
    th, tw = height * scale, width * scale
    label_h = 14 if labels else 0
    sheet = Image.new("RGB", (cols * (tw + pad) + pad, rows * (th + label_h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i in range(count):
        r, c = divmod(i, cols)
        left, top = pad + c * (tw + pad), pad + r * (th + label_h + pad)
        pixels = (x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        sheet.paste(Image.fromarray(pixels).resize((tw, th), Image.NEAREST), (left, top))
        if labels:
            draw.text((left + 2, top + th + 1), str(labels[i]), fill=(0, 0, 0))
    return sheet
