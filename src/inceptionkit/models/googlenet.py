"""GoogLeNet / Inception-v1 (Szegedy et al. 2014, "Going Deeper with Convolutions", arXiv 1409.4842).

``googlenet`` builds the paper's network (``variant="paper"``: true 5x5, conv biases, LRN, no BN)
or torchvision's port of the TF-slim weights (``variant="torchvision"``), from the same table.
``googlenet_cifar`` is kuangliu/pytorch-cifar's 32x32 version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn

from ..errors import BadValue
from .blocks import (
    BasicConv,
    Concat,
    check_channels,
    check_odd_kernel,
    conv_branch,
    pool_branch,
)
from .net import InceptionNet, refuse_aux
from .registry import register_model
from .sizes import SizeRule

__all__ = [
    "AuxHeadV1",
    "GoogLeNet",
    "GoogLeNetCifar",
    "InceptionModule",
    "NaiveInception",
    "TABLE_1",
    "googlenet",
    "googlenet_cifar",
]

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)


# --- blocks ------------------------------------------------------------------------------------


class NaiveInception(Concat):
    """The naive module (paper Figure 2a): 1x1, 3x3 and 5x5 convs and a 3x3 max-pool, concatenated.

    Every path keeps the spatial size, so the output has ``ch1x1 + ch3x3 + ch5x5 + in_chs`` channels:
    the pool branch passes all input channels through, which is why depth grows module after module.
    """

    def __init__(self, in_chs: int, ch1x1: int, ch3x3: int, ch5x5: int, **conv_kw):
        check_channels(in_chs=in_chs, ch1x1=ch1x1, ch3x3=ch3x3, ch5x5=ch5x5)
        super().__init__({
            "branch1": conv_branch(in_chs, (ch1x1, 1), **conv_kw),
            "branch2": conv_branch(in_chs, (ch3x3, 3), **conv_kw),
            "branch3": conv_branch(in_chs, (ch5x5, 5), **conv_kw),
            "branch4": pool_branch(in_chs, "max", 3, 1, 1),
        })


class InceptionModule(Concat):
    """The dimension-reduced module (paper Figure 2b), arguments in Table 1's column order.

    branch1: 1x1 ``ch1x1``; branch2: 1x1 ``ch3x3red`` -> 3x3 ``ch3x3``; branch3: 1x1 ``ch5x5red`` ->
    ``kernel5`` x ``kernel5`` ``ch5x5``; branch4: 3x3/1 max-pool -> 1x1 ``pool_proj``.
    ``kernel5=3`` is torchvision's (and TF-slim's) known quirk; ``factorize5=True`` replaces the 5x5
    by two stacked 3x3 (kuangliu's CIFAR GoogLeNet). ``conv_kw`` (bn, bias, eps) go to every conv.
    """

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        *,
        kernel5: int = 5,
        factorize5: bool = False,
        pool_ceil: bool = False,
        **conv_kw,
    ):
        check_channels(
            in_chs=in_chs, ch1x1=ch1x1, ch3x3red=ch3x3red, ch3x3=ch3x3,
            ch5x5red=ch5x5red, ch5x5=ch5x5, pool_proj=pool_proj,
        )
        check_odd_kernel("kernel5", kernel5)
        if factorize5 and kernel5 != 5:
            raise BadValue(f"factorize5 replaces a 5x5 by two 3x3 and needs kernel5=5, got kernel5={kernel5}")
        branch3 = ((ch5x5red, 1), (ch5x5, 3), (ch5x5, 3)) if factorize5 else ((ch5x5red, 1), (ch5x5, kernel5))
        super().__init__({
            "branch1": conv_branch(in_chs, (ch1x1, 1), **conv_kw),
            "branch2": conv_branch(in_chs, (ch3x3red, 1), (ch3x3, 3), **conv_kw),
            "branch3": conv_branch(in_chs, *branch3, **conv_kw),
            "branch4": pool_branch(in_chs, "max", 3, 1, 1, proj=pool_proj, ceil_mode=pool_ceil, **conv_kw),
        })


def paper_aux_pool(x: torch.Tensor) -> torch.Tensor:
    """The paper's 5x5/3 average pool of the aux heads, skipped on grids smaller than its window."""
    if min(x.shape[-2], x.shape[-1]) >= 5:
        x = F.avg_pool2d(x, 5, stride=3, ceil_mode=True)
    return x


torch.fx.wrap("paper_aux_pool")  # a leaf in FX graphs: whether it pools depends on the input's size


class AuxHeadV1(nn.Module):
    """GoogLeNet's auxiliary classifier: pool to 4x4, 1x1 conv 128, fc 1024 + ReLU, dropout 0.7, fc.

    ``fixed_pool=True`` is the paper's 5x5/3 average pool (4x4 on the 14x14 grid of a 224 input),
    followed by an adaptive pool to 4x4 so that other input sizes work too (identity at 224);
    ``False`` is torchvision's adaptive average pool to 4x4 alone (at 14x14 its windows are 4 wide,
    not 5, so the two differ slightly).
    """

    def __init__(
        self,
        in_chs: int,
        num_classes: int,
        *,
        mid_chs: int = 128,
        hidden: int = 1024,
        drop_rate: float = 0.7,
        fixed_pool: bool = False,
        **conv_kw,
    ):
        super().__init__()
        check_channels(in_chs=in_chs, mid_chs=mid_chs, hidden=hidden)
        self.fixed_pool = fixed_pool
        # conv, fc1, fc2 in torchvision's InceptionAux order, so its tensors convert positionally
        self.resize = nn.AdaptiveAvgPool2d(4)
        self.conv = BasicConv(in_chs, mid_chs, 1, **conv_kw)
        self.fc1 = nn.Linear(16 * mid_chs, hidden)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(drop_rate)
        self.fc2 = nn.Linear(hidden, num_classes) if num_classes > 0 else nn.Identity()

    def reset_classifier(self, num_classes: int) -> None:
        self.fc2 = nn.Linear(self.fc1.out_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fixed_pool:
            x = paper_aux_pool(x)
        x = torch.flatten(self.conv(self.resize(x)), 1)
        return self.fc2(self.drop(self.act(self.fc1(x))))


# --- GoogLeNet ---------------------------------------------------------------------------------

# Table 1 from 3a on: a module row is (name, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj);
# a one-name row is the 3x3/2 max-pool between stages.
TABLE_1: tuple[tuple, ...] = (
    # name          #1x1  #3x3red  #3x3  #5x5red  #5x5  pool proj
    ("inception3a",   64,     96,   128,     16,    32,     32),
    ("inception3b",  128,    128,   192,     32,    96,     64),
    ("maxpool3",),
    ("inception4a",  192,     96,   208,     16,    48,     64),
    ("inception4b",  160,    112,   224,     24,    64,     64),
    ("inception4c",  128,    128,   256,     24,    64,     64),
    ("inception4d",  112,    144,   288,     32,    64,     64),
    ("inception4e",  256,    160,   320,     32,   128,    128),
    ("maxpool4",),
    ("inception5a",  256,    160,   320,     32,   128,    128),
    ("inception5b",  384,    192,   384,     48,   128,    128),
)
AUX_TAPS = {"inception4a": "aux1", "inception4d": "aux2"}


@dataclass(frozen=True)
class _Variant:
    kernel5: int  # kernel of the "#5x5" conv
    bn: bool  # BatchNorm after every conv (and no conv bias) instead of conv biases
    lrn: bool  # LocalResponseNorm after maxpool1 and after conv3
    pool4: int  # kernel of the stride-2 max-pool before 5a
    drop_rate: float  # dropout before fc
    fixed_aux_pool: bool  # aux head: 5x5/3 average pool (paper) or adaptive to 4x4


VARIANTS = {
    "paper": _Variant(kernel5=5, bn=False, lrn=True, pool4=3, drop_rate=0.4, fixed_aux_pool=True),
    # torchvision / TF-slim: 3x3 in the "5x5" branch, BN, no LRN, 2x2/2 pool before 5a, dropout 0.2
    "torchvision": _Variant(kernel5=3, bn=True, lrn=False, pool4=2, drop_rate=0.2, fixed_aux_pool=False),
}


def _scale(chs: int, width: float) -> int:
    return max(1, int(chs * width + 0.5))


def _check_width(width: float) -> None:
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise BadValue(f"width must be a positive number (a multiplier of every filter count), got {width!r}")


def _lrn() -> nn.LocalResponseNorm:
    # Caffe bvlc_googlenet: local_size 5, alpha 1e-4, beta 0.75, k 1 (the paper gives no values)
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)


def _add_modules(
    net: nn.Module, in_chs: int, width: float, pool: Callable[[str], nn.Module], **module_kw
) -> tuple[list[str], int]:
    """Add Table 1's modules and pools to ``net``; return the stage names and the output channels."""
    names = []
    for name, *filters in TABLE_1:
        if filters:
            module = InceptionModule(in_chs, *(_scale(c, width) for c in filters), **module_kw)
            in_chs = module.out_chs
        else:
            module = pool(name)
        net.add_module(name, module)
        names.append(name)
    return names, in_chs


class GoogLeNet(InceptionNet):
    """GoogLeNet, built from Table 1: a stem, nine inception modules, global pool, dropout, fc.

    Two auxiliary heads (on 4a and 4d) run in training mode only; the paper weights their losses 0.3.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = True,
        drop_rate: float | None = None,
        variant: str = "paper",
        width: float = 1.0,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise BadValue(f"variant must be one of {', '.join(map(repr, VARIANTS))}, got {variant!r}")
        check_channels(in_chans=in_chans)
        _check_width(width)
        v = VARIANTS[variant]
        self.variant, self.width = variant, width
        conv_kw = dict(bn=v.bn)
        c = partial(_scale, width=width)

        def maxpool(name: str) -> nn.MaxPool2d:
            kernel = v.pool4 if name == "maxpool4" else 3
            return nn.MaxPool2d(kernel, stride=2, ceil_mode=True)  # ceil: Caffe's / TF SAME output sizes

        # stem                                                        output at 224
        self.conv1 = BasicConv(in_chans, c(64), 7, 2, 3, **conv_kw)  # 112x112x64
        self.maxpool1 = maxpool("maxpool1")  # 56x56x64
        if v.lrn:
            self.lrn1 = _lrn()
        self.conv2 = BasicConv(c(64), c(64), 1, **conv_kw)  # "#3x3 reduce" 64
        self.conv3 = BasicConv(c(64), c(192), 3, **conv_kw)  # 56x56x192
        if v.lrn:
            self.lrn2 = _lrn()
        self.maxpool2 = maxpool("maxpool2")  # 28x28x192
        stem = ["conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2"]
        stem = [name for name in stem if hasattr(self, name)]

        # inception 3a .. 5b                                          28x28 / 14x14 / 7x7
        modules, num_features = _add_modules(
            self, c(192), width, maxpool, kernel5=v.kernel5, pool_ceil=True, **conv_kw
        )

        if aux_logits:
            aux_kw = dict(mid_chs=c(128), fixed_pool=v.fixed_aux_pool, **conv_kw)
            self.aux1 = AuxHeadV1(self.inception4a.out_chs, num_classes, **aux_kw)
            self.aux2 = AuxHeadV1(self.inception4d.out_chs, num_classes, **aux_kw)
        self._build_head(num_features, num_classes, v.drop_rate if drop_rate is None else drop_rate)
        self._set_trunk(stem + modules, AUX_TAPS, stem=len(stem), min_input=31 if variant == "paper" else 15)
        self.feature_info = [
            dict(num_chs=self.conv1.out_chs, reduction=2, module="conv1"),
            dict(num_chs=self.conv3.out_chs, reduction=4, module="conv3"),
            dict(num_chs=self.inception3b.out_chs, reduction=8, module="inception3b"),
            dict(num_chs=self.inception4e.out_chs, reduction=16, module="inception4e"),
            dict(num_chs=self.inception5b.out_chs, reduction=32, module="inception5b"),
        ]
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """torchvision: trunc-normal std 0.01; paper (no BN): He-normal so the signal survives 22 layers."""
        if next(self.parameters()).is_meta:  # no values to set; random init on meta would import torch._dynamo
            return
        classifiers = {self.fc} | {getattr(self, a).fc2 for a in self.aux_taps.values()}
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if self.variant == "torchvision":
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                elif m in classifiers:
                    nn.init.normal_(m.weight, std=0.01)
                else:
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


class GoogLeNetCifar(InceptionNet):
    """kuangliu/pytorch-cifar's GoogLeNet for 32x32 input: a 3x3 conv to 192, Table 1's modules at 32/16/8.

    Departs from the paper: no 7x7/2 stem, pools or LRN; 5x5 branch as two 3x3; conv bias + BN; no aux heads.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0, width: float = 1.0):
        super().__init__()
        check_channels(in_chans=in_chans)
        _check_width(width)
        self.width = width
        conv_kw = dict(bn=True, bias=True, eps=1e-5)  # kuangliu: Conv2d(bias=True) + BatchNorm2d defaults
        self.conv1 = BasicConv(in_chans, _scale(192, width), 3, **conv_kw)  # 32x32x192
        modules, num_features = _add_modules(
            self, self.conv1.out_chs, width, lambda name: nn.MaxPool2d(3, stride=2, padding=1),
            factorize5=True, **conv_kw,
        )
        self._build_head(num_features, num_classes, drop_rate)
        self._set_trunk(["conv1", *modules], stem=1)
        self.feature_info = [
            dict(num_chs=self.conv1.out_chs, reduction=1, module="conv1"),
            dict(num_chs=self.inception3b.out_chs, reduction=1, module="inception3b"),
            dict(num_chs=self.inception4e.out_chs, reduction=2, module="inception4e"),
            dict(num_chs=self.inception5b.out_chs, reduction=4, module="inception5b"),
        ]


