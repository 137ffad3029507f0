"""Every Inception network, built from the blocks in :mod:`inceptionkit.models.blocks` (fresh weights:
``inceptionkit.create_model`` adds pretrained ones).

Importing this package registers each family's builders in the registry.
"""

from . import (  # noqa: F401  (register)
    bn_inception,
    googlenet,
    inception_resnet,
    inception_v3,
    inception_v4,
    teaching,
)
from .blocks import BasicConv, Branch, Concat, Residual, conv_branch, pool_branch
from .net import InceptionNet, InceptionOutputs
from .registry import (
    ModelConfig,
    build_model,
    list_models,
    model_config,
    register_model,
)

__all__ = [
    "BasicConv",
    "Branch",
    "Concat",
    "InceptionNet",
    "InceptionOutputs",
    "ModelConfig",
    "Residual",
    "build_model",
    "conv_branch",
    "list_models",
    "model_config",
    "pool_branch",
    "register_model",
]
