"""BN-Inception (Ioffe & Szegedy 2015, "Batch Normalization", arXiv 1502.03167, Figure 5).

GoogLeNet with BatchNorm after every conv, each 5x5 replaced by two 3x3 and the grid reduced
inside modules 3c and 4e. Built like Cadene's ``bninception`` (a port of the Caffe model, the only
BN-Inception with public PyTorch weights), so its weights can be converted onto this layout.

Not to be confused with the v3 paper's "Inception-v2" (its Table 1 network). TF-slim's
``inception_v2`` is this network, with pool-proj 96 in 4c/4d and a separable stem conv.
"""

from __future__ import annotations

from torch import nn

from .blocks import BasicConv, check_channels
from .inception_v3 import FactorizedModule, GridReduction
from .net import InceptionNet, refuse_aux
from .registry import register_model
from .sizes import SizeRule

# 3c and 4e reduce with a padded 3x3/2 conv beside an unpadded 3x3/2 ceil-mode pool: they agree on even
# grids only, so the 28x28 grid (for 224) must be a multiple of 4: sides 32k-1 ... 32k+6.
BN_INCEPTION_SIZES = SizeRule(minimum=31, period=32, below=1, above=6)


class BNInception(InceptionNet):
    """BN-Inception as in Cadene's Caffe port.

    Stage names: ``conv1 maxpool1 conv2_reduce conv2 maxpool2``, then the paper's rows
    ``inception3a`` ... ``inception5b``. Convs keep a bias before BatchNorm (eps 1e-5), max pools
    use ``ceil_mode`` (Caffe's rounding). The convs and pools of 3c/4e agree in size only on even
    grids: sides from 1 under to 6 over a multiple of 32 work (224, 96, 128 ...), others are refused.
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.0):
        super().__init__()
        refuse_aux("BN-Inception", aux_logits, " (the Caffe/Cadene model has none)")
        check_channels(in_chans=in_chans)
        conv = dict(bias=True, eps=1e-5)  # the Caffe port: conv with bias, then BN
        # stem (224 -> 28)
        self.conv1 = BasicConv(in_chans, 64, 7, stride=2, **conv)  # 112
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 56
        self.conv2_reduce = BasicConv(64, 64, 1, **conv)
        self.conv2 = BasicConv(64, 192, 3, **conv)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 28
        reduce = dict(padding="same", ceil_mode=True, **conv)  # stride-2 modules, max + pass-through
        #                                   in  #1x1 #3x3red #3x3 dbl3x3red dbl3x3 pool_proj
        self.inception3a = FactorizedModule(192,   64,  64,  64,  64,  96,  32, **conv)  # 256
        self.inception3b = FactorizedModule(256,   64,  64,  96,  64,  96,  64, **conv)  # 320
        self.inception3c = GridReduction(320,           128, 160,  64,  96, **reduce)  # 576, 14x14
        self.inception4a = FactorizedModule(576,  224,  64,  96,  96, 128, 128, **conv)  # 576
        self.inception4b = FactorizedModule(576,  192,  96, 128,  96, 128, 128, **conv)  # 576
        self.inception4c = FactorizedModule(576,  160, 128, 160, 128, 160, 128, **conv)  # 608
        self.inception4d = FactorizedModule(608,   96, 128, 192, 160, 192, 128, **conv)  # 608
        self.inception4e = GridReduction(608,           128, 192, 192, 256, **reduce)  # 1056, 7x7
        self.inception5a = FactorizedModule(1056, 352, 192, 320, 160, 224, 128, **conv)  # 1024
        self.inception5b = FactorizedModule(1024, 352, 192, 320, 192, 224, 128, pool="max", **conv)  # 1024
        self._build_head(1024, num_classes, drop_rate)
        self._set_trunk(
            ["conv1", "maxpool1", "conv2_reduce", "conv2", "maxpool2",
             "inception3a", "inception3b", "inception3c", "inception4a", "inception4b", "inception4c",
             "inception4d", "inception4e", "inception5a", "inception5b"],
            stem=5, size_rule=BN_INCEPTION_SIZES,
        )
        self.feature_info = [
            dict(num_chs=64, reduction=2, module="conv1"),
            dict(num_chs=192, reduction=4, module="conv2"),
            dict(num_chs=320, reduction=8, module="inception3b"),
            dict(num_chs=608, reduction=16, module="inception4d"),
            dict(num_chs=1024, reduction=32, module="inception5b"),
        ]


@register_model(
    "bn_inception",
    input_size=(3, 224, 224),
    sizes=BN_INCEPTION_SIZES,
    pool_size=(7, 7),
    family="bn_inception",
    source="Cadene's bninception (the Caffe port)",
    paper="Ioffe & Szegedy 2015, Batch Normalization (arXiv 1502.03167), Figure 5",
    deviations=(
        "Pool-proj 128 in 4c/4d as the table's columns say, so 4c/4d output 608 and 4e 1056, not the printed 576/1024.",
        "11,295,240 parameters, not the paper's 13.6 M (neither public implementation reproduces it).",
        "Convs keep a bias before BatchNorm (eps 1e-5) and max pools round up (ceil_mode), as in the Caffe model.",
        "Avg-pool branches count the zero padding (count_include_pad), as in the Caffe model.",
        "Global average pool instead of the table's 7x7 avg pool (the same at 224).",
        "Default mean/std are ImageNet's (RGB, 0-1); Cadene's weights need BGR 0-255 minus (104, 117, 128).",
    ),
)
def bn_inception(
    num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.0
) -> BNInception:
    """BN-Inception, 11,295,240 parameters (1000 classes); no auxiliary head."""
    return BNInception(num_classes=num_classes, in_chans=in_chans, aux_logits=aux_logits, drop_rate=drop_rate)
