"""Inception-ResNet-v1 and -v2 (Szegedy, Ioffe, Vanhoucke, Alemi 2016, arXiv 1602.07261).

Every residual block is ``relu(x + scale * proj(concat(branches(x))))`` (:class:`blocks.Residual`):
the 1x1 ``proj`` is linear with a bias and restores the input width; there is no BN after the sum.
One class per grid size (A: 35x35, B: 17x17, C: 8x8) takes the widths, and the two networks
configure them:

* ``inception_resnet_v1`` follows the paper's figures (stem Fig. 14, blocks Figs. 10-13, schema
  Fig. 15: 5 / 10 / 5 blocks); layer details as in facenet-pytorch (BN eps 1e-3, proj with bias).
* ``inception_resnet_v2`` follows timm / TF-slim, not the paper: the paper's v2 widths do not add
  up (384 + 384 + 384 = 1152, yet its B blocks take 1154), and the released network, whose weights
  everybody uses, has a v3-style stem, widths 320 / 1088 / 2080, 10 / 20 / 10 blocks and a 1x1
  conv to 1536 before pooling.

Residual scales 0.17 / 0.10 / 0.20 are TF-slim's (the paper advises 0.1-0.3), and the last
8x8 block of each network is added unscaled and unactivated, as in TF-slim and facenet.
Width tuples list one branch's convolutions in order, reduce first.
"""

from __future__ import annotations

from collections.abc import Sequence

from .blocks import (
    AuxHead,
    BasicConv,
    Concat,
    Residual,
    check_channels,
    check_widths,
    conv_branch,
    pool_branch,
    slim_stem,
)
from .inception_v3 import FactorizedModule
from .inception_v4 import PAPER, ReductionA
from .net import InceptionNet, refuse_aux
from .registry import INCEPTION_MEAN, INCEPTION_STD, register_model
from .sizes import SizeRule


# --- residual blocks (v1: Figs. 10, 11, 13; v2: Figs. 16, 17, 19) ------------------------------------
class InceptionResNetA(Residual):
    """Inception-ResNet-A, 35x35 grid: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3; projected back to ``in_chs``."""

    def __init__(
        self, in_chs: int, ch1x1: int, ch3x3: Sequence[int], dbl3x3: Sequence[int], scale: float, activate: bool = True
    ):
        check_channels(in_chs=in_chs, ch1x1=ch1x1)
        c3, d3 = check_widths("ch3x3", ch3x3, 2), check_widths("dbl3x3", dbl3x3, 3)
        branches = Concat({
            "branch1": conv_branch(in_chs, (ch1x1, 1)),
            "branch2": conv_branch(in_chs, (c3[0], 1), (c3[1], 3)),
            "branch3": conv_branch(in_chs, (d3[0], 1), (d3[1], 3), (d3[2], 3)),
        })
        super().__init__(branches, in_chs, scale, activate)


class InceptionResNetB(Residual):
    """Inception-ResNet-B, 17x17 grid: 1x1; 1x1 -> 1x7 -> 7x1; projected back to ``in_chs``."""

    def __init__(self, in_chs: int, ch1x1: int, ch7x7: Sequence[int], scale: float, activate: bool = True):
        check_channels(in_chs=in_chs, ch1x1=ch1x1)
        c7 = check_widths("ch7x7", ch7x7, 3)
        branches = Concat({
            "branch1": conv_branch(in_chs, (ch1x1, 1)),
            "branch2": conv_branch(in_chs, (c7[0], 1), (c7[1], (1, 7)), (c7[2], (7, 1))),
        })
        super().__init__(branches, in_chs, scale, activate)


class InceptionResNetC(Residual):
    """Inception-ResNet-C, 8x8 grid: 1x1; 1x1 -> 1x3 -> 3x1; projected back to ``in_chs``."""

    def __init__(self, in_chs: int, ch1x1: int, ch3x3: Sequence[int], scale: float, activate: bool = True):
        check_channels(in_chs=in_chs, ch1x1=ch1x1)
        c3 = check_widths("ch3x3", ch3x3, 3)
        branches = Concat({
            "branch1": conv_branch(in_chs, (ch1x1, 1)),
            "branch2": conv_branch(in_chs, (c3[0], 1), (c3[1], (1, 3)), (c3[2], (3, 1))),
        })
        super().__init__(branches, in_chs, scale, activate)


class ResNetReductionB(Concat):
    """Inception-ResNet Reduction-B (v1 Fig. 12, v2 Fig. 18), 17x17 -> 8x8.

    Branches: 1x1 -> 3x3/2 valid; 1x1 -> 3x3/2 valid; 1x1 -> 3x3 -> 3x3/2 valid; 3x3/2 max pool.
    """

    def __init__(self, in_chs: int, ch3x3: Sequence[int], ch3x3_2: Sequence[int], dbl3x3: Sequence[int]):
        check_channels(in_chs=in_chs)
        a, b = check_widths("ch3x3", ch3x3, 2), check_widths("ch3x3_2", ch3x3_2, 2)
        d = check_widths("dbl3x3", dbl3x3, 3)
        super().__init__({
            "branch1": conv_branch(in_chs, (a[0], 1), (a[1], 3, 2, "valid")),
            "branch2": conv_branch(in_chs, (b[0], 1), (b[1], 3, 2, "valid")),
            "branch3": conv_branch(in_chs, (d[0], 1), (d[1], 3), (d[2], 3, 2, "valid")),
            "branch4": pool_branch(in_chs, "max", 3, 2, 0),
        })


