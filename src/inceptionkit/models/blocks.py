"""The few parameterized pieces every Inception network is made of.

A network is configured from these with the paper's numbers: a conv unit (conv, optional BN,
ReLU), branches of conv sequences run on the same input and concatenated along channels, a pool
branch, and a residual wrapper with a scale. Family-specific modules (GoogLeNet's module, v3's
factorized modules, v4's stem ...) live in the family files and are built from these.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from ..errors import BadArgument, BadValue

Padding = int | tuple[int, int] | str


def check_channels(**values: int) -> None:
    """Raise ValueError naming the first argument that is not a positive integer."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise BadValue(f"{name} must be a positive integer number of channels, got {value!r}")


def check_scale(name: str, value: float) -> None:
    """Raise ValueError unless 0 < value <= 1 (residual scales, width multipliers)."""
    if not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
        raise BadValue(f"{name} must be in (0, 1], got {value!r}")


def check_odd_kernel(name: str, value: int) -> None:
    """Raise ValueError naming ``name`` unless it is an odd positive kernel size ("same" padding needs one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 2 == 0:
        raise BadValue(f"{name} must be an odd positive kernel size ('same' padding needs one), got {value!r}")


def check_widths(name: str, widths: Sequence[int], length: int) -> tuple[int, ...]:
    """Raise ValueError naming ``name`` unless ``widths`` is ``length`` positive channel counts."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence) or len(widths) != length:
        raise BadValue(f"{name} must be a sequence of {length} channel counts, got {widths!r}")
    for width in widths:
        check_channels(**{name: width})
    return tuple(widths)


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in pair):
        raise BadValue(f"{name} must be a positive int or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]


def same_padding(kernel_size: int | Sequence[int]) -> tuple[int, int]:
    """Padding that keeps the spatial size at stride 1; needs an odd kernel in each dimension."""
    kh, kw = _pair(kernel_size, "kernel_size")
    if kh % 2 == 0 or kw % 2 == 0:
        raise BadValue(f"kernel_size {(kh, kw)} has an even side: 'same' padding needs odd kernels")
    return kh // 2, kw // 2


class BasicConv(nn.Module):
    """Convolution, then BatchNorm, then ReLU: the unit of every Inception network.

    ``padding`` is "same" (odd kernels; keeps the size at stride 1), "valid" (no padding) or
    explicit. ``bias`` defaults to ``not bn``. ``act=False`` gives a linear conv.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: Padding = "same",
        *,
        bn: bool = True,
        bias: bool | None = None,
        eps: float = 1e-3,
        act: bool = True,
    ):
        super().__init__()
        check_channels(in_chs=in_chs, out_chs=out_chs)
        kernel = _pair(kernel_size, "kernel_size")
        stride = _pair(stride, "stride")
        if padding == "same":
            padding = same_padding(kernel)
        elif padding == "valid":
            padding = (0, 0)
        elif isinstance(padding, str):
            raise BadValue(f"padding must be 'same', 'valid' or integers, got {padding!r}")
        self.in_chs, self.out_chs = in_chs, out_chs
        self.conv = nn.Conv2d(in_chs, out_chs, kernel, stride, padding, bias=(not bn) if bias is None else bias)
        self.bn = nn.BatchNorm2d(out_chs, eps=eps) if bn else nn.Identity()
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Branch(nn.Sequential):
    """A sequence of layers on one input; ``out_chs`` says how many channels it yields."""

    def __init__(self, layers: Mapping[str, nn.Module] | Sequence[nn.Module], out_chs: int):
        if isinstance(layers, Mapping):
            super().__init__(OrderedDict(layers))
        else:
            super().__init__(*layers)
        self.out_chs = out_chs


def conv_branch(in_chs: int, *convs: tuple, **conv_kw) -> Branch:
    """Stack of BasicConv units, each given as (out_chs, kernel[, stride[, padding]]).

    ``conv_branch(192, (96, 1), (128, 3))`` is GoogLeNet's 3x3 branch: a 1x1 reduce to 96, then a
    3x3 to 128. Keyword arguments (bn, bias, eps) go to every unit.
    """
    if not convs:
        raise BadValue("conv_branch needs at least one (out_chs, kernel) pair")
    layers, chs = [], in_chs
    for spec in convs:
        out_chs, kernel, *rest = spec
        stride = rest[0] if rest else 1
        padding = rest[1] if len(rest) > 1 else "same"
        layers.append(BasicConv(chs, out_chs, kernel, stride, padding, **conv_kw))
        chs = out_chs
    return Branch(layers, chs)


def pool_branch(
    in_chs: int,
    kind: str = "max",
    kernel_size: int = 3,
    stride: int = 1,
    padding: int = 1,
    *,
    proj: int | None = None,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    **conv_kw,
) -> Branch:
    """Pooling, optionally followed by a 1x1 "pool proj" conv; without proj the input passes through."""
    check_channels(in_chs=in_chs)
    if kind == "max":
        pool = nn.MaxPool2d(kernel_size, stride, padding, ceil_mode=ceil_mode)
    elif kind == "avg":
        pool = nn.AvgPool2d(kernel_size, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    else:
        raise BadValue(f"pool kind must be 'max' or 'avg', got {kind!r}")
    if proj is None:
        return Branch([pool], in_chs)
    check_channels(pool_proj=proj)
    return Branch([pool, BasicConv(in_chs, proj, 1, **conv_kw)], proj)


def out_channels(module: nn.Module) -> int:
    """Channels a block yields, read from its ``out_chs`` attribute."""
    if not hasattr(module, "out_chs"):
        raise BadArgument(f"{type(module).__name__} does not declare out_chs")
    return module.out_chs


def expanded_bank(in_chs: int, out_chs: int, **conv_kw) -> "Concat":
    """The expanded filter bank (v3 Figure 7): a 1x3 and a 3x1 conv side by side, 2 * out_chs channels."""
    return Concat({
        "branch1": BasicConv(in_chs, out_chs, (1, 3), **conv_kw),
        "branch2": BasicConv(in_chs, out_chs, (3, 1), **conv_kw),
    })


class Concat(nn.Module):
    """Parallel branches on the same input, concatenated along channels in the given order."""

    def __init__(self, branches: Mapping[str, nn.Module]):
        super().__init__()
        if not branches:
            raise BadValue("Concat needs at least one branch")
        for name, branch in branches.items():
            self.add_module(name, branch)
        self.out_chs = sum(out_channels(b) for b in branches.values())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [branch(x) for branch in self.children()]
        if not torch.jit.is_scripting():
            self._check_sizes(x, outs)
        return torch.cat(outs, 1)

    @torch.jit.unused
    def _check_sizes(self, x: torch.Tensor, outs: list[torch.Tensor]) -> None:
        """Name every branch's output when they disagree in size (torch.cat alone names none)."""
        if running_eagerly(x) and len({tuple(o.shape[2:]) for o in outs}) > 1:
            shapes = ", ".join(f"{name}: {tuple(o.shape[1:])}" for (name, _), o in zip(self.named_children(), outs))
            raise BadValue(
                f"{type(self).__name__} branches disagree in spatial size on input {tuple(x.shape[1:])} "
                f"and cannot be concatenated: {shapes}"
            )


class Residual(nn.Module):
    """Inception-ResNet unit: ``act(x + scale * proj(branches(x)))``.

    ``proj`` is a linear 1x1 convolution with bias (no BN, no activation) that restores the input
    width so the sum is possible; ``activate=False`` drops the ReLU after the sum.
    """

    def __init__(self, branches: Concat, out_chs: int, scale: float = 1.0, activate: bool = True):
        super().__init__()
        check_channels(out_chs=out_chs)
        check_scale("scale", scale)
        self.branches = branches
        self.proj = nn.Conv2d(branches.out_chs, out_chs, 1, bias=True)
        self.scale = float(scale)
        self.act = nn.ReLU() if activate else nn.Identity()
        self.out_chs = out_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.proj(self.branches(x))
        if self.scale != 1.0:  # once folded into proj (deploy), no multiplication left to block fusions
            residual = residual * self.scale
        return self.act(x + residual)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


SLIM_STEM = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "maxpool_5a")


