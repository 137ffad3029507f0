"""The classifier head's global pooling, with timm's choices of ``global_pool``."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import BadValue

POOL_TYPES = ("avg", "max", "avgmax", "")  # "": no pooling (the feature map passes through, unflattened)


def check_pool(pool_type: str, num_classes: int) -> None:
    """Refuse an unknown pool type, and '' (no pooling) in front of a classifier."""
    if pool_type not in POOL_TYPES:
        raise BadValue(f"global_pool must be one of {', '.join(map(repr, POOL_TYPES))}, got {pool_type!r}")
    if pool_type == "" and num_classes > 0:
        raise BadValue(f"global_pool='' leaves the feature map unpooled, which a classifier cannot take: use it "
                         f"with num_classes=0 (got num_classes={num_classes})")


class GlobalPool(nn.Module):
    """Global average ('avg'), max ('max') or the mean of both ('avgmax') pooling to (B, C); '' passes the
    (B, C, H, W) map through. The width stays C, so ``num_features`` does not change."""

    def __init__(self, pool_type: str = "avg"):
        super().__init__()
        check_pool(pool_type, 0)
        self.pool_type = pool_type
        # pooling layers as modules, so that summaries and depth counts see them
        self.avg = nn.AdaptiveAvgPool2d(1) if pool_type in ("avg", "avgmax") else nn.Identity()
        self.max = nn.AdaptiveMaxPool2d(1) if pool_type in ("max", "avgmax") else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "":
            return x
        if self.pool_type == "avg":
            x = self.avg(x)
        elif self.pool_type == "max":
            x = self.max(x)
        else:
            x = 0.5 * (self.avg(x) + self.max(x))
        return torch.flatten(x, 1)

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}"
