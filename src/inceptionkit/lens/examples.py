"""Dataset examples: for chosen channels of a layer, the images of a data set that excite them most,
and the patch around the most excited position, as large as the unit's receptive field.

One streamed pass over the data in batches; each channel keeps a heap of its ``k`` best (score,
image index, position), so memory does not grow with the data set. The receptive field is
measured on the network itself: the input pixels whose gradient reaches the centre unit.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..errors import BadValue
from .activations import run, watching


@dataclass(frozen=True)
class Example:
    """One of a channel's best images: its index in the data set, its score, and the box
    ``(top, left, height, width)`` in input pixels around the most excited position."""

    index: int
    score: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class ReceptiveField:
    """Where a layer's units look: the centre unit's box in the input, and the step between units."""

    centre: tuple[int, int]  # the unit measured (row, column) in the layer
    box: tuple[int, int, int, int]  # its (top, left, height, width) in the input
    stride: tuple[float, float]  # input pixels per unit step

    def of(self, row: int, col: int, input_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        """The box of the unit at (row, col), moved from the centre's by the stride, kept inside the input."""
        top = round(self.box[0] + (row - self.centre[0]) * self.stride[0])
        left = round(self.box[1] + (col - self.centre[1]) * self.stride[1])
        height, width = min(self.box[2], input_hw[0]), min(self.box[3], input_hw[1])
        top = max(0, min(top, input_hw[0] - height))
        left = max(0, min(left, input_hw[1] - width))
        return top, left, height, width