def slim_stem(in_chans: int, last: str = "maxpool_5a") -> OrderedDict[str, nn.Module]:
    """TF-slim's stem of Inception-v3, -v4 and the Inception-ResNets (299x299 -> 35x35x192), its layers by
    their scope names (lower case) from ``conv2d_1a`` up to and including ``last``: the networks add
    them as their first stages, so their state_dict keys are the same in all of them."""
    if last not in SLIM_STEM:
        raise BadValue(f"last must be one of the stem's layers {', '.join(SLIM_STEM)}, got {last!r}")
    layers = {  # built one by one, only as far as asked: random initial weights are drawn in forward order
        "conv2d_1a": lambda: BasicConv(in_chans, 32, 3, stride=2, padding="valid"),  # 149x149x32
        "conv2d_2a": lambda: BasicConv(32, 32, 3, padding="valid"),  # 147x147x32
        "conv2d_2b": lambda: BasicConv(32, 64, 3),  # 147x147x64 ("same": the only padded conv)
        "maxpool_3a": lambda: nn.MaxPool2d(3, stride=2),  # 73x73x64
        "conv2d_3b": lambda: BasicConv(64, 80, 1),  # 73x73x80
        "conv2d_4a": lambda: BasicConv(80, 192, 3, padding="valid"),  # 71x71x192
        "maxpool_5a": lambda: nn.MaxPool2d(3, stride=2),  # 35x35x192
    }
    return OrderedDict((name, layers[name]()) for name in SLIM_STEM[:SLIM_STEM.index(last) + 1])