# --- builders ----------------------------------------------------------------------------------


@register_model(
    "googlenet",
    input_size=(3, 224, 224),
    source="paper: Table 1 + Caffe bvlc_googlenet; variant='torchvision': torchvision",
    paper="Szegedy et al. 2014, Going Deeper with Convolutions (arXiv 1409.4842)",
    sizes=SizeRule(31),
    variant_sizes={"paper": SizeRule(31), "torchvision": SizeRule(15)},
    pool_size=(7, 7),
    family="googlenet",
    deviations=(
        "global average pooling instead of the fixed 7x7/1 average pool (the same at 224x224)",
        "LRN size/alpha/beta/k and ceil-mode pools from Caffe bvlc_googlenet; the paper does not give them",
        "variant='paper' initializes with He-normal (the paper does not say; Caffe used Xavier)",
        "variant='torchvision': 3x3 conv in the '5x5' branch, BN (eps 1e-3) instead of conv bias, no LRN, "
        "2x2/2 max-pool before 5a, dropout 0.2, aux heads pool adaptively to 4x4",
        "variant='paper' aux heads pool 5x5/3 as the paper, then adaptively to 4x4 so that any input size works",
    ),
)
def googlenet(
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = True,
    drop_rate: float | None = None,
    variant: str = "paper",
    width: float = 1.0,
) -> GoogLeNet:
    """GoogLeNet (Inception-v1). ``variant="paper"`` or ``"torchvision"``; ``drop_rate=None`` uses the variant's."""
    return GoogLeNet(num_classes, in_chans, aux_logits, drop_rate, variant, width)


