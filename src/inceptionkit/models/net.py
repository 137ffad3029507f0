"""The model contract every inceptionkit network shares.

A network is an ordered trunk of named stages (``conv1`` ... ``inception5b``), optional auxiliary
heads that tap named stages in training, and a head (global pool, dropout, linear ``fc``). It offers
timm's contract: ``forward_features``, ``forward_head(pre_logits=...)``, ``reset_classifier``,
``get_classifier`` and ``feature_info``.

Output types are the same everywhere: eval mode returns logits; train mode with aux heads returns
``InceptionOutputs(logits, aux)`` with ``aux`` a tuple of aux logits in tap order (lowest first).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..probe import LayerInputError, dims, locating


def refuse_aux(network: str, aux_logits: bool, why: str = "") -> None:
    """Networks without auxiliary heads still take ``aux_logits`` (the common builder arguments) but only False."""
    if aux_logits:
        raise ValueError(f"aux_logits=True: {network} has no auxiliary heads{why}; aux_logits must be False")


class InceptionOutputs(NamedTuple):
    """Train-mode output of a network with aux heads: main logits and a tuple of aux logits."""

    logits: torch.Tensor
    aux: tuple[torch.Tensor, ...]


class InceptionNet(nn.Module):
    """Base class: subclasses add their stages in order, then call ``_build_head`` and ``_set_trunk``."""

    def __init__(self):
        super().__init__()
        self.trunk: list[str] = []
        self.aux_taps: dict[str, str] = {}
        self.feature_info: list[dict] = []
        self.num_features = 0
        self.num_classes = 0
        self.drop_rate = 0.0
        self.in_chans = 0  # channels of the first stage's first conv (found by _set_trunk)
        self.min_input = 1  # smallest input side the trunk takes in eval mode; 1: not checked
        self.aux_min_input = 1  # smallest input side the aux heads take (they run in train mode)

    # --- construction helpers -------------------------------------------------------------
    def _set_trunk(self, names: list[str], aux_taps: dict[str, str] | None = None, min_input: int = 1,
                   aux_min_input: int = 1) -> None:
        """Declare the forward order of the stages, which stage feeds which aux head, and the smallest
        input sides the trunk (eval mode) and the aux heads (train mode) take, checked before a forward pass."""
        for name in names:
            if not hasattr(self, name):
                raise AttributeError(f"trunk stage {name!r} is not a module of {type(self).__name__}")
        self.trunk = list(names)
        self.aux_taps = {k: v for k, v in (aux_taps or {}).items() if getattr(self, v, None) is not None}
        first = next((m for m in getattr(self, names[0]).modules() if isinstance(m, nn.Conv2d)), None)
        self.in_chans = first.in_channels if first is not None else 0
        self.min_input, self.aux_min_input = min_input, aux_min_input

    def _build_head(self, num_features: int, num_classes: int, drop_rate: float) -> None:
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate!r}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 removes the classifier), got {num_classes!r}")
        self.num_features, self.num_classes, self.drop_rate = num_features, num_classes, drop_rate
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()

    @property
    def has_aux(self) -> bool:
        """True when the network was built with auxiliary heads."""
        return bool(self.aux_taps)

    # --- forward --------------------------------------------------------------------------
    def check_input(self, x: torch.Tensor, with_aux: bool = False) -> None:
        """Refuse an input of the wrong channels or too small a side before any layer runs, naming the
        stage or aux head that cannot take it. Inside :func:`inceptionkit.probe.locate_failure` the
        forward pass runs unchecked instead, so that the probe names the exact layer that fails."""
        if locating():
            return
        name, shape = type(self).__name__, dims(x.shape)
        if self.in_chans and (x.dim() != 4 or x.shape[1] != self.in_chans):
            raise LayerInputError(f"{name}: stage {self.trunk[0]!r} cannot take its input of shape {shape} "
                                  f"(batch first): it takes {self.in_chans} channels")
        side = min(x.shape[2:]) if x.dim() == 4 else 0
        if side < self.min_input:
            raise LayerInputError(f"{name}: an input of shape {shape} (batch first) is too small for its stages "
                                  f"({self.trunk[0]} ... {self.trunk[-1]}): they take at least "
                                  f"{self.min_input}x{self.min_input}")
        if with_aux and side < self.aux_min_input:
            heads = ", ".join(f"aux head {aux!r} (on {tap})" for tap, aux in self.aux_taps.items())
            raise LayerInputError(f"{name}: {heads} cannot take what an input of shape {shape} (batch first) "
                                  f"leaves: in train mode it takes at least {self.aux_min_input}x{self.aux_min_input}")

    def _run_trunk(self, x: torch.Tensor, collect_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self.check_input(x, collect_aux)
        aux = []
        for name in self.trunk:
            x = getattr(self, name)(x)
            if collect_aux and name in self.aux_taps:
                aux.append(getattr(self, self.aux_taps[name])(x))
        return x, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, before global pooling."""
        return self._run_trunk(x, collect_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, dropout and classify a feature map; ``pre_logits=True`` stops before ``fc``."""
        x = self.head_drop(torch.flatten(self.global_pool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | InceptionOutputs:
        with_aux = self.training and self.has_aux
        features, aux = self._run_trunk(x, collect_aux=with_aux)
        logits = self.forward_head(features)
        return InceptionOutputs(logits, tuple(aux)) if with_aux else logits

    # --- classifier -----------------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier (and every aux head's classifier) with fresh ones for ``num_classes``."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes!r}")
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        for aux_name in self.aux_taps.values():
            getattr(self, aux_name).reset_classifier(num_classes)
