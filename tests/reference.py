"""Helpers to compare our networks with torchvision's and timm's, output for output."""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def recalibrate_bn(model: nn.Module, input_size: tuple[int, int, int], batches: int = 3, batch_size: int = 4) -> None:
    """Re-estimate BatchNorm running statistics on random batches.

    Default initialisation makes eval outputs of deep nets nearly input-independent (activations
    vanish or explode through running stats of mean 0 / var 1); with statistics measured on real
    activations, every layer passes a signal and a wrong wiring shows in the outputs.
    """
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
    model.train()
    gen = torch.Generator().manual_seed(1)
    for _ in range(batches):
        model(torch.randn(batch_size, *input_size, generator=gen))
    model.eval()


def relative_diff(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """max |ours - ref| / max |ref|."""
    return ((ours - ref).abs().max() / ref.abs().max()).item()


def assert_input_dependent(out: torch.Tensor, min_ratio: float = 1e-3) -> None:
    """The outputs for different inputs of a batch must differ (a dead network would pass equality)."""
    spread = (out[0] - out[1]).abs().max()
    scale = out.abs().max()
    assert spread > min_ratio * scale, f"outputs barely depend on the input: spread {spread:.3g}, scale {scale:.3g}"


def disable_dropout(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
