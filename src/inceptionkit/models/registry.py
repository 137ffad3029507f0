"""Registry of network builders by name, each with its default configuration as data."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = (0.5, 0.5, 0.5)
INCEPTION_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ModelConfig:
    """What a network expects and where it comes from."""

    name: str
    builder: Callable[..., nn.Module]
    input_size: tuple[int, int, int]  # (C, H, W) the network was designed for
    source: str  # the reference this implementation follows, a few words (`inceptionkit list` shows it)
    paper: str  # the paper it comes from
    min_input: int = 32  # smallest side a forward pass accepts (default head)
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    family: str = ""
    deviations: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, ModelConfig] = {}


def register_model(name: str, **config) -> Callable:
    """Decorator: register ``builder`` under ``name`` with its :class:`ModelConfig` fields."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelConfig(name=name, builder=builder, **config)
        return builder

    return wrap


def list_models() -> list[str]:
    """Names of every registered network, sorted."""
    return sorted(_REGISTRY)


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(f"unknown model {name!r}{hint} (available: {', '.join(list_models())})")


def model_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of a registered network; an error lists the closest names."""
    if name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY[name]


def create_model(name: str, weights: str | None = None, **kwargs) -> nn.Module:
    """Build a registered network: ``create_model("inception_v3", num_classes=10, aux_logits=False)``.

    ``weights``: "DEFAULT", a source tag ("torchvision", "timm" ...) or a file path loads pretrained
    weights (see :mod:`inceptionkit.weights`); the network then carries their preprocessing and classes.
    """
    if weights is not None:
        from ..weights.load import load_source  # weights build on models, not the other way round

        return load_source(name, weights, **kwargs)
    config = model_config(name)
    accepted = inspect.signature(config.builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise TypeError(
                f"{name} does not take {', '.join(unknown)}; it takes: {', '.join(accepted)}"
            )
    model = config.builder(**kwargs)
    model.config = config
    model.init_kwargs = dict(kwargs)  # what it was built with, so that an exported file can rebuild it
    return model