def receptive_field(model: nn.Module, layer: str, input_size: Sequence[int], trials: int = 4) -> ReceptiveField:
    """Measure ``layer``'s receptive field: the bounding box of input pixels with a nonzero gradient
    of the centre unit (summed over channels), over a few random inputs so that no ReLU hides a path."""
    device = next(model.parameters()).device
    reach = torch.zeros(tuple(input_size[1:]), device=device)
    generator = torch.Generator().manual_seed(0)
    with torch.enable_grad(), watching(model, [layer]) as seen:
        for _ in range(trials):
            x = torch.randn(1, *input_size, generator=generator).to(device).requires_grad_(True)
            out = run(model, x, seen)[layer]
            rows, cols = out.shape[-2:]
            (grad,) = torch.autograd.grad(out[0, :, rows // 2, cols // 2].sum(), x)  # the input's only
            reach += grad[0].abs().sum(0)
    hit = reach.nonzero()
    top, left = (int(v) for v in hit.min(0).values)
    bottom, right = (int(v) for v in hit.max(0).values)
    stride = (input_size[1] / rows, input_size[2] / cols)
    return ReceptiveField((rows // 2, cols // 2), (top, left, bottom - top + 1, right - left + 1), stride)


def _scores(act: torch.Tensor, channels: Sequence[int], reduce: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel: the score (max or mean over positions) and the flat index of the maximum."""
    picked = act[:, list(channels)].flatten(2)
    best, where = picked.max(dim=2)
    return (best if reduce == "max" else picked.mean(dim=2)), where


@torch.no_grad()
def top_examples(
    model: nn.Module,
    dataset,
    layer: str,
    channels: Sequence[int],
    k: int = 9,
    reduce: str = "max",
    crop: bool = True,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> dict[int, list[Example]]:
    """``{channel: its k best examples, best first}`` over ``dataset`` (items ``(input tensor, label)`` or
    input tensors, already in the model's input form). ``reduce``: "max" (the most excited position)
    or "mean" (the whole map); with ``crop``, boxes are the receptive field around the maximum,
    otherwise the whole image. ``progress(images done, images)`` after each batch."""
    return top_examples_of_layers(model, dataset, {layer: channels}, k, reduce, crop, batch_size,
                                  progress).get(layer, {})


@torch.no_grad()
def top_examples_of_layers(
    model: nn.Module,
    dataset,
    wanted: dict[str, Sequence[int]],
    k: int = 9,
    reduce: str = "max",
    crop: bool = True,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
    share: tuple[int, int] = (0, 1),
) -> dict[str, dict[int, list[Example]]]:
    """:func:`top_examples` for several layers (``{layer: channels}``) in one pass over the data: one
    forward per batch, every layer's heaps updated from it; ``{layer: {channel: examples}}``.
    ``progress(images done, images)`` after each batch.

    ``share=(rank, ranks)`` reads only every ``ranks``-th batch from the ``rank``-th on, one process's
    part of a sharded pass; indices stay the data set's, and :func:`merge_examples` of every rank's
    result equals the whole pass (each batch holds the same images as in one process)."""
    rank, ranks = share
    if not 0 <= rank < ranks:
        raise BadValue(f"share must be (rank, ranks) with 0 <= rank < ranks, got {share}")
    if reduce not in ("max", "mean"):
        raise BadValue(f"reduce must be 'max' or 'mean', got {reduce!r}")
    if k < 1:
        raise BadValue(f"k must be at least 1, got {k}")
    wanted = {layer: list(channels) for layer, channels in wanted.items() if len(channels)}
    if not wanted:
        return {}
    device = next(model.parameters()).device
    if not len(dataset):
        raise BadValue("the data set is empty")
    heaps = {layer: {c: [] for c in channels} for layer, channels in wanted.items()}
    shapes: dict[str, tuple[int, int]] = {}
    starts = range(rank * batch_size, len(dataset), ranks * batch_size)  # this share's batches
    batches = [range(first, min(first + batch_size, len(dataset))) for first in starts]
    mine, done, was_training = sum(map(len, batches)), 0, model.training
    if not batches:
        return {layer: {c: [] for c in channels} for layer, channels in wanted.items()}
    model.eval()
    try:
        with watching(model, list(wanted)) as seen:
            for indices, batch in zip(batches, DataLoader(dataset, batch_sampler=batches)):
                seen_index = indices[0]
                x = batch[0] if isinstance(batch, (list, tuple)) else batch
                outputs = run(model, x.to(device), seen)
                input_hw = tuple(x.shape[-2:])
                for layer, channels in wanted.items():
                    act = outputs[layer]
                    if act.dim() == 2:
                        act = act[:, :, None, None]
                    if max(channels) >= act.shape[1] or min(channels) < 0:
                        raise BadValue(f"{layer} has channels 0-{act.shape[1] - 1}; asked for {channels}")
                    shapes[layer] = act.shape[-2:]
                    scores, where = _scores(act, channels, reduce)
                    for i in range(x.shape[0]):
                        for j, c in enumerate(channels):
                            entry = (float(scores[i, j]), -(seen_index + i), int(where[i, j]))
                            (heapq.heappush if len(heaps[layer][c]) < k else heapq.heappushpop)(heaps[layer][c], entry)
                done += x.shape[0]
                if progress is not None:
                    progress(done, mine)
    finally:
        model.train(was_training)
    found = {}
    for layer, layer_heaps in heaps.items():
        shape = shapes[layer]
        field = receptive_field(model, layer, (x.shape[1], *input_hw)) if crop and shape[-1] > 1 else None
        found[layer] = {}
        for c, heap in layer_heaps.items():
            examples = []
            for score, negative_index, flat in sorted(heap, reverse=True):
                row, col = divmod(flat, shape[-1])
                box = field.of(row, col, input_hw) if field is not None else (0, 0, *input_hw)
                examples.append(Example(-negative_index, score, box))
            found[layer][c] = examples
    return found


def merge_examples(parts: Sequence[dict[str, dict[int, list[Example]]]], k: int) -> dict[str, dict[int, list[Example]]]:
    """One result from the results of the shares of a sharded pass (:func:`top_examples_of_layers` with
    ``share``): each channel's ``k`` best of all, best first, ties to the lower index as in one pass."""
    merged: dict[str, dict[int, list[Example]]] = {}
    for part in parts:
        for layer, by_channel in part.items():
            for c, examples in by_channel.items():
                merged.setdefault(layer, {}).setdefault(c, []).extend(examples)
    return {layer: {c: sorted(examples, key=lambda e: (-e.score, e.index))[:k] for c, examples in by_channel.items()}
            for layer, by_channel in merged.items()}


CONTEXT_SIDE = 96  # pixels: an image shown whole, around a small box, is scaled up to about this side
OUTLINE = (1.0, 0.55, 0.0)  # the box's colour (orange) on an image shown whole


def example_crops(dataset, found: dict[int, list[Example]], mean: Sequence[float], std: Sequence[float],
                  size: tuple[int, int] | None = None, context: str = "auto") -> dict[int, list[torch.Tensor]]:
    """Each example as a picture in [0, 1], per channel, from ``dataset``'s images (normalized with
    ``mean``, ``std``).

    ``context``: "never" cuts the box out, resized (nearest) to ``size`` (default: the largest box);
    "always" shows the whole image, scaled up (nearest) to about :data:`CONTEXT_SIDE` pixels, with the
    box outlined in orange, so that a unit of an early layer, which sees a few pixels, is shown where
    it looked; "auto" does that when the boxes cover less than a quarter of the image.
    """
    if context not in ("auto", "always", "never"):
        raise BadValue(f"context must be 'auto', 'always' or 'never', got {context!r}")
    mean_ = torch.tensor(mean).reshape(-1, 1, 1)
    std_ = torch.tensor(std).reshape(-1, 1, 1)
    every = [example for examples in found.values() for example in examples]
    if not every:
        return {c: [] for c in found}
    whole = _image(dataset, every[0].index, mean_, std_)
    image_area = whole.shape[-2] * whole.shape[-1]
    if context == "always" or (context == "auto" and max(e.box[2] * e.box[3] for e in every) * 4 < image_area):
        return {c: [_outlined(_image(dataset, e.index, mean_, std_), e.box) for e in examples]
                for c, examples in found.items()}
    crops = {}
    for c, examples in found.items():
        crops[c] = []
        for example in examples:
            top, left, height, width = example.box
            crops[c].append(_image(dataset, example.index, mean_, std_)[:, top:top + height, left:left + width])
    tiles = [t for ts in crops.values() for t in ts]
    size = size or (max(t.shape[-2] for t in tiles), max(t.shape[-1] for t in tiles))
    return {c: [torch.nn.functional.interpolate(t[None], size=size, mode="nearest")[0] for t in ts]
            for c, ts in crops.items()}


def _image(dataset, index: int, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (dataset[index][0] * std + mean).clamp(0, 1)


def _outlined(image: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    """``image`` (C x H x W) scaled up by a whole factor to about :data:`CONTEXT_SIDE`, in colour, with an
    orange outline (as thick as one input pixel, at least 2) just outside ``box``."""
    scale = max(1, round(CONTEXT_SIDE / max(image.shape[-2:])))
    t = max(2, scale)
    big = torch.nn.functional.interpolate(image[None], scale_factor=scale, mode="nearest")[0]
    big = big.expand(3, -1, -1).clone() if big.shape[0] == 1 else big.clone()
    top, left, height, width = (v * scale for v in box)
    bottom, right = top + height, left + width
    colour = torch.tensor(OUTLINE).reshape(3, 1, 1)
    h, w = big.shape[-2:]
    for r0, r1, c0, c1 in ((top - t, top, left - t, right + t), (bottom, bottom + t, left - t, right + t),
                           (top - t, bottom + t, left - t, left), (top - t, bottom + t, right, right + t)):
        r0, r1, c0, c1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
        if r0 < r1 and c0 < c1:
            big[:, r0:r1, c0:c1] = colour
    return big
