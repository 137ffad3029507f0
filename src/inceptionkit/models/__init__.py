"""Every Inception network, built from the blocks in :mod:`inceptionkit.models.blocks`.

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
    create_model,
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
    "conv_branch",
    "create_model",
    "list_models",
    "model_config",
    "pool_branch",
    "register_model",
]
