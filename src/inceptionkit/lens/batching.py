"""How many channels to render at once on this machine, measured rather than assumed.

Rendering N channels in one batch shares each step's fixed costs; whether that is faster per channel,
and up to which N, depends on the device: on a GPU, large batches fill it until memory runs out; on
a CPU with few cores, a batch of a few channels can be quicker per channel than a large one (its
activations leave the caches); the faster memory layout (channels_last or contiguous) depends on the
kernels. :func:`fastest_batch` times a render step of one channel in both layouts, then 2, 4, ...
channels in the faster one, and keeps the batch whose time per channel is lowest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import BadValue
from ..probe import probing
from .activations import run, watching
from .objectives import channel
from .render import render

MOST = 64  # the largest batch tried
PAST_BEST = 2  # stop after this many batches in a row slower per channel than the best
MEMORY_SHARE = 0.5  # of the memory free when measuring, the most a batch's activations may take


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


def fastest_batch(seconds_per_channel_step: Callable[[int, bool], float], most: int = MOST,
                  fits: Callable[[int], bool] | None = None) -> BatchChoice:
    """Time one channel in both memory layouts and keep the faster, then batches 2, 4, ... and ``most`` in it
    with ``seconds_per_channel_step(batch, channels_last)``; keep the fastest per channel. The doubling
    stops once :data:`PAST_BEST` batches in a row are slower than the best, at the first batch that
    ``fits(batch)`` refuses (:func:`memory_bound`), or when a batch does not fit the GPU's memory."""
    if most < 1:
        raise BadValue(f"the largest batch must be at least 1, got {most}")
    layouts = {last: seconds_per_channel_step(1, last) for last in (False, True)}
    channels_last = min(layouts, key=lambda last: (layouts[last], last))
    timings: dict[int, float] = {1: layouts[channels_last]}
    size, slower = min(2, most + 1), 0
    while size <= most and slower < PAST_BEST and (fits is None or fits(size)):
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

    device = next(model.parameters()).device

    def seconds(batch: int, channels_last: bool = False) -> float:
        marks: list[float] = []

        def mark(done: int, steps: int, values) -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            marks.append(time.perf_counter())

        render(model, channel(layer, [c % channels for c in range(batch)]), steps=steps, size=size, param=param,
               grey=grey, progress=mark, redirect_relu=False, channels_last=channels_last)
        return (marks[-1] - marks[0]) / (steps - 1) / batch

    return seconds


def bytes_per_channel(model: nn.Module, layer: str, input_size: Sequence[int]) -> int:
    """About what one more channel adds to a render batch: three times the outputs of every module that
    runs up to ``layer`` for one image of ``input_size`` (C, H, W): kept for the backward pass, their
    gradients, and room for the kernels' own."""
    device = next(model.parameters()).device
    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * output.element_size()

    leaves = [(m, count) for m in model.modules() if not any(True for _ in m.children())]
    with torch.no_grad(), probing(model, forward=leaves, training=None), watching(model, [layer]) as seen:
        run(model, torch.zeros(1, *input_size, device=device), seen)
    return 3 * total


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` now: CUDA's count; for the CPU, Linux's MemAvailable shared by the processes
    torchrun started on this machine (``LOCAL_WORLD_SIZE``); None where the system does not say."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    meminfo = Path("/proc/meminfo")
    if device.type != "cpu" or not meminfo.exists():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024 // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return None


def memory_bound(model: nn.Module, layer: str, input_size: Sequence[int]) -> Callable[[int], bool] | None:
    """``fits(batch)``: True while a batch's activations (:func:`bytes_per_channel`) stay within
    :data:`MEMORY_SHARE` of the device's free memory; None where the free memory is unknown."""
    free = free_memory(next(model.parameters()).device)
    if free is None:
        return None
    per_channel = bytes_per_channel(model, layer, input_size)
    return lambda batch: batch * per_channel <= MEMORY_SHARE * free
