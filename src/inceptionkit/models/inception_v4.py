"""Inception-v4 (Szegedy, Ioffe, Vanhoucke, Alemi 2016, arXiv 1602.07261, Figures 3-9).

Built as timm builds it (a port of TF-slim's ``inception_v4``), so timm's weights load and its
parameter count (42,679,816) is ours. Branches are in TF-slim's concatenation order, which is the
order the converted weights expect; where a figure draws them in another order the network is the
same up to a permutation of channels. ``ReductionA`` takes the paper's (k, l, m, n) and is shared
with the Inception-ResNets (:mod:`inceptionkit.models.inception_resnet`).

Width arguments that are tuples list the convolutions of one branch in order, reduce first:
``ch3x3=(64, 96)`` is a 1x1 reduce to 64 followed by a 3x3 to 96.
"""

from __future__ import annotations

from collections.abc import Sequence

from .blocks import (
    AuxHead,
    BasicConv,
    Branch,
    Concat,
    check_channels,
    check_widths,
    conv_branch,
    expanded_bank,
    pool_branch,
    slim_stem,
)
from .net import InceptionNet
from .registry import INCEPTION_MEAN, INCEPTION_STD, register_model
from .sizes import SizeRule

PAPER = (
    "Szegedy, Ioffe, Vanhoucke, Alemi 2016, Inception-v4, Inception-ResNet and the Impact of "
    "Residual Connections on Learning (arXiv 1602.07261)"
)


# --- stem (Figure 3) -------------------------------------------------------------------------------
class StemReduction(Concat):
    """A 3x3/2 valid conv and a 3x3/2 valid max pool side by side (Fig. 3's first and last concat).

    ``pool_first`` puts the pool branch first, as TF-slim and timm do for the 73x73 concat.
    """

    def __init__(self, in_chs: int, conv_chs: int, pool_first: bool):
        check_channels(in_chs=in_chs, conv_chs=conv_chs)
        conv = conv_branch(in_chs, (conv_chs, 3, 2, "valid"))
        pool = pool_branch(in_chs, "max", 3, 2, 0)
        super().__init__({"branch1": pool, "branch2": conv} if pool_first else {"branch1": conv, "branch2": pool})


class StemFactorized(Concat):
    """Fig. 3's middle concat: a 3x3 branch and a factorized 7x7 branch, each ending in a valid 3x3.

    The 7x7 branch applies the 1x7 before the 7x1 (the figure draws 7x1 first), as TF-slim and timm do.
    """

    def __init__(self, in_chs: int, ch3x3: Sequence[int], ch7x7: Sequence[int]):
        check_channels(in_chs=in_chs)
        c3 = check_widths("ch3x3", ch3x3, 2)
        c7 = check_widths("ch7x7", ch7x7, 4)
        super().__init__({
            "branch1": conv_branch(in_chs, (c3[0], 1), (c3[1], 3, 1, "valid")),
            "branch2": conv_branch(in_chs, (c7[0], 1), (c7[1], (1, 7)), (c7[2], (7, 1)), (c7[3], 3, 1, "valid")),
        })


# --- Inception and reduction blocks (Figures 4-8) --------------------------------------------------
class InceptionA(Concat):
    """Inception-A (Fig. 4), 35x35 grid: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3; avg pool -> 1x1."""

    def __init__(self, in_chs: int, ch1x1: int, ch3x3: Sequence[int], dbl3x3: Sequence[int], pool_proj: int):
        check_channels(in_chs=in_chs, ch1x1=ch1x1, pool_proj=pool_proj)
        c3, d3 = check_widths("ch3x3", ch3x3, 2), check_widths("dbl3x3", dbl3x3, 3)
        super().__init__({
            "branch1": conv_branch(in_chs, (ch1x1, 1)),
            "branch2": conv_branch(in_chs, (c3[0], 1), (c3[1], 3)),
            "branch3": conv_branch(in_chs, (d3[0], 1), (d3[1], 3), (d3[2], 3)),
            "branch4": pool_branch(in_chs, "avg", 3, 1, 1, proj=pool_proj, count_include_pad=False),
        })


