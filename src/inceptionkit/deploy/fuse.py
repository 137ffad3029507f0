"""Inference-only rewrites that compute the same function with less work, on a copy of a network:

- :func:`fold_batchnorm`: each conv's BatchNorm folded into its weights and bias (eval statistics);
- :func:`fold_residual_scales`: Inception-ResNet's residual scale folded into the projection;
- :func:`fuse_sibling_convs`: the 1x1 convolutions that start several branches of one module, all
  reading the same input, become one wider 1x1 convolution whose output is split between the
  branches: one pass over the input instead of three (GoogLeNet's and v3's modules, Inception-ResNet's).
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.blocks import BasicConv, Concat, Residual


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Fold every :class:`BasicConv`'s BatchNorm into its convolution (in place); the count folded."""
    folded = 0
    for unit in model.modules():
        if isinstance(unit, BasicConv) and isinstance(unit.bn, nn.BatchNorm2d):
            unit.conv = _folded_conv(unit.conv, unit.bn)
            unit.bn = nn.Identity()
            folded += 1
    return folded


def _folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
    bias = conv.bias * scale + shift if conv.bias is not None else shift
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
    fused.bias.copy_(bias)
    return fused.to(conv.weight.device, conv.weight.dtype)


@torch.no_grad()
def fold_residual_scales(model: nn.Module) -> int:
    """``x + scale * proj(y)`` -> ``x + proj'(y)`` with the scale in the projection; the count folded."""
    folded = 0
    for block in model.modules():
        if isinstance(block, Residual) and block.scale != 1.0:
            block.proj.weight.mul_(block.scale)
            block.proj.bias.mul_(block.scale)
            block.scale = 1.0
            folded += 1
    return folded


def _leading_1x1(branch: nn.Module) -> BasicConv | None:
    """The BasicConv a branch starts with, when it is a plain 1x1/1 convolution without BatchNorm left."""
    first = branch if isinstance(branch, BasicConv) else next(iter(branch.children()), None)
    if not isinstance(first, BasicConv) or not isinstance(first.bn, nn.Identity):
        return None
    conv = first.conv
    plain = (conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding in ((0, 0), "valid")
             and conv.groups == 1 and conv.dilation == (1, 1) and conv.padding_mode == "zeros")
    return first if plain else None


# What each entry of FusedConcat.order indexes: its list of fused branches or of the others.
FUSED, OTHER = 0, 1


class FusedConcat(nn.Module):
    """A :class:`Concat` whose branches starting with a 1x1 convolution share one wider 1x1
    convolution: its output is split, each part continuing through the rest of its branch, and the
    branches are concatenated in their original order."""

    def __init__(self, concat: Concat, fused: list[str]):
        super().__init__()
        branches = dict(concat.named_children())
        heads = [_leading_1x1(branches[name]) for name in fused]
        act = heads[0].act
        first = heads[0].conv
        self.conv = nn.Conv2d(first.in_channels, sum(h.conv.out_channels for h in heads), 1, bias=True)
        with torch.no_grad():
            self.conv.weight.copy_(torch.cat([h.conv.weight for h in heads]))
            self.conv.bias.copy_(torch.cat([h.conv.bias if h.conv.bias is not None
                                            else torch.zeros(h.conv.out_channels) for h in heads]))
        self.conv.to(first.weight.device, first.weight.dtype)
        self.act = act
        self.sizes = [h.conv.out_channels for h in heads]
        self.starts = [sum(self.sizes[:i]) for i in range(len(self.sizes))]
        self.rests = nn.ModuleList(
            nn.Identity() if isinstance(branches[name], BasicConv) else nn.Sequential(*list(branches[name])[1:])
            for name in fused)
        self.others = nn.ModuleList(branch for name, branch in branches.items() if name not in fused)
        # the original order: (FUSED, index into rests) or (OTHER, index into others)
        unfused = [name for name in branches if name not in fused]
        self.order = [(FUSED, fused.index(name)) if name in fused else (OTHER, unfused.index(name))
                      for name in branches]
        self.out_chs = concat.out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        merged = self.act(self.conv(x))  # narrowed, not split: int8 keeps a narrowed part int8 (quantize._quantizer)
        parts = [merged.narrow(1, start, size) for start, size in zip(self.starts, self.sizes)]
        fused = [rest(part) for rest, part in zip(self.rests, parts)]
        others = [branch(x) for branch in self.others]
        return torch.cat([fused[i] if kind == FUSED else others[i] for kind, i in self.order], 1)


def fuse_sibling_convs(model: nn.Module) -> int:
    """Replace (in place) each :class:`Concat` with two or more branches starting with a plain 1x1
    convolution and the same activation by a :class:`FusedConcat`; run after :func:`fold_batchnorm`.
    Returns the number of convolutions merged away."""
    merged = 0
    for parent in reversed(list(model.modules())):  # inner modules first
        for name, child in list(parent.named_children()):
            if type(child).forward is not Concat.forward:
                continue
            fusable = [n for n, b in child.named_children() if _leading_1x1(b) is not None]
            acts = {type(_leading_1x1(b).act) for n, b in child.named_children() if n in fusable}
            if len(fusable) >= 2 and len(acts) == 1:
                setattr(parent, name, FusedConcat(child, fusable))
                merged += len(fusable) - 1
    return merged
