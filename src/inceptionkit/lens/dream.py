"""DeepDream: amplify what a layer sees in an image, octave by octave (Mordvintsev et al., 2015).

Gradient ascent on the image with steps normalized by the mean gradient size, a random roll
(jitter) before each step, and the Caffe notebook's octaves: the image is shrunk ``octaves - 1``
times by ``octave_scale``; dreaming starts on the smallest, and the detail it adds is carried up
to the next size. Gradients are computed tile by tile, so the memory a step needs is that of one
tile, whatever the image's size. :func:`dream_zoom` feeds each frame back after a small zoom.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_sample_image
from torch import nn
from torchvision.transforms.functional import to_pil_image

from ..data.folder import open_image
from ..errors import BadValue
from ..files import atomic_save
from ..weights.preprocessing import preprocessing_of
from .activations import run, watching
from .objectives import Objective, as_objective
from .render import model_input


def _objective(spec: Objective | str | Sequence[str]) -> Objective:
    if isinstance(spec, (list, tuple)):
        total = as_objective(spec[0])
        for item in spec[1:]:
            total = total + as_objective(item)
        return total
    return as_objective(spec)


def guided(layer: str, guide_features: torch.Tensor) -> Objective:
    """The Caffe notebook's guided objective: each position's features matched with the guide's most
    similar position (their dot product, averaged over positions), so the image grows the guide's motifs."""
    guide = guide_features.detach().flatten(2)[0]  # C x positions

    def fn(acts) -> torch.Tensor:
        x = acts[layer].flatten(2)  # B x C x positions
        return torch.einsum("bcp,cq->bpq", x, guide.to(x)).amax(dim=2).mean(dim=1)
    return Objective(fn, [layer], f"guided({layer})")


def _gradient(model, x: torch.Tensor, objective: Objective, to_model, seen, tile: int) -> torch.Tensor:
    """d objective / d x, tile by tile (each tile of at most ``tile`` x ``tile`` pixels on its own)."""
    grad = torch.zeros_like(x)
    height, width = x.shape[-2:]
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            part = x[..., top:top + tile, left:left + tile].detach().requires_grad_(True)
            if min(part.shape[-2:]) < 8:  # a sliver at the edge: too small for a network to see
                continue
            value = objective(run(model, to_model(part), seen)).sum()
            grad[..., top:top + tile, left:left + tile] = torch.autograd.grad(value, part)[0]
    return grad


def dream(
    model: nn.Module,
    image: torch.Tensor,
    objective: Objective | str | Sequence[str] = "inception4c",
    octaves: int = 4,
    octave_scale: float = 1.4,
    steps: int = 10,
    step_size: float = 0.01,
    jitter: int = 32,
    tile: int = 512,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """``image`` (C x H x W or 1 x C x H x W in [0, 1]) dreamed on ``objective``: a layer name (its
    L2, DeepDream's), several names (their sum), "layer:channel", or any Objective (e.g. :func:`guided`).
    Returns an image of the same size and shape, in [0, 1]."""
    if octaves < 1 or steps < 1 or octave_scale <= 1:
        raise BadValue(f"octaves and steps must be at least 1 and octave_scale above 1, got {octaves}, {steps}, "
                         f"{octave_scale}")
    squeeze = image.dim() == 3
    x = (image[None] if squeeze else image).detach().float().clamp(0, 1)
    objective = _objective(objective)
    to_model = model_input(preprocessing_of(model), resize=False)
    device = next(model.parameters()).device
    x = x.to(device)
    bases = [x]
    for _ in range(octaves - 1):
        h, w = bases[-1].shape[-2:]
        bases.append(F.interpolate(bases[-1], size=(max(8, round(h / octave_scale)), max(8, round(w / octave_scale))),
                                   mode="bilinear", align_corners=False))
    generator = torch.Generator().manual_seed(seed)
    detail = torch.zeros_like(bases[-1])
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    done, total = 0, octaves * steps
    try:
        with torch.enable_grad(), watching(model, objective.layers, training=False) as seen:
            for base in reversed(bases):
                detail = F.interpolate(detail, size=base.shape[-2:], mode="bilinear", align_corners=False)
                current = base + detail
                for _ in range(steps):
                    dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
                    rolled = current.roll((dy, dx), dims=(-2, -1))
                    grad = _gradient(model, rolled, objective, to_model, seen, tile).roll((-dy, -dx), dims=(-2, -1))
                    current = (current + step_size / (grad.abs().mean() + 1e-8) * grad).clamp(0, 1)
                    done += 1
                    if progress is not None:
                        progress(done, total)
                detail = current - base
    finally:
        for p in frozen:
            p.requires_grad_(True)
    out = current.detach().cpu()
    return out[0] if squeeze else out


def _zoom(x: torch.Tensor, zoom: float, rotate: float) -> torch.Tensor:
    """Enlarge the centre by ``zoom`` and turn it by ``rotate`` degrees, keeping the size."""
    angle = math.radians(rotate)
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype)[None]
    grid = F.affine_grid(theta, list(x[None].shape), align_corners=False)
    return F.grid_sample(x[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)[0]


def dream_zoom(
    model: nn.Module,
    image: torch.Tensor,
    objective: Objective | str | Sequence[str] = "inception4c",
    frames: int = 30,
    zoom: float = 1.05,
    rotate: float = 0.0,
    output: str | os.PathLike | None = None,
    duration_ms: int = 100,
    progress: Callable[[int, int], None] | None = None,
    **dream_options,
) -> list[torch.Tensor]:
    """The feedback loop: dream, zoom (and turn) a little, dream on the result, ``frames`` times.

    Returns the frames (C x H x W in [0, 1]); with ``output`` (a .gif) also writes them as an
    animation. ``dream_options`` go to :func:`dream` (octaves, steps, ...)."""
    if frames < 1 or zoom <= 0:
        raise BadValue(f"frames must be at least 1 and zoom positive, got {frames} and {zoom}")
    frame = image[0] if image.dim() == 4 else image
    seed = dream_options.pop("seed", 0)
    result = []
    for i in range(frames):
        frame = dream(model, frame, objective, seed=seed + i, **dream_options)
        result.append(frame)
        if progress is not None:
            progress(i + 1, frames)
        frame = _zoom(frame, zoom, rotate).clamp(0, 1)
    if output is not None:
        save_gif(result, output, duration_ms)
    return result


def save_gif(frames: Sequence[torch.Tensor], path: str | os.PathLike, duration_ms: int = 100) -> None:
    """Frames (C x H x W in [0, 1]) as a looping animated GIF, written atomically."""
    pictures = [to_pil_image(f.clamp(0, 1)).convert("RGB") for f in frames]

    def write(tmp: str) -> None:
        pictures[0].save(tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0)

    atomic_save(path, write)


def load_picture(path: str | os.PathLike | None = None, colour: str = "RGB", max_side: int = 512,
                 sample: str = "china.jpg") -> torch.Tensor:
    """An image file (default: scikit-learn's ``sample`` photo, china.jpg or flower.jpg) as C x H x W in
    [0, 1], in ``colour`` ("RGB" or "L", as the network takes), shrunk so that its longer side is at
    most ``max_side``."""
    if path is None:
        picture = Image.fromarray(load_sample_image(sample))
    else:
        picture = open_image(path)
    picture.thumbnail((max_side, max_side))
    x = torch.from_numpy(np.array(picture.convert("L" if colour == "L" else "RGB"))).float().div(255)
    return x[None] if x.dim() == 2 else x.permute(2, 0, 1)
