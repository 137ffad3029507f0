"""What to maximize: objectives on a network's activations that add, subtract and scale.

An :class:`Objective` maps the activations it asked for (``{layer name: B x C x H x W}``) to one
value per image, shape ``(B,)``, higher is better. ``channel("inception4a", 97) - 0.5 *
channel("inception4a", 12)`` is an objective too. A sequence of channels renders one image each:
``channel("inception4a", range(16))`` on a batch of 16.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

from ..errors import BadArgument, BadValue

Activations = Mapping[str, torch.Tensor]


class Objective:
    """A function of activations giving one value per image; ``layers`` are the modules it reads."""

    def __init__(self, fn: Callable[[Activations], torch.Tensor], layers: Sequence[str], name: str,
                 batch: int | None = None, units: Sequence[tuple[str, int]] | None = None):
        self.fn, self.layers, self.name = fn, tuple(dict.fromkeys(layers)), name
        self.batch = batch  # images it is meant for (one per channel of a channel list), None: any
        # image i's unit (layer, channel): it seeds that image alone, whatever batch it is rendered in
        self.units = tuple(units) if units is not None else None

    def __call__(self, activations: Activations) -> torch.Tensor:
        return self.fn(activations)

    def __add__(self, other: Objective | float) -> Objective:
        if not isinstance(other, Objective):
            return Objective(lambda a: self(a) + other, self.layers, f"{self.name} + {other}", self.batch)
        return Objective(lambda a: self(a) + other(a), self.layers + other.layers, f"{self.name} + {other.name}",
                         self.batch or other.batch)

    __radd__ = __add__

    def __neg__(self) -> Objective:
        return Objective(lambda a: -self(a), self.layers, f"-({self.name})", self.batch)

    def __sub__(self, other: Objective | float) -> Objective:
        return self + (-other)

    def __rsub__(self, other: float) -> Objective:
        return (-self) + other

    def __mul__(self, factor: float) -> Objective:
        if isinstance(factor, Objective):
            raise BadArgument("objectives scale by numbers; multiply two objectives' values in your own Objective")
        return Objective(lambda a: self(a) * factor, self.layers, f"{factor} * {self.name}", self.batch)

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> Objective:
        return self * (1.0 / divisor)

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _channel_index(channels: int | Sequence[int], batch: int) -> torch.Tensor:
    picked = [channels] * batch if isinstance(channels, int) else list(channels)
    if len(picked) != batch:
        raise BadValue(f"{len(picked)} channels for a batch of {batch} images: give one channel per image")
    return torch.tensor(picked)


def _layer(activations: Activations, layer: str) -> torch.Tensor:
    x = activations[layer]
    if x.dim() == 2:  # a linear layer: channels without positions
        x = x[:, :, None, None]
    return x


def channel(layer: str, index: int | Sequence[int]) -> Objective:
    """Mean activation of channel ``index`` of ``layer`` over its positions; a sequence: image i takes ``index[i]``."""
    def fn(a: Activations) -> torch.Tensor:
        x = _layer(a, layer)
        picked = _channel_index(index, x.shape[0]).to(x.device)
        _check_channels(layer, x, picked)
        return x[torch.arange(x.shape[0], device=x.device), picked].mean(dim=(1, 2))
    return Objective(fn, [layer], f"channel({layer}, {_short(index)})", _batch(index), _units(layer, index))


def neuron(layer: str, index: int | Sequence[int], x: int | None = None, y: int | None = None) -> Objective:
    """Channel ``index`` of ``layer`` at one position (the centre unless ``x``, ``y`` are given)."""
    def fn(a: Activations) -> torch.Tensor:
        act = _layer(a, layer)
        picked = _channel_index(index, act.shape[0]).to(act.device)
        _check_channels(layer, act, picked)
        row = act.shape[2] // 2 if y is None else y
        col = act.shape[3] // 2 if x is None else x
        if not (0 <= row < act.shape[2] and 0 <= col < act.shape[3]):
            raise BadValue(f"neuron ({col}, {row}) is outside {layer}'s {act.shape[3]}x{act.shape[2]} positions")
        return act[torch.arange(act.shape[0], device=act.device), picked, row, col]
    where = "centre" if x is None and y is None else f"{x}, {y}"
    return Objective(fn, [layer], f"neuron({layer}, {_short(index)}, {where})", _batch(index), _units(layer, index))


def layer(name: str) -> Objective:
    """DeepDream's objective: the mean square of every activation of the layer (its L2, per element)."""
    return Objective(lambda a: _layer(a, name).pow(2).mean(dim=(1, 2, 3)), [name], f"layer({name})")


def direction(layer: str, vector: torch.Tensor) -> Objective:
    """Mean cosine similarity between each position's activation vector and ``vector`` (C values)."""
    def fn(a: Activations) -> torch.Tensor:
        x = _layer(a, layer)
        v = torch.as_tensor(vector, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
        if v.shape[1] != x.shape[1]:
            raise BadValue(f"direction has {v.shape[1]} values but {layer} has {x.shape[1]} channels")
        return torch.nn.functional.cosine_similarity(x, v, dim=1).mean(dim=(1, 2))
    return Objective(fn, [layer], f"direction({layer})")


def diversity(layer: str) -> Objective:
    """Minus the mean cosine similarity of each image's Gram matrix with the others' (Lucid's):
    added to a batch objective, it pushes the images apart."""
    def fn(a: Activations) -> torch.Tensor:
        x = _layer(a, layer)
        batch = x.shape[0]
        flat = x.flatten(2)
        gram = torch.nn.functional.normalize(torch.bmm(flat, flat.transpose(1, 2)).flatten(1), dim=1)
        similarity = gram @ gram.T
        if batch < 2:
            return torch.zeros(batch, device=x.device)
        return -(similarity.sum(1) - similarity.diagonal()) / (batch - 1)
    return Objective(fn, [layer], f"diversity({layer})")


def as_objective(spec: Objective | str) -> Objective:
    """An Objective, or a string: "layer" (DeepDream's) or "layer:channel"."""
    if isinstance(spec, Objective):
        return spec
    name, _, index = str(spec).rpartition(":")
    if name and index.isdigit():
        return channel(name, int(index))
    return layer(str(spec))


def _check_channels(layer: str, x: torch.Tensor, picked: torch.Tensor) -> None:
    if int(picked.max()) >= x.shape[1] or int(picked.min()) < 0:
        raise BadValue(f"{layer} has channels 0-{x.shape[1] - 1}; asked for {picked.tolist()}")


def _batch(index) -> int | None:
    return None if isinstance(index, int) else len(list(index))


def _units(layer: str, index) -> list[tuple[str, int]]:
    return [(layer, int(c)) for c in ([index] if isinstance(index, int) else index)]


def _short(index) -> str:
    if isinstance(index, int):
        return str(index)
    values = list(index)
    if len(values) > 2 and values == list(range(values[0], values[0] + len(values))):
        return f"{values[0]}-{values[-1]}"
    return ",".join(map(str, values))
