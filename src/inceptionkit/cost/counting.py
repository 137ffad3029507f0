"""What one layer costs: the multiply-add rules.

Multiply-adds (MACs) count convolutions and linear layers only:
conv = k_h * k_w * (c_in / groups) * c_out * h_out * w_out, linear = in * out per output row
(biases excluded). Pooling, BatchNorm, activations, concatenation and residual sums are not counted:
they are a few percent of the total and no paper counts them. FLOPs are 2 x MACs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

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
