"""``create_model``: a registered network, fresh or with pretrained weights, as timm's ``create_model``.

Built here, where both the networks (:mod:`inceptionkit.models`) and their weights
(:mod:`inceptionkit.weights`) are visible, so neither imports the other's caller.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .models.registry import build_model, check_feature_request, shape_model
from .weights.load import asks_for_no_weights, load_source, warn_random_weights


def create_model(
    name: str,
    weights: str | None = None,
    *,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    global_pool: str | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered network: ``create_model("inception_v3", num_classes=10, aux_logits=False)``.

    ``weights``: "DEFAULT", a source tag ("torchvision", "timm" ...) or a file path loads pretrained
    weights (see :mod:`inceptionkit.weights`); the network then carries their preprocessing and classes.
    ``in_chans`` other than the file's adapts its first convolution as timm does (summed for one channel,
    repeated and rescaled for more). "random" (or "none") asks for no weights, as None does, with a
    warning that the result is a baseline. As in timm: ``global_pool`` ('avg', 'max', 'avgmax', or ''
    with ``num_classes=0``) sets the head's pooling, and ``features_only=True`` returns a
    :class:`~inceptionkit.models.features.FeatureNet` giving the feature maps of ``feature_info``
    (those at ``out_indices``; all by default).
    """
    check_feature_request(features_only, out_indices)
    if asks_for_no_weights(weights):
        warn_random_weights(name)
        weights = None
    if weights is None:
        return build_model(name, features_only=features_only, out_indices=out_indices, global_pool=global_pool,
                           **kwargs)
    return shape_model(load_source(name, weights, **kwargs), features_only=features_only, out_indices=out_indices,
                       global_pool=global_pool)