def fit_aux_grid(x: torch.Tensor) -> torch.Tensor:
    """The input of :class:`AuxHead`'s 5x5 conv: the 5x5/3 average pool where the grid allows it, and
    grids smaller than 5x5 brought to 5x5 by adaptive average pooling, so that the head takes every
    input the trunk takes (at 299x299 and above it is the released head, untouched)."""
    if min(x.shape[-2], x.shape[-1]) >= 5:
        x = F.avg_pool2d(x, 5, stride=3)
    if min(x.shape[-2], x.shape[-1]) < 5:
        x = F.adaptive_avg_pool2d(x, (max(x.shape[-2], 5), max(x.shape[-1], 5)))
    return x


torch.fx.wrap("fit_aux_grid")  # a leaf in FX graphs: its branches depend on the input's size


class AuxHead(nn.Module):
    """Auxiliary classifier of v3, v4 and Inception-ResNet-v2 on the 17x17 grid.

    avg 5x5/3 -> 1x1 conv ``ch1x1`` -> 5x5 conv ``ch5x5`` (valid) -> global avg -> fc. At 299x299 the
    pool leaves the 5x5 grid the conv needs; smaller inputs leave smaller grids, which
    :func:`fit_aux_grid` brings to 5x5 so that the head trains at any size the trunk takes. The v3
    paper's Figure 8 draws an FC-1024 where every released network has the 5x5x768 conv.
    """

    def __init__(self, in_chs: int, num_classes: int, ch1x1: int = 128, ch5x5: int = 768, **conv_kw):
        super().__init__()
        check_channels(in_chs=in_chs, ch1x1=ch1x1, ch5x5=ch5x5)
        self.reduce = BasicConv(in_chs, ch1x1, 1, **conv_kw)
        self.conv = BasicConv(ch1x1, ch5x5, 5, padding="valid", **conv_kw)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = ch5x5
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh classifier for ``num_classes`` (0 removes it)."""
        if num_classes < 0:
            raise BadValue(f"num_classes must be >= 0, got {num_classes!r}")
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.reduce(fit_aux_grid(x)))
        return self.fc(torch.flatten(self.global_pool(x), 1))


def running_eagerly(x: torch.Tensor) -> bool:
    """True in a plain forward pass; False while ``torch.jit.trace``, FX or ``torch.compile`` trace the
    module, where checks that read sizes as Python numbers must stand aside (TorchScript never compiles
    it: it is called from methods marked ``torch.jit.unused``)."""
    return not (torch.jit.is_tracing() or isinstance(x, torch.fx.Proxy) or torch.compiler.is_compiling())