class ReductionA(Concat):
    """Reduction-A (Fig. 7), 35x35 -> 17x17 with the paper's Table 1 widths (k, l, m, n).

    Branches: 3x3/2 valid n; 1x1 k -> 3x3 l -> 3x3/2 valid m; 3x3/2 max pool. Output n + m + in_chs.
    """

    def __init__(self, in_chs: int, k: int, l: int, m: int, n: int):  # noqa: E741  (the paper's names)
        check_channels(in_chs=in_chs, k=k, l=l, m=m, n=n)
        super().__init__({
            "branch1": conv_branch(in_chs, (n, 3, 2, "valid")),
            "branch2": conv_branch(in_chs, (k, 1), (l, 3), (m, 3, 2, "valid")),
            "branch3": pool_branch(in_chs, "max", 3, 2, 0),
        })


class InceptionB(Concat):
    """Inception-B (Fig. 5), 17x17 grid: 1x1; 1x1 -> 1x7 -> 7x1; 1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7; avg pool -> 1x1."""

    def __init__(self, in_chs: int, ch1x1: int, ch7x7: Sequence[int], dbl7x7: Sequence[int], pool_proj: int):
        check_channels(in_chs=in_chs, ch1x1=ch1x1, pool_proj=pool_proj)
        c7, d7 = check_widths("ch7x7", ch7x7, 3), check_widths("dbl7x7", dbl7x7, 5)
        super().__init__({
            "branch1": conv_branch(in_chs, (ch1x1, 1)),
            "branch2": conv_branch(in_chs, (c7[0], 1), (c7[1], (1, 7)), (c7[2], (7, 1))),
            "branch3": conv_branch(
                in_chs, (d7[0], 1), (d7[1], (7, 1)), (d7[2], (1, 7)), (d7[3], (7, 1)), (d7[4], (1, 7))
            ),
            "branch4": pool_branch(in_chs, "avg", 3, 1, 1, proj=pool_proj, count_include_pad=False),
        })


class ReductionB(Concat):
    """Inception-v4's Reduction-B (Fig. 8), 17x17 -> 8x8.

    Branches: 1x1 -> 3x3/2 valid; 1x1 -> 1x7 -> 7x1 -> 3x3/2 valid; 3x3/2 max pool.
    """

    def __init__(self, in_chs: int, ch3x3: Sequence[int], ch7x7x3: Sequence[int]):
        check_channels(in_chs=in_chs)
        c3, c7 = check_widths("ch3x3", ch3x3, 2), check_widths("ch7x7x3", ch7x7x3, 4)
        super().__init__({
            "branch1": conv_branch(in_chs, (c3[0], 1), (c3[1], 3, 2, "valid")),
            "branch2": conv_branch(in_chs, (c7[0], 1), (c7[1], (1, 7)), (c7[2], (7, 1)), (c7[3], 3, 2, "valid")),
            "branch3": pool_branch(in_chs, "max", 3, 2, 0),
        })


class InceptionC(Concat):
    """Inception-C (Fig. 6), 8x8 grid: 1x1; 1x1 -> {1x3, 3x1}; 1x1 -> 3x1 -> 1x3 -> {1x3, 3x1}; avg pool -> 1x1.

    The last width of ``ch3x3`` and ``dbl3x3`` is that of each of the two expanded convs.
    """

    def __init__(self, in_chs: int, ch1x1: int, ch3x3: Sequence[int], dbl3x3: Sequence[int], pool_proj: int):
        check_channels(in_chs=in_chs, ch1x1=ch1x1, pool_proj=pool_proj)
        c3, d3 = check_widths("ch3x3", ch3x3, 2), check_widths("dbl3x3", dbl3x3, 4)
        reduce = BasicConv(in_chs, c3[0], 1)
        expand = expanded_bank(c3[0], c3[1])
        dbl = conv_branch(in_chs, (d3[0], 1), (d3[1], (3, 1)), (d3[2], (1, 3)))
        dbl_expand = expanded_bank(d3[2], d3[3])
        super().__init__({
            "branch1": conv_branch(in_chs, (ch1x1, 1)),
            "branch2": Branch([reduce, expand], expand.out_chs),
            "branch3": Branch([*dbl, dbl_expand], dbl_expand.out_chs),
            "branch4": pool_branch(in_chs, "avg", 3, 1, 1, proj=pool_proj, count_include_pad=False),
        })