# --- networks -------------------------------------------------------------------------------------
class InceptionResNetV1(InceptionNet):
    """Inception-ResNet-v1 (paper Fig. 15): stem, 5 x A, Reduction-A, 10 x B, Reduction-B, 5 x C.

    Stages: conv2d_1a, conv2d_2a, conv2d_2b, maxpool_3a, conv2d_3b, conv2d_4a, conv2d_4b (the stem,
    facenet's names), block35_1..5, mixed_6a, block17_1..10, mixed_7a, block8_1..5; then global
    average pool, dropout and ``fc`` (1792 -> classes). No auxiliary head (the paper and facenet
    have none). The minimum input is 75x75.
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.2):
        super().__init__()
        check_channels(in_chans=in_chans)
        refuse_aux("Inception-ResNet-v1", aux_logits, " (the paper has none)")
        # stem (Fig. 14): 299x299x3 -> 35x35x256, TF-slim's up to conv2d_4a, then a 3x3/2 conv where it pools
        for name, layer in slim_stem(in_chans, last="conv2d_4a").items():  # 71x71x192
            self.add_module(name, layer)
        self.conv2d_4b = BasicConv(192, 256, 3, stride=2, padding="valid")  # 35x35x256
        # 5 x Inception-ResNet-A (Fig. 10): 35x35x256
        a = [f"block35_{i}" for i in range(1, 6)]
        for name in a:
            self.add_module(name, InceptionResNetA(256, 32, ch3x3=(32, 32), dbl3x3=(32, 32, 32), scale=0.17))
        # Reduction-A (Fig. 7; k, l, m, n = 192, 192, 256, 384): 17x17x896
        self.mixed_6a = ReductionA(256, k=192, l=192, m=256, n=384)
        # 10 x Inception-ResNet-B (Fig. 11): 17x17x896
        b = [f"block17_{i}" for i in range(1, 11)]
        for name in b:
            self.add_module(name, InceptionResNetB(896, 128, ch7x7=(128, 128, 128), scale=0.10))
        # Reduction-B (Fig. 12): 8x8x1792
        self.mixed_7a = ResNetReductionB(896, ch3x3=(256, 384), ch3x3_2=(256, 256), dbl3x3=(256, 256, 256))
        # 5 x Inception-ResNet-C (Fig. 13): 8x8x1792; the last is added unscaled and unactivated
        c = [f"block8_{i}" for i in range(1, 6)]
        for name in c[:-1]:
            self.add_module(name, InceptionResNetC(1792, 192, ch3x3=(192, 192, 192), scale=0.20))
        self.add_module(c[-1], InceptionResNetC(1792, 192, ch3x3=(192, 192, 192), scale=1.0, activate=False))
        # head (Fig. 15): average pool, dropout (keep 0.8), fc 1792 -> classes
        self._build_head(1792, num_classes, drop_rate)

        stem = ["conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b"]
        self._set_trunk(stem + a + ["mixed_6a"] + b + ["mixed_7a"] + c, stem=len(stem), min_input=75)
        self.feature_info = [
            dict(num_chs=64, reduction=2, module="conv2d_2b"),
            dict(num_chs=192, reduction=4, module="conv2d_4a"),
            dict(num_chs=256, reduction=8, module=a[-1]),
            dict(num_chs=896, reduction=16, module=b[-1]),
            dict(num_chs=1792, reduction=32, module=c[-1]),
        ]


class InceptionResNetV2(InceptionNet):
    """Inception-ResNet-v2 as TF-slim and timm build it: v3-style stem + mixed_5b, 10 x A,
    Reduction-A, 20 x B, Reduction-B, 10 x C, 1x1 conv to 1536.

    Stages (Keras's names): conv2d_1a, conv2d_2a, conv2d_2b, maxpool_3a, conv2d_3b, conv2d_4a,
    maxpool_5a, mixed_5b, block35_1..10, mixed_6a, block17_1..20, mixed_7a, block8_1..10, conv_7b;
    then global average pool, dropout and ``fc``. ``aux`` (``aux_logits=True``) is TF-slim's head
    on block17_20. The minimum input is 75x75, in train and eval mode alike.
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.0):
        super().__init__()
        check_channels(in_chans=in_chans)
        # stem (TF-slim's, as in Inception-v3; the paper uses the v4 stem of Fig. 3): 299x299x3 -> 35x35x320
        for name, layer in slim_stem(in_chans).items():  # 35x35x192
            self.add_module(name, layer)
        # mixed_5b: a v3-style 35x35 module (#1x1 96, 5x5 reduce 48 -> 64, double 3x3 64 -> 96 -> 96, pool proj 64)
        self.mixed_5b = FactorizedModule(
            192, 96, 48, 64, 64, 96, 64, kernel_size=5, count_include_pad=False)  # 35x35x320
        # 10 x Inception-ResNet-A (Fig. 16, TF-slim's widths): 35x35x320
        a = [f"block35_{i}" for i in range(1, 11)]
        for name in a:
            self.add_module(name, InceptionResNetA(320, 32, ch3x3=(32, 32), dbl3x3=(32, 48, 64), scale=0.17))
        # Reduction-A (Fig. 7; k, l, m, n = 256, 256, 384, 384): 17x17x1088
        self.mixed_6a = ReductionA(320, k=256, l=256, m=384, n=384)
        # 20 x Inception-ResNet-B (Fig. 17, TF-slim's widths): 17x17x1088
        b = [f"block17_{i}" for i in range(1, 21)]
        for name in b:
            self.add_module(name, InceptionResNetB(1088, 192, ch7x7=(128, 160, 192), scale=0.10))
        # Reduction-B (Fig. 18): 8x8x2080
        self.mixed_7a = ResNetReductionB(1088, ch3x3=(256, 384), ch3x3_2=(256, 288), dbl3x3=(256, 288, 320))
        # 10 x Inception-ResNet-C (Fig. 19, TF-slim's widths): 8x8x2080; the last is added unscaled and unactivated
        c = [f"block8_{i}" for i in range(1, 11)]
        for name in c[:-1]:
            self.add_module(name, InceptionResNetC(2080, 192, ch3x3=(192, 224, 256), scale=0.20))
        self.add_module(c[-1], InceptionResNetC(2080, 192, ch3x3=(192, 224, 256), scale=1.0, activate=False))
        self.conv_7b = BasicConv(2080, 1536, 1)  # 8x8x1536
        self.aux = AuxHead(1088, num_classes) if aux_logits else None
        # head: average pool, dropout, fc 1536 -> classes
        self._build_head(1536, num_classes, drop_rate)

        stem = ["conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "maxpool_5a", "mixed_5b"]
        self._set_trunk(stem + a + ["mixed_6a"] + b + ["mixed_7a"] + c + ["conv_7b"], aux_taps={b[-1]: "aux"},
                        stem=len(stem), min_input=75)
        self.feature_info = [
            dict(num_chs=64, reduction=2, module="conv2d_2b"),
            dict(num_chs=192, reduction=4, module="conv2d_4a"),
            dict(num_chs=320, reduction=8, module=a[-1]),
            dict(num_chs=1088, reduction=16, module=b[-1]),
            dict(num_chs=1536, reduction=32, module="conv_7b"),
        ]


_COMMON = dict(
    input_size=(3, 299, 299),
    sizes=SizeRule(75),
    pool_size=(8, 8),
    mean=INCEPTION_MEAN,
    std=INCEPTION_STD,
    interpolation="bicubic",
    paper=PAPER,
    family="inception_resnet",
)


@register_model(
    "inception_resnet_v1",
    crop_pct=0.875,
    source="the paper's figures; facenet-pytorch's layer details",
    deviations=(
        "layer details from timesler/facenet-pytorch InceptionResnetV1: BN eps 1e-3, projection conv with bias",
        "residual scales 0.17/0.10/0.20 from TF-slim/facenet (the paper only advises 0.1-0.3)",
        "the last C block (block8_5) is added with scale 1.0 and no ReLU, as TF-slim/facenet's final block8",
    ),
    **_COMMON,
)
def inception_resnet_v1(
    num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.2
) -> InceptionResNetV1:
    """Inception-ResNet-v1 as in the paper: 22,756,328 parameters for 1000 classes.

    facenet-pytorch adds a sixth C block and a 512-d embedding head; this keeps the paper's five
    C blocks and a 1792 -> classes classifier.
    """
    return InceptionResNetV1(num_classes, in_chans, aux_logits, drop_rate)


@register_model(
    "inception_resnet_v2",
    crop_pct=0.8975,
    source="timm / TF-slim (the paper's v2 widths do not add up)",
    deviations=(
        "stem: v3-style convs + mixed_5b (35x35x320), not Fig. 3's v4 stem (35x35x384)",
        "widths 320/1088/2080 and a 1x1 conv_7b to 1536, not Figs. 16-19's 384/1154/2048",
        "10/20/10 residual blocks, not Fig. 15's 5/10/5",
        "residual scales 0.17/0.10/0.20; the last C block (block8_10) unscaled and without ReLU (TF-slim)",
        "dropout defaults to 0 as in timm (the paper keeps 0.8: drop_rate=0.2)",
        "aux_logits=True adds TF-slim's aux head on block17_20 (off by default, as in timm)",
    ),
    **_COMMON,
)
def inception_resnet_v2(
    num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.0
) -> InceptionResNetV2:
    """Inception-ResNet-v2 as timm/TF-slim build it: 55,843,464 parameters for 1000 classes (no aux head)."""
    return InceptionResNetV2(num_classes, in_chans, aux_logits, drop_rate)
