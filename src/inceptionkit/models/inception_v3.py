"""Inception-v3 (Szegedy et al. 2015, "Rethinking the Inception Architecture", arXiv 1512.00567).

The network is the released one (TF-slim, ported by torchvision and timm), not the paper's Table 1:
see the ``deviations`` of its registry entry. The factorized modules defined here are also the
building blocks of BN-Inception (:mod:`inceptionkit.models.bn_inception`).

Modules, by the paper's figures (torchvision's class names in brackets):

* :class:`FactorizedModule`: 35x35 module, the 5x5 factorized into two 3x3 (Figure 5) [InceptionA]
* :class:`GridReduction`: stride-2 conv branches beside a stride-2 max pool (Figure 10) [InceptionB]
* :class:`AsymmetricModule`: n x n factorized into 1 x n then n x 1, 17x17 grid (Figure 6) [InceptionC]
* :class:`AsymmetricGridReduction`: the 17 -> 8 reduction with a factorized 7x7 [InceptionD]
* :class:`ExpandedModule`: 8x8 module with expanded filter banks, 1x3 || 3x1 (Figure 7) [InceptionE]
* :class:`~inceptionkit.models.blocks.AuxHead`: the auxiliary classifier on the 17x17 grid [InceptionAux]
"""

from __future__ import annotations

from torch import nn

from ..errors import BadValue
from .blocks import (
    AuxHead,
    Branch,
    Concat,
    check_channels,
    check_odd_kernel,
    conv_branch,
    expanded_bank,
    pool_branch,
    slim_stem,
)
from .net import InceptionNet
from .registry import INCEPTION_MEAN, INCEPTION_STD, register_model
from .sizes import SizeRule


def _check_pool(value: str) -> None:
    if value not in ("avg", "max"):
        raise BadValue(f"pool must be 'avg' or 'max', got {value!r}")


class FactorizedModule(Concat):
    """Inception module with the 5x5 factorized into two stacked 3x3 ("double 3x3", Figure 5).

    Branches: 1x1 | 1x1 reduce -> kxk | 1x1 reduce -> 3x3 -> 3x3 | pool 3x3/1 -> 1x1 proj.
    Arguments are BN-Inception's table columns. ``kernel_size`` is k of the single branch: 3 in
    BN-Inception; 5 in released Inception-v3, which kept a 5x5 beside the double 3x3 (and in
    Inception-ResNet-v2's ``mixed_5b``, whose average pool leaves padding out: ``count_include_pad=False``).
    """

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        dbl3x3red: int,
        dbl3x3: int,
        pool_proj: int,
        *,
        kernel_size: int = 3,
        pool: str = "avg",
        count_include_pad: bool = True,
        **conv_kw,
    ):
        check_channels(
            in_chs=in_chs, ch1x1=ch1x1, ch3x3red=ch3x3red, ch3x3=ch3x3,
            dbl3x3red=dbl3x3red, dbl3x3=dbl3x3, pool_proj=pool_proj,
        )
        check_odd_kernel("kernel_size", kernel_size)
        _check_pool(pool)
        super().__init__({
            "branch1": conv_branch(in_chs, (ch1x1, 1), **conv_kw),
            "branch2": conv_branch(in_chs, (ch3x3red, 1), (ch3x3, kernel_size), **conv_kw),
            "branch3": conv_branch(in_chs, (dbl3x3red, 1), (dbl3x3, 3), (dbl3x3, 3), **conv_kw),
            "branch4": pool_branch(
                in_chs, pool, 3, 1, 1, proj=pool_proj, count_include_pad=count_include_pad, **conv_kw),
        })


class GridReduction(Concat):
    """Grid-size reduction: stride-2 3x3 and double-3x3 branches beside a stride-2 max pool.

    The pooled input passes through unprojected ("max + pass-through"), so the output has
    ``ch3x3 + dbl3x3 + in_chs`` channels. ``ch3x3red=None`` drops the 3x3 branch's 1x1 reduce
    (v3's 35 -> 17 reduction). v3 uses "valid" stride-2 convs and a floor-mode pool; BN-Inception
    (3c, 4e) pads them ("same") and pools with ``ceil_mode=True``.
    """

    def __init__(
        self,
        in_chs: int,
        ch3x3red: int | None,
        ch3x3: int,
        dbl3x3red: int,
        dbl3x3: int,
        *,
        padding: str = "valid",
        ceil_mode: bool = False,
        **conv_kw,
    ):
        check_channels(in_chs=in_chs, ch3x3=ch3x3, dbl3x3red=dbl3x3red, dbl3x3=dbl3x3)
        if ch3x3red is not None:
            check_channels(ch3x3red=ch3x3red)
        if padding not in ("valid", "same"):
            raise BadValue(f"padding must be 'valid' or 'same', got {padding!r}")
        reduce = [(ch3x3red, 1)] if ch3x3red is not None else []
        super().__init__({
            "branch1": conv_branch(in_chs, *reduce, (ch3x3, 3, 2, padding), **conv_kw),
            "branch2": conv_branch(in_chs, (dbl3x3red, 1), (dbl3x3, 3), (dbl3x3, 3, 2, padding), **conv_kw),
            "branch3": pool_branch(in_chs, "max", 3, 2, 0, ceil_mode=ceil_mode),
        })


