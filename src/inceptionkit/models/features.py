"""``create_model(..., features_only=True)``: a network's trunk returning its feature maps, as timm's
FeatureListNet does, for detection and segmentation backbones.

The features model holds the network's own stage modules under their own names (it *is* a ModuleDict
of them), so state_dict keys are the network's: its weights load into it directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import List

import torch
from torch import nn

from ..errors import BadValue
from .blocks import running_eagerly
from .sizes import check_input


class FeatureInfo:
    """The chosen feature levels: a dict per level (``num_chs``, ``reduction``, ``module``, ``index``),
    with timm's accessors ``channels()``, ``reduction()`` and ``module_name()``."""

    def __init__(self, levels: list[dict]):
        self.info = levels

    def channels(self) -> list[int]:
        return [level["num_chs"] for level in self.info]

    def reduction(self) -> list[int]:
        return [level["reduction"] for level in self.info]

    def module_name(self) -> list[str]:
        return [level["module"] for level in self.info]

    def __getitem__(self, index: int) -> dict:
        return self.info[index]

    def __len__(self) -> int:
        return len(self.info)

    def __iter__(self):
        return iter(self.info)

    def __repr__(self) -> str:
        return f"FeatureInfo({self.info})"


def feature_indices(available: int, out_indices: Sequence[int] | None) -> list[int]:
    """``out_indices`` as sorted non-negative levels (negative counts from the last); all by default."""
    if out_indices is None:
        return list(range(available))
    if isinstance(out_indices, int) or not all(isinstance(i, int) and not isinstance(i, bool) for i in out_indices):
        raise BadValue(f"out_indices must be a sequence of feature levels (ints), got {out_indices!r}")
    wrong = [i for i in out_indices if not -available <= i < available]
    if wrong or not out_indices:
        raise BadValue(f"out_indices {tuple(out_indices)}: the network has {available} feature levels, "
                         f"0 ... {available - 1} (or -{available} ... -1)")
    return sorted({i % available for i in out_indices})


def feature_take_indices(available: int, indices: int | Sequence[int] | None = None) -> tuple[list[int], int]:
    """timm's ``feature_take_indices`` for ``forward_intermediates``: ``indices`` an int n is the last n
    levels, a sequence those levels (negative from the last, kept in the order and number given), None
    all of them. Returns the levels and the deepest."""
    if indices is None:
        indices = available
    if isinstance(indices, int) and not isinstance(indices, bool):
        if not 0 < indices <= available:
            raise BadValue(f"indices={indices}: the last n feature levels, n from 1 to {available}")
        return list(range(available - indices, available)), available - 1
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence) or not indices or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise BadValue(f"indices must be a number of levels or a sequence of feature levels (ints), got {indices!r}")
    wrong = [i for i in indices if not -available <= i < available]
    if wrong:
        raise BadValue(f"indices {tuple(indices)}: the network has {available} feature levels, "
                       f"0 ... {available - 1} (or -{available} ... -1)")
    levels = [i % available for i in indices]
    return levels, max(levels)


class FeatureNet(nn.ModuleDict):
    """The stages of ``model`` up to its deepest chosen feature level; ``forward`` returns the maps of
    the levels ``out_indices`` of ``model.feature_info``, shallowest first."""

    __jit_unused_properties__ = ["default_cfg"]

    def __init__(self, model: nn.Module, out_indices: Sequence[int] | None = None):
        levels = feature_indices(len(model.feature_info), out_indices)
        info = [dict(model.feature_info[i], index=i) for i in levels]
        names = [level["module"] for level in info]
        last = max(model.trunk.index(name) for name in names)
        super().__init__({name: getattr(model, name) for name in model.trunk[:last + 1]})
        self.return_layers = names
        self.feature_info = FeatureInfo(info)
        self.network = type(model).__name__
        self.in_chans, self.size_rule = model.in_chans, model.size_rule
        self.pretrained_cfg = dict(getattr(model, "pretrained_cfg", {}), feature_info=info)
        self.config = getattr(model, "config", None)

    @property
    def default_cfg(self) -> dict:
        return self.pretrained_cfg

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        if not torch.jit.is_scripting():
            self.check_input(x)
        features: List[torch.Tensor] = []
        for name, module in self.items():
            x = module(x)
            if name in self.return_layers:
                features.append(x)
        return features

    @torch.jit.unused
    def check_input(self, x: torch.Tensor) -> None:
        """The network's own check, before any stage runs (eager only)."""
        if not running_eagerly(x):
            return
        stages = list(self.keys())
        check_input(x, f"{self.network} (features)", stages[0], stages[-1], self.in_chans, self.size_rule)
