"""ImageNet-1K's class names, from torchvision's own metadata (no download)."""

from __future__ import annotations

import functools

from torchvision.models._meta import _IMAGENET_CATEGORIES


@functools.cache
def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1K class names in the order of the logits ('tench', 'goldfish', ...)."""
    return list(_IMAGENET_CATEGORIES)