class AsymmetricModule(Concat):
    """17x17 module with each n x n conv factorized into 1 x n then n x 1 (Figure 6, n = 7).

    Branches: 1x1 | 1x1 reduce -> 1xn -> nx1 | 1x1 reduce -> nx1 -> 1xn -> nx1 -> 1xn | avg 3x3/1 -> 1x1 proj.
    ``ch7x7red`` (torchvision's ``channels_7x7``) is the width of the reduce and of every
    intermediate factorized conv; each factorized branch ends with ``ch7x7`` channels.
    """

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch7x7red: int,
        ch7x7: int,
        pool_proj: int,
        *,
        n: int = 7,
        **conv_kw,
    ):
        check_channels(in_chs=in_chs, ch1x1=ch1x1, ch7x7red=ch7x7red, ch7x7=ch7x7, pool_proj=pool_proj)
        check_odd_kernel("n", n)
        c, row, col = ch7x7red, (1, n), (n, 1)
        super().__init__({
            "branch1": conv_branch(in_chs, (ch1x1, 1), **conv_kw),
            "branch2": conv_branch(in_chs, (c, 1), (c, row), (ch7x7, col), **conv_kw),
            "branch3": conv_branch(in_chs, (c, 1), (c, col), (c, row), (c, col), (ch7x7, row), **conv_kw),
            "branch4": pool_branch(in_chs, "avg", 3, 1, 1, proj=pool_proj, **conv_kw),
        })


class AsymmetricGridReduction(Concat):
    """Grid reduction whose second branch is a factorized 7x7 then a stride-2 3x3 (v3's 17 -> 8).

    Branches: 1x1 reduce -> 3x3/2 | 1x1 -> 1xn -> nx1 -> 3x3/2 (all ``ch7x7`` wide) | max 3x3/2
    pass-through. Output: ``ch3x3 + ch7x7 + in_chs`` channels.
    """

    def __init__(self, in_chs: int, ch3x3red: int, ch3x3: int, ch7x7: int, *, n: int = 7, **conv_kw):
        check_channels(in_chs=in_chs, ch3x3red=ch3x3red, ch3x3=ch3x3, ch7x7=ch7x7)
        check_odd_kernel("n", n)
        c = ch7x7
        super().__init__({
            "branch1": conv_branch(in_chs, (ch3x3red, 1), (ch3x3, 3, 2, "valid"), **conv_kw),
            "branch2": conv_branch(in_chs, (c, 1), (c, (1, n)), (c, (n, 1)), (c, 3, 2, "valid"), **conv_kw),
            "branch3": pool_branch(in_chs, "max", 3, 2, 0),
        })


class ExpandedModule(Concat):
    """8x8 module with expanded filter banks: the last 3x3 of each branch split into 1x3 || 3x1 (Figure 7).

    Branches: 1x1 | 1x1 reduce -> {1x3 || 3x1} | 1x1 reduce -> 3x3 -> {1x3 || 3x1} | avg 3x3/1 -> 1x1 proj.
    Output: ``ch1x1 + 2 * ch3x3 + 2 * dbl3x3 + pool_proj`` channels.
    """

    def __init__(
        self,
        in_chs: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        dbl3x3red: int,
        dbl3x3: int,
        pool_proj: int,
        **conv_kw,
    ):
        check_channels(
            in_chs=in_chs, ch1x1=ch1x1, ch3x3red=ch3x3red, ch3x3=ch3x3,
            dbl3x3red=dbl3x3red, dbl3x3=dbl3x3, pool_proj=pool_proj,
        )
        single = conv_branch(in_chs, (ch3x3red, 1), **conv_kw)
        double = conv_branch(in_chs, (dbl3x3red, 1), (dbl3x3, 3), **conv_kw)
        super().__init__({
            "branch1": conv_branch(in_chs, (ch1x1, 1), **conv_kw),
            "branch2": Branch([*single, expanded_bank(ch3x3red, ch3x3, **conv_kw)], 2 * ch3x3),
            "branch3": Branch([*double, expanded_bank(dbl3x3, dbl3x3, **conv_kw)], 2 * dbl3x3),
            "branch4": pool_branch(in_chs, "avg", 3, 1, 1, proj=pool_proj, **conv_kw),
        })


