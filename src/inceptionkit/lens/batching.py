"""How many channels to render at once on this machine, measured rather than assumed.

Rendering N channels in one batch shares each step's fixed costs; whether that is faster per channel,
and up to which N, depends on the device: on a GPU, large batches fill it until memory runs out; on
a CPU with few cores, a batch of a few channels can be quicker per channel than a large one (its
activations leave the caches); the faster memory layout (channels_last or contiguous) depends on the
kernels. :func:`fastest_batch` times a render step of one channel in both layouts, then 2, 4, ...
channels in the faster one, and keeps the batch whose time per channel is lowest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import BadValue
from .objectives import channel
from .render import render

MOST = 64  # the largest batch tried
PAST_BEST = 2  # stop after this many batches in a row slower per channel than the best


@dataclass(frozen=True)
class BatchChoice:
    """The batch kept (``size`` channels at once, in the ``channels_last`` layout or not), its seconds per
    channel and step, and the batches timed in that layout."""

    size: int
    seconds_per_channel_step: float
    timings: dict[int, float]
    channels_last: bool = False

    def describe(self) -> str:
        tried = ", ".join(f"{b}: {1000 * t:.0f} ms" for b, t in self.timings.items())
        layout = "channels_last" if self.channels_last else "contiguous"
        return f"{self.size} channels at once, {layout} ({tried} a channel and step)"


def fastest_batch(seconds_per_channel_step: Callable[[int, bool], float], most: int = MOST) -> BatchChoice:
    """Time one channel in both memory layouts and keep the faster, then batches 2, 4, ... and ``most`` in it
    with ``seconds_per_channel_step(batch, channels_last)``; keep the fastest per channel. The doubling
    stops once :data:`PAST_BEST` batches in a row are slower than the best, or when a batch does not fit
    the device's memory."""
    if most < 1:
        raise BadValue(f"the largest batch must be at least 1, got {most}")
    layouts = {last: seconds_per_channel_step(1, last) for last in (False, True)}
    channels_last = min(layouts, key=lambda last: (layouts[last], last))
    timings: dict[int, float] = {1: layouts[channels_last]}
    size, slower = min(2, most + 1), 0
    while size <= most and slower < PAST_BEST:
        try:
            seconds = seconds_per_channel_step(size, channels_last)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            break
        slower = slower + 1 if seconds >= min(timings.values()) else 0
        timings[size] = seconds
        size = min(2 * size, most) if size < most else most + 1  # ... and ``most`` itself
    best = min(timings, key=lambda b: (timings[b], b))
    return BatchChoice(best, timings[best], timings, channels_last)


def render_step_time(model: nn.Module, layer: str, channels: int, size: int | None = None, param: str = "fourier",
                     grey: bool = False, steps: int = 2) -> Callable[[int, bool], float]:
    """``seconds(batch, channels_last)``: one render step of ``batch`` channels of ``layer`` (which has
    ``channels``) per channel, timed over ``steps`` steps but the first (which allocates), without the
    redirected ReLU of a render's first steps (what most of a long render's steps cost)."""
    if steps < 2:
        raise BadValue(f"timing needs at least 2 steps (the first is not timed), got {steps}")

    def seconds(batch: int, channels_last: bool = False) -> float:
        marks: list[float] = []
        device = next(model.parameters()).device

        def mark(done: int, steps: int, values) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            marks.append(time.perf_counter())

        render(model, channel(layer, [c % channels for c in range(batch)]), steps=steps, size=size, param=param,
               grey=grey, progress=mark, redirect_relu=False, channels_last=channels_last)
        return (marks[-1] - marks[0]) / (steps - 1) / batch

    return seconds
