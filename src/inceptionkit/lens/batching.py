"""How many channels to render at once on this machine, measured rather than assumed.

Rendering N channels in one batch shares each step's fixed costs; whether that is faster per channel,
and up to which N, depends on the device: on a GPU, large batches fill it until memory runs out; on
a CPU with few cores, a batch of a few channels can be quicker per channel than a large one (its
activations leave the caches). :func:`fastest_batch` times a render step at 1, 2, 4, ... channels and
keeps the batch whose time per channel is lowest.
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
    """The batch kept (``size`` channels at once), its seconds per channel and step, and every batch timed."""

    size: int
    seconds_per_channel_step: float
    timings: dict[int, float]

    def describe(self) -> str:
        tried = ", ".join(f"{b}: {1000 * t:.0f} ms" for b, t in self.timings.items())
        return f"{self.size} channels at once ({tried} a channel and step)"


def fastest_batch(seconds_per_channel_step: Callable[[int], float], most: int = MOST) -> BatchChoice:
    """Time batches 1, 2, 4, ... and ``most`` with ``seconds_per_channel_step(batch)`` and keep the fastest
    per channel. The doubling stops once :data:`PAST_BEST` batches in a row are slower than the best, or
    when a batch does not fit the device's memory."""
    if most < 1:
        raise BadValue(f"the largest batch must be at least 1, got {most}")
    timings: dict[int, float] = {}
    size, slower = 1, 0
    while size <= most and slower < PAST_BEST:
        try:
            seconds = seconds_per_channel_step(size)
        except torch.OutOfMemoryError:
            if not timings:
                raise
            torch.cuda.empty_cache()
            break
        best = min(timings.values(), default=float("inf"))
        slower = slower + 1 if seconds >= best else 0
        timings[size] = seconds
        size = min(2 * size, most) if size < most else most + 1  # ... and ``most`` itself
    best = min(timings, key=lambda b: (timings[b], b))
    return BatchChoice(best, timings[best], timings)


def render_step_time(model: nn.Module, layer: str, channels: int, size: int | None = None, param: str = "fourier",
                     grey: bool = False) -> Callable[[int], float]:
    """``seconds(batch)``: one render step of ``batch`` channels of ``layer`` (which has ``channels``) per
    channel, timed on the second of two steps (the first allocates)."""
    def seconds(batch: int) -> float:
        marks: list[float] = []
        device = next(model.parameters()).device

        def mark(done: int, steps: int, values) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            marks.append(time.perf_counter())

        render(model, channel(layer, [c % channels for c in range(batch)]), steps=2, size=size, param=param,
               grey=grey, progress=mark)
        return (marks[1] - marks[0]) / batch

    return seconds
