"""Run any nn.Module once and watch it: hooks on chosen modules in a chosen mode, and the layer a
failed forward pass died in.

Cost (summary, layer graph) and the lens (activations, feature visualization) probe models this way;
nothing here imports either of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar

import torch
from torch import nn

from .errors import BadValue

Hooks = Iterable[tuple[nn.Module, Callable]]
_locating: ContextVar[bool] = ContextVar("locating", default=False)


@contextlib.contextmanager
def probing(model: nn.Module, forward: Hooks = (), pre: Hooks = (), training: bool | None = False) -> Iterator[None]:
    """Within the block, ``model`` has the given forward hooks and forward pre-hooks ((module, hook) pairs)
    and runs in eval mode, in train mode with ``training=True``, or as it is with ``training=None``.

    Afterwards, also when the block raises, the hooks are removed and the mode restored; after train
    mode the model's buffers (BatchNorm statistics) are put back as they were.
    """
    was_training = model.training
    saved = [(b, b.clone()) for b in model.buffers()] if training else []
    handles = [module.register_forward_pre_hook(hook) for module, hook in pre]
    try:
        handles += [module.register_forward_hook(hook) for module, hook in forward]
        if training is not None:
            model.train(training)
        yield
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def sample_input(model: nn.Module, input_size, batch_size: int = 1) -> torch.Tensor:
    """Zeros of ``(batch_size, *input_size)`` on the model's device, in its floating dtype."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    device, dtype = (param.device, param.dtype) if param is not None else (torch.device("cpu"), torch.float32)
    return torch.zeros(batch_size, *input_size, device=device, dtype=dtype)


def dims(shape) -> str:
    """(3, 224, 224) -> '3x224x224'."""
    return "x".join(str(int(d)) for d in shape)


def describe(module: nn.Module) -> str:
    """A short layer description: 'Conv2d 3x3/2 192->384', 'MaxPool2d 3x3/2', 'Linear 1536->1000'."""
    kind = type(module).__name__
    conv = module if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) else getattr(module, "conv", None)
    if isinstance(conv, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return f"{kind} {dims(conv.kernel_size)}/{conv.stride[0]} {conv.in_channels}->{conv.out_channels}"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k, s = module.kernel_size, module.stride
        k = k if isinstance(k, tuple) else (k, k)
        return f"{kind} {dims(k)}/{s if isinstance(s, int) else s[0]}"
    if isinstance(module, nn.Linear):
        return f"{kind} {module.in_features}->{module.out_features}"
    return kind


class LayerInputError(BadValue, RuntimeError):
    """A layer could not take the tensor it was given; the message names the layer and the shape.

    It is both a ValueError (bad input) and a RuntimeError (what PyTorch raised), so code catching
    either keeps working.
    """


def _shape_of(inputs) -> tuple[int, ...] | None:
    for item in inputs if isinstance(inputs, (tuple, list)) else (inputs,):
        if isinstance(item, torch.Tensor):
            return tuple(item.shape)
    return None


@contextlib.contextmanager
def locate_failure(model: nn.Module, what: str = "") -> Iterator[None]:
    """Within the block, an error in a forward pass of ``model`` names the innermost layer that failed.

    The error becomes a LayerInputError: "<what>: layer 'reduction_b.branch1.1' (Conv2d 3x3/2 192->192)
    cannot take its input of shape 1x192x1x1 (batch first): <PyTorch's message>".
    """
    stack: list[tuple[str, nn.Module, tuple[int, ...] | None]] = []
    names = {m: n for n, m in model.named_modules()}

    def enter(module, inputs):
        stack.append((names.get(module, "?"), module, _shape_of(inputs)))

    def leave(module, _inputs, _output):
        if stack and stack[-1][1] is module:
            stack.pop()

    token = _locating.set(True)
    try:
        with probing(model, forward=[(m, leave) for m in names], pre=[(m, enter) for m in names], training=None):
            yield
    except (RuntimeError, ValueError) as exc:
        if isinstance(exc, (LayerInputError, torch.OutOfMemoryError)) or not stack:
            raise
        name, module, shape = stack[-1]
        where = f"layer {name!r} ({describe(module)})" if name else f"the model ({type(module).__name__})"
        prefix = f"{what}: " if what else ""
        got = f"its input of shape {dims(shape)} (batch first)" if shape else "its input"
        raise LayerInputError(f"{prefix}{where} cannot take {got}: {exc}") from exc
    finally:
        _locating.reset(token)


def locating() -> bool:
    """True inside :func:`locate_failure`: a network's own up-front input check stands aside there, so
    that the layer that fails is named."""
    return _locating.get()
