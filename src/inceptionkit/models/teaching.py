"""The two Keras teaching networks: one inception module, flattened into dense layers.

Built exactly as the articles build them (ReLU, "same" padding, conv biases, no BN; softmax left
to the loss, so they return logits). The flatten head fixes the input size, so a wrong size is
an error that says the size the head needs.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import BadValue
from ..probe import LayerInputError
from .blocks import Concat, check_channels, conv_branch, pool_branch, running_eagerly
from .googlenet import InceptionModule
from .net import InceptionNet, refuse_aux
from .registry import register_model
from .sizes import SizeRule

__all__ = ["TeachingNet", "teaching_cifar10", "teaching_fer2013"]

_UNIT_MEAN, _UNIT_STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)  # the articles only scale pixels to [0, 1]


class TeachingNet(InceptionNet):
    """``inception`` module -> flatten -> optional hidden dense layers (ReLU) -> dropout -> ``fc``.

    ``forward_features`` runs on any size (the module is fully convolutional); the head needs
    exactly ``input_size`` (C, H, W). ``num_features`` is the module's channels, ``head_hidden_size``
    the width the head's flatten and dense layers give ``fc``. Its ``global_pool`` is 'flatten', or ''
    (with no classifier: the feature map passes through). Built without a classifier (``num_classes=0``)
    the network is its module, as Keras's ``include_top=False`` leaves it: ``global_pool`` starts as '',
    so that ``forward`` gives the feature map of ``num_features`` channels (timm's contract for
    ``num_classes=0``); 'flatten' brings back the dense layers' pre-logits. ``reset_classifier(0)`` keeps
    the head as it is, as in timm.
    """

    def __init__(
        self,
        name: str,
        module: Concat,
        input_size: tuple[int, int, int],
        hidden: tuple[int, ...] = (),
        num_classes: int = 10,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        if not 0.0 <= drop_rate < 1.0:
            raise BadValue(f"drop_rate must be in [0, 1), got {drop_rate!r}")
        if num_classes < 0:
            raise BadValue(f"num_classes must be >= 0 (0 removes the classifier), got {num_classes!r}")
        self.model_name, self.input_size = name, tuple(input_size)
        self.inception = module
        _, h, w = self.input_size
        self.feature_shape = (module.out_chs, h, w)
        layers, chs = OrderedDict(), module.out_chs * h * w
        for i, units in enumerate(hidden, 1):
            layers[f"dense{i}"] = nn.Linear(chs, units)
            layers[f"relu{i}"] = nn.ReLU()
            chs = units
        self.hidden = nn.Sequential(layers)
        self.num_features, self.head_hidden_size = module.out_chs, chs
        self.num_classes, self.drop_rate = num_classes, drop_rate
        self.pool_type = "flatten" if num_classes > 0 else ""
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        self._set_trunk(["inception"])
        self.feature_info = [dict(num_chs=module.out_chs, reduction=1, module="inception")]
        for m in self.modules():  # Keras defaults: Glorot-uniform kernels, zero biases
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    @torch.jit.unused
    def check_input(self, x: torch.Tensor, head: bool = True) -> None:
        """The trunk takes any size; the whole forward pass exactly ``input_size``."""
        if running_eagerly(x) and head and self.pool_type == "flatten" and tuple(x.shape[1:]) != self.input_size:
            raise LayerInputError(
                f"{self.model_name} needs {_dims(self.input_size)} input (its flatten head takes a "
                f"{_dims(self.feature_shape)} feature map), got {_dims(tuple(x.shape[1:]))}"
            )
        super().check_input(x, head)

    @torch.jit.unused
    def _check_features(self, x: torch.Tensor) -> None:
        if running_eagerly(x) and self.pool_type == "flatten" and tuple(x.shape[1:]) != self.feature_shape:
            raise LayerInputError(
                f"{self.model_name} needs {_dims(self.input_size)} input (its flatten head takes a "
                f"{_dims(self.feature_shape)} feature map), got a feature map {_dims(tuple(x.shape[1:]))}"
            )

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not torch.jit.is_scripting():
            self._check_features(x)
        if self.pool_type == "flatten":
            x = self.hidden(torch.flatten(x, 1))
        x = self.head_drop(x)
        return x if pre_logits else self.fc(x)

    def set_global_pool(self, global_pool: str) -> None:
        """'flatten' (the head's own) or '' (no head, with no classifier: the feature map comes out)."""
        self._check_pool(global_pool, self.num_classes)
        self.pool_type = global_pool

    def _check_pool(self, pool: str, num_classes: int) -> None:
        if pool not in ("flatten", ""):
            raise BadValue(f"{self.model_name} flattens its feature map into dense layers: global_pool may be "
                             f"'flatten' or '' (no head, with num_classes=0), got {pool!r}")
        if pool == "" and num_classes > 0:
            raise BadValue(f"global_pool='' leaves the feature map unflattened, which a classifier cannot take: "
                             f"use it with num_classes=0 (got num_classes={num_classes})")

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A fresh ``fc`` for ``num_classes`` (0: none); ``global_pool`` '' (with 0 classes) skips the flatten
        and dense layers, so that the feature map comes out."""
        if num_classes < 0:
            raise BadValue(f"num_classes must be >= 0, got {num_classes!r}")
        pool = self.pool_type if global_pool is None else global_pool
        self._check_pool(pool, num_classes)
        self.pool_type, self.num_classes = pool, num_classes
        self.fc = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


@register_model(
    "teaching_cifar10",
    input_size=(3, 32, 32),
    source="Keras article: one module, flatten, dense 10",
    paper="Szegedy et al. 2014, Going Deeper with Convolutions (arXiv 1409.4842)",
    sizes=SizeRule(32, exact=(32, 32)),
    pool_size=(32, 32),
    mean=_UNIT_MEAN,
    std=_UNIT_STD,
    crop_pct=1.0,
    family="teaching",
    deviations=(
        "one module and a flatten + dense head instead of a network: a teaching example, not GoogLeNet",
        "fixed 32x32 input (flatten head); returns logits, the article's softmax is in the loss",
    ),
)
def teaching_cifar10(
    num_classes: int = 10, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.0
) -> TeachingNet:
    """One reduced module, 64 filters in every conv: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | pool -> 1x1; flatten; dense."""
    refuse_aux("teaching_cifar10", aux_logits)
    check_channels(in_chans=in_chans)
    module = InceptionModule(in_chans, 64, 64, 64, 64, 64, 64, bn=False)
    return TeachingNet("teaching_cifar10", module, (in_chans, 32, 32), (), num_classes, drop_rate)


@register_model(
    "teaching_fer2013",
    input_size=(1, 48, 48),
    source="Keras article: one module, dense 1200-600-150-7",
    paper="Szegedy et al. 2014, Going Deeper with Convolutions (arXiv 1409.4842)",
    sizes=SizeRule(48, exact=(48, 48)),
    pool_size=(48, 48),
    mean=(0.0,),
    std=(1.0,),
    crop_pct=1.0,
    family="teaching",
    deviations=(
        "one module without the plain 1x1 branch and a flatten + dense head: a teaching example, not GoogLeNet",
        "fixed 48x48 input (flatten head); returns logits, the article's softmax is in the loss",
    ),
)
def teaching_fer2013(
    num_classes: int = 7, in_chans: int = 1, aux_logits: bool = False, drop_rate: float = 0.0
) -> TeachingNet:
    """One module, 10 filters: 1x1 -> 3x3 | 1x1 -> 5x5 | pool -> 1x1 (no plain 1x1); flatten; dense 1200-600-150."""
    refuse_aux("teaching_fer2013", aux_logits)
    check_channels(in_chans=in_chans)
    # branches keep InceptionModule's names, so branch2 is the 3x3 path in every module
    module = Concat({
        "branch2": conv_branch(in_chans, (10, 1), (10, 3), bn=False),
        "branch3": conv_branch(in_chans, (10, 1), (10, 5), bn=False),
        "branch4": pool_branch(in_chans, "max", 3, 1, 1, proj=10, bn=False),
    })
    return TeachingNet("teaching_fer2013", module, (in_chans, 48, 48), (1200, 600, 150), num_classes, drop_rate)
