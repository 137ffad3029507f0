"""Feature visualization: optimize an image until a network's objective is high.

``render(model, channel("inception4a", range(8)))`` parameterizes a batch of images
(:mod:`.param`), jitters them at every step (:mod:`.transforms`), applies the model's own input
normalization, and follows Adam uphill on the objective (:mod:`.objectives`). It returns the
images and the objective's trace, step by step, one value per image.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.seeding import item_seed
from ..errors import BadValue
from ..probe import probing
from ..weights.preprocessing import preprocessing_of
from . import param as params
from . import transforms as tf
from .activations import run, watching
from .objectives import Objective, as_objective


@dataclass
class Rendering:
    """Images (B x C x H x W in [0, 1]) and ``trace``: the objective per step and image (steps x B)."""

    images: torch.Tensor
    trace: torch.Tensor
    objective: str


def model_input(preprocessing, resize: bool = True) -> Callable[[torch.Tensor], torch.Tensor]:
    """A differentiable map from images in [0, 1] (RGB or grey) to what the model takes
    (:meth:`Preprocessing.normalize`), resized to its input size unless ``resize`` is False
    (DeepDream runs the network on the image's own size)."""
    size = preprocessing.input_size[1:]

    def apply(x: torch.Tensor) -> torch.Tensor:
        if resize and tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return preprocessing.normalize(x)
    return apply


class RedirectedReLU(torch.autograd.Function):
    """ReLU whose gradient, for an image where none gets through, still flows where it would raise a
    negative input (Lucid's redirected ReLU): a unit that starts dead can be woken up."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        relu_grad = torch.where(x < 0, torch.zeros_like(grad), grad)
        redirected = torch.where((x < 0) & (grad > 0), torch.zeros_like(grad), grad)  # never push it lower
        stuck = (relu_grad.flatten(1).norm(dim=1) == 0).reshape(-1, *[1] * (x.dim() - 1))
        return torch.where(stuck, redirected, relu_grad)


REDIRECT_STEPS = 16  # Lucid's redirected_relu_grad.py: "These functions override the gradient for at most 16 steps"


def _redirect(module: nn.Module, inputs, output) -> torch.Tensor:
    return RedirectedReLU.apply(inputs[0])


def unit_seed(seed: int, key: tuple[str, int]) -> int:
    """The seed of one picture: splitmix64 over (seed, the layer's name, the channel), the same on every
    machine, so a unit's picture does not depend on the batch, process or machine that renders it."""
    name, index = key
    return item_seed(seed, int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little"), index)


def _image_keys(objective: Objective, batch: int) -> list[tuple[str, int]]:
    """Image i's key: the unit it renders, or (the objective, i) for objectives of no one unit per image."""
    units = objective.units
    return list(units) if units is not None and len(units) == batch else [(objective.name, i) for i in range(batch)]


def _batch_of(objective: Objective, batch: int | None) -> int:
    return batch or getattr(objective, "batch", None) or 1


class _Repeated(nn.Module):
    """A one-channel image parameterization, its channel repeated ``channels`` times."""

    def __init__(self, image: nn.Module, channels: int):
        super().__init__()
        self.image, self.channels = image, channels

    def forward(self) -> torch.Tensor:
        return self.image().expand(-1, self.channels, -1, -1)


def render(
    model: nn.Module,
    objective: Objective | str,
    steps: int = 256,
    size: int | None = None,
    batch: int | None = None,
    param: str = "fourier",
    transforms: str | Callable | None = "standard",
    lr: float = 0.05,
    seed: int = 0,
    redirect_relu: bool = True,
    progress: Callable[[int, int, torch.Tensor], None] | None = None,
    grey: bool = False,
    channels_last: bool = False,
) -> Rendering:
    """Images that maximize ``objective`` ("layer:channel", "layer" or an :class:`Objective`).

    ``size``: the image side (default: the model's input side); ``batch``: images (default: one per
    channel of a channel range); ``param``: "fourier" (with colour decorrelation) or "pixels";
    ``transforms``: "standard", "none" or a callable ``(images, generator) -> images``; ``seed``
    fixes the start and the jitter of each image from (seed, layer, channel) for a channel or neuron
    objective, so a unit's picture is the same whichever batch renders it; ``redirect_relu`` lets
    gradients reach units that start dead (:class:`RedirectedReLU`) during the first
    :data:`REDIRECT_STEPS` steps, as Lucid, and the true gradient after them. ``progress(step, steps, values)``
    is called every step. ``grey``: one channel, repeated for a colour network: for networks trained
    on grey images copied to three channels (the digits), whose colour pictures show colours the
    network never saw. ``channels_last`` gives the network its input in that memory layout (faster on
    many CPUs; the pictures differ only by float rounding: :mod:`.batching` measures which is faster).
    """
    if steps < 1:
        raise BadValue(f"steps must be at least 1, got {steps}")
    if param not in ("fourier", "pixels"):
        raise BadValue(f"param must be 'fourier' or 'pixels', got {param!r}")
    objective = as_objective(objective)
    prep = preprocessing_of(model)
    size = size or prep.input_size[1]
    device = next(model.parameters()).device
    channels = prep.input_size[0]
    count = _batch_of(objective, batch)
    generators = [torch.Generator().manual_seed(unit_seed(seed, key)) for key in _image_keys(objective, count)]
    image = params.image(size, batch=count, channels=1 if grey else channels, fft=param == "fourier",
                         decorrelate=param == "fourier", generators=generators).to(device)
    if grey and channels > 1:
        image = _Repeated(image, channels)
    if transforms == "standard":
        jitter = tf.standard(size)
    else:
        jitter = tf.none() if transforms in (None, "none") else transforms
    to_model = model_input(prep)
    optimizer = torch.optim.Adam(image.parameters(), lr=lr)
    trace = []

    def step(number: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        views = [to_model(jitter(picture[None], g)) for picture, g in zip(image(), generators)]  # each its own jitter
        x = torch.cat(views)
        values = objective(run(model, x.contiguous(memory_format=torch.channels_last) if channels_last else x, seen))
        (-values.sum()).backward()
        optimizer.step()
        trace.append(values.detach())
        if progress is not None:
            progress(number + 1, steps, values.detach())

    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)  # gradients for the image only
    try:
        relus = [(m, _redirect) for m in model.modules() if isinstance(m, nn.ReLU)]
        redirected = min(steps, REDIRECT_STEPS) if redirect_relu else 0
        with watching(model, objective.layers) as seen:
            with probing(model, forward=relus, training=None):
                for number in range(redirected):
                    step(number)
            for number in range(redirected, steps):
                step(number)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    with torch.no_grad():
        final = image().cpu()
    return Rendering(final, torch.stack(trace).cpu(), objective.name)