@register_model(
    "googlenet_cifar",
    input_size=(3, 32, 32),
    source="kuangliu/pytorch-cifar models/googlenet.py",
    paper="Szegedy et al. 2014, Going Deeper with Convolutions (arXiv 1409.4842)",
    sizes=SizeRule(1),
    pool_size=(8, 8),
    mean=CIFAR_MEAN,
    std=CIFAR_STD,
    crop_pct=1.0,
    family="googlenet",
    deviations=(
        "3x3 conv to 192 at full resolution instead of the 7x7/2 stem, max-pools and LRN",
        "5x5 branch as 1x1 -> 3x3 -> 3x3 (kuangliu's deliberate change)",
        "every conv has a bias and BatchNorm (eps 1e-5); no aux heads; max-pools 3x3/2 pad 1",
    ),
)
def googlenet_cifar(
    num_classes: int = 10,
    in_chans: int = 3,
    aux_logits: bool = False,
    drop_rate: float = 0.0,
    width: float = 1.0,
) -> GoogLeNetCifar:
    """GoogLeNet for 32x32 images (kuangliu). ``width`` < 1 gives a narrower network that trains fast on CPU."""
    refuse_aux("googlenet_cifar", aux_logits)
    return GoogLeNetCifar(num_classes, in_chans, drop_rate, width)