# --- the network (Figure 9) ------------------------------------------------------------------------
class InceptionV4(InceptionNet):
    """Inception-v4: stem, 4 x Inception-A, Reduction-A, 7 x Inception-B, Reduction-B, 3 x Inception-C.

    Stages: conv2d_1a, conv2d_2a, conv2d_2b, mixed_3a, mixed_4a, mixed_5a (the stem, TF-slim's
    names), inception_a1..a4, reduction_a, inception_b1..b7, reduction_b, inception_c1..c3; then
    global average pool, dropout and ``fc``. ``aux`` (with ``aux_logits=True``) taps inception_b7.
    The minimum input is 75x75, in train mode (with the aux head) and eval mode alike.
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.0):
        super().__init__()
        check_channels(in_chans=in_chans)
        # stem (Fig. 3): 299x299x3 -> 35x35x384, TF-slim's three convs, then mixed branches where v3 pools
        for name, layer in slim_stem(in_chans, last="conv2d_2b").items():  # 147x147x64
            self.add_module(name, layer)
        self.mixed_3a = StemReduction(64, 96, pool_first=True)  # 73x73x160
        self.mixed_4a = StemFactorized(160, ch3x3=(64, 96), ch7x7=(64, 64, 64, 96))  # 71x71x192
        self.mixed_5a = StemReduction(192, 192, pool_first=False)  # 35x35x384
        # 4 x Inception-A (Fig. 4): 35x35x384
        a = [f"inception_a{i}" for i in range(1, 5)]
        for name in a:
            self.add_module(name, InceptionA(384, ch1x1=96, ch3x3=(64, 96), dbl3x3=(64, 96, 96), pool_proj=96))
        # Reduction-A (Fig. 7, Table 1): 17x17x1024
        self.reduction_a = ReductionA(384, k=192, l=224, m=256, n=384)
        # 7 x Inception-B (Fig. 5): 17x17x1024
        b = [f"inception_b{i}" for i in range(1, 8)]
        for name in b:
            block = InceptionB(1024, ch1x1=384, ch7x7=(192, 224, 256), dbl7x7=(192, 192, 224, 224, 256), pool_proj=128)
            self.add_module(name, block)
        # Reduction-B (Fig. 8): 8x8x1536
        self.reduction_b = ReductionB(1024, ch3x3=(192, 192), ch7x7x3=(256, 256, 320, 320))
        # 3 x Inception-C (Fig. 6): 8x8x1536
        c = [f"inception_c{i}" for i in range(1, 4)]
        for name in c:
            block = InceptionC(1536, ch1x1=256, ch3x3=(384, 256), dbl3x3=(384, 448, 512, 256), pool_proj=256)
            self.add_module(name, block)
        self.aux = AuxHead(1024, num_classes) if aux_logits else None
        # head: global average pool, dropout, fc 1536 -> classes
        self._build_head(1536, num_classes, drop_rate)

        stem = ["conv2d_1a", "conv2d_2a", "conv2d_2b", "mixed_3a", "mixed_4a", "mixed_5a"]
        self._set_trunk(stem + a + ["reduction_a"] + b + ["reduction_b"] + c, aux_taps={b[-1]: "aux"},
                        stem=len(stem), min_input=75)
        self.feature_info = [
            dict(num_chs=64, reduction=2, module="conv2d_2b"),
            dict(num_chs=160, reduction=4, module="mixed_3a"),
            dict(num_chs=384, reduction=8, module="inception_a4"),
            dict(num_chs=1024, reduction=16, module="inception_b7"),
            dict(num_chs=1536, reduction=32, module="inception_c3"),
        ]


@register_model(
    "inception_v4",
    input_size=(3, 299, 299),
    sizes=SizeRule(75),
    pool_size=(8, 8),
    mean=INCEPTION_MEAN,
    std=INCEPTION_STD,
    interpolation="bicubic",
    crop_pct=0.875,
    source="timm (Cadene's port of TF-slim); aux head: TF-slim",
    paper=PAPER,
    family="inception_v4",
    deviations=(
        "mixed_4a's factorized 7x7 applies the 1x7 before the 7x1 (Fig. 3 draws 7x1 first), as TF-slim and timm",
        "dropout defaults to 0 as in timm (the paper keeps 0.8: drop_rate=0.2)",
        "auxiliary head (aux_logits=True, off by default as in timm) is TF-slim's, on inception_b7",
    ),
)
def inception_v4(
    num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.0
) -> InceptionV4:
    """Inception-v4 as timm builds it: 42,679,816 parameters for 1000 classes (no aux head)."""
    return InceptionV4(num_classes, in_chans, aux_logits, drop_rate)
