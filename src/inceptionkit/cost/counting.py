"""What one layer costs, and which layer a failed forward pass died in.

Multiply-adds (MACs) count convolutions and linear layers only:
conv = k_h * k_w * (c_in / groups) * c_out * h_out * w_out, linear = in * out per output row
(biases excluded). Pooling, BatchNorm, activations, concatenation and residual sums are not counted:
they are a few percent of the total and no paper counts them. FLOPs are 2 x MACs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from ..models.net import StageInputError

WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
POOLING = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
           nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
           nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.LPPool2d)


def module_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-adds of one conv or linear layer for one sample, given its output; 0 for anything else."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        spatial = math.prod(output.shape[2:]) if output.dim() > 2 else 1
        kernel = math.prod(module.kernel_size)
        return kernel * (module.in_channels // module.groups) * module.out_channels * spatial
    if isinstance(module, nn.Linear):
        rows = output[0].numel() // module.out_features if output.dim() > 1 else 1
        return module.in_features * module.out_features * rows
    return 0


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


class LayerInputError(ValueError, RuntimeError):
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
    handles = []

    def enter(module, inputs):
        stack.append((names.get(module, "?"), module, _shape_of(inputs)))

    def leave(module, _inputs, _output):
        if stack and stack[-1][1] is module:
            stack.pop()

    for module in names:
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave))
    try:
        yield
    except (RuntimeError, ValueError) as exc:
        if isinstance(exc, (LayerInputError, torch.OutOfMemoryError)) or not stack:
            raise
        name, module, shape = stack[-1]
        where = f"layer {name!r} ({describe(module)})" if name else f"the model ({type(module).__name__})"
        prefix = f"{what}: " if what else ""
        got = f"its input of shape {dims(shape)} (batch first)" if shape else "its input"
        cause = exc.__cause__ if isinstance(exc, StageInputError) and exc.__cause__ else exc  # the innermost says more
        raise LayerInputError(f"{prefix}{where} cannot take {got}: {cause}") from exc
    finally:
        for handle in handles:
            handle.remove()