class InceptionV3(InceptionNet):
    """Inception-v3 as released (TF-slim; torchvision's and timm's ``inception_v3``).

    Stage names follow TF-slim's scopes in lower case: stem ``conv2d_1a conv2d_2a conv2d_2b maxpool_3a conv2d_3b
    conv2d_4a maxpool_5a`` (torchvision ``Conv2d_1a_3x3`` ... ``maxpool2``; the same names as inception_resnet_v2),
    then ``mixed_5b`` ... ``mixed_7c`` (``Mixed_5b`` ...); ``aux`` (torchvision ``AuxLogits``) taps ``mixed_6e``.
    The minimum input is 75x75, in train mode (with the aux head) and eval mode alike.
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True, drop_rate: float = 0.5):
        super().__init__()
        check_channels(in_chans=in_chans)
        # stem (299 -> 35x35x192): TF-slim's, as in the Inception-ResNets, conv2d_1a ... maxpool_5a
        for name, layer in slim_stem(in_chans).items():
            self.add_module(name, layer)
        # 35x35 (Figure 5, with a 5x5)  in  #1x1 #5x5red #5x5 dbl3x3red dbl3x3 pool_proj
        self.mixed_5b = FactorizedModule(192,  64,  48,  64,  64,  96,  32, kernel_size=5)  # 256
        self.mixed_5c = FactorizedModule(256,  64,  48,  64,  64,  96,  64, kernel_size=5)  # 288
        self.mixed_5d = FactorizedModule(288,  64,  48,  64,  64,  96,  64, kernel_size=5)  # 288
        # 35 -> 17                     in  #3x3red #3x3 dbl3x3red dbl3x3 (+ max pool pass-through)
        self.mixed_6a = GridReduction(288,  None, 384,  64,  96)  # 768
        # 17x17 (Figure 6, n = 7)          in  #1x1 #7x7red #7x7 pool_proj
        self.mixed_6b = AsymmetricModule(768, 192, 128, 192, 192)  # 768
        self.mixed_6c = AsymmetricModule(768, 192, 160, 192, 192)
        self.mixed_6d = AsymmetricModule(768, 192, 160, 192, 192)
        self.mixed_6e = AsymmetricModule(768, 192, 192, 192, 192)
        self.aux = AuxHead(768, num_classes) if aux_logits else None
        # 17 -> 8                                  in  #3x3red #3x3 #7x7 (+ max pool pass-through)
        self.mixed_7a = AsymmetricGridReduction(768, 192, 320, 192)  # 1280
        # 8x8 (Figure 7)                 in   #1x1 #3x3red #3x3 dbl3x3red dbl3x3 pool_proj
        self.mixed_7b = ExpandedModule(1280, 320, 384, 384, 448, 384, 192)  # 2048
        self.mixed_7c = ExpandedModule(2048, 320, 384, 384, 448, 384, 192)  # 2048
        self._build_head(2048, num_classes, drop_rate)
        self._set_trunk(
            ["conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "maxpool_5a",
             "mixed_5b", "mixed_5c", "mixed_5d", "mixed_6a", "mixed_6b", "mixed_6c", "mixed_6d", "mixed_6e",
             "mixed_7a", "mixed_7b", "mixed_7c"],
            aux_taps={"mixed_6e": "aux"}, stem=7, min_input=75,
        )
        self.feature_info = [
            dict(num_chs=64, reduction=2, module="conv2d_2b"),
            dict(num_chs=192, reduction=4, module="conv2d_4a"),
            dict(num_chs=288, reduction=8, module="mixed_5d"),
            dict(num_chs=768, reduction=16, module="mixed_6e"),
            dict(num_chs=2048, reduction=32, module="mixed_7c"),
        ]
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's init: truncated normal (std 0.1; 0.01 and 0.001 in the aux head's 5x5 and fc)."""
        if next(self.parameters()).is_meta:  # no values to set; random init on meta would import torch._dynamo
            return
        stddev = {}
        if self.aux is not None:
            stddev = {self.aux.conv.conv: 0.01, self.aux.fc: 0.001}
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=stddev.get(m, 0.1), a=-2.0, b=2.0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


@register_model(
    "inception_v3",
    input_size=(3, 299, 299),
    sizes=SizeRule(75),
    pool_size=(8, 8),
    mean=INCEPTION_MEAN,
    std=INCEPTION_STD,
    interpolation="bicubic",
    family="inception_v3",
    source="torchvision/timm (TF-slim's released network)",
    paper="Szegedy et al. 2015, Rethinking the Inception Architecture (arXiv 1512.00567)",
    deviations=(
        "Stem after the first pool is 1x1-80, 3x3-192 (valid), max pool 3x3/2; Table 1 has 3x3-80, 3x3/2-192, 3x3-288.",
        "35x35 modules keep a 5x5 branch (1x1-48 -> 5x5-64) beside the double 3x3 that Figure 5 puts in its place.",
        "17x17 stage: a grid reduction, then 4 asymmetric modules; 8x8 stage: a grid reduction, then 2 expanded "
        "modules.",
        "Aux head: 1x1-128 -> 5x5-768 conv -> fc, where the paper's Figure 8 has an FC-1024.",
        "Avg-pool branches count the zero padding (torchvision/timm); TF-slim's SAME pooling excludes it.",
        "No transform_input: inputs are normalized with mean/std 0.5 by the caller, never inside the model.",
    ),
)
def inception_v3(
    num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True, drop_rate: float = 0.5
) -> InceptionV3:
    """Inception-v3, 27,161,264 parameters with the aux head, 23,834,568 without (1000 classes)."""
    return InceptionV3(num_classes=num_classes, in_chans=in_chans, aux_logits=aux_logits, drop_rate=drop_rate)
