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


def refuse_aux(network: str, aux_logits: bool, why: str = "") -> None:
    """Networks without auxiliary heads still take ``aux_logits`` (the common builder arguments) but only False."""
    if aux_logits:
        raise ValueError(f"aux_logits=True: {network} has no auxiliary heads{why}; aux_logits must be False")


class StageInputError(ValueError, RuntimeError):
    """A trunk stage could not take its input (too small, wrong channels); names the stage and shape."""


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

    # --- construction helpers -------------------------------------------------------------
    def _set_trunk(self, names: list[str], aux_taps: dict[str, str] | None = None) -> None:
        """Declare the forward order of the stages and which stage feeds which aux head."""
        for name in names:
            if not hasattr(self, name):
                raise AttributeError(f"trunk stage {name!r} is not a module of {type(self).__name__}")
        self.trunk = list(names)
        self.aux_taps = {k: v for k, v in (aux_taps or {}).items() if getattr(self, v, None) is not None}

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
    def _run_trunk(self, x: torch.Tensor, collect_aux: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        aux = []
        where, shape = "", tuple(x.shape)
        try:
            for name in self.trunk:
                where, shape = f"stage {name!r}", tuple(x.shape)
                x = getattr(self, name)(x)
                if collect_aux and name in self.aux_taps:
                    where, shape = f"aux head {self.aux_taps[name]!r} (on {name})", tuple(x.shape)
                    aux.append(getattr(self, self.aux_taps[name])(x))
        except RuntimeError as exc:
            if isinstance(exc, (StageInputError, torch.OutOfMemoryError)):
                raise
            dims = "x".join(map(str, shape))
            raise StageInputError(
                f"{type(self).__name__}: {where} cannot take its input of shape {dims} (batch first): {exc}"
            ) from exc
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
