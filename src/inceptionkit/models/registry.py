"""Registry of network builders by name, each with its default configuration as data."""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from ..errors import BadArgument, BadValue, RandomWeightsWarning
from .sizes import SizeRule

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
    sizes: SizeRule = SizeRule()  # input sides a forward pass takes (the default build, train and eval mode)
    pool_size: tuple[int, int] = (1, 1)  # the final feature map at input_size
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    interpolation: str = "bilinear"
    crop_pct: float = 0.875
    family: str = ""
    deviations: tuple[str, ...] = field(default_factory=tuple)
    variant_sizes: Mapping[str, SizeRule] = field(default_factory=dict)  # where a variant takes other sizes

    @property
    def min_input(self) -> int:
        """The smallest input side of the default build."""
        return self.sizes.minimum

    def brief_sizes(self) -> str:
        """The input sides in a few characters, per variant where they differ: 'paper >=31, torchvision >=15'."""
        if not self.variant_sizes:
            return self.sizes.brief()
        return ", ".join(f"{v} {rule.brief()}" for v, rule in self.variant_sizes.items())

    def describe_sizes(self) -> str:
        """The input sizes in words, per variant where they differ: 'at least 75x75'."""
        if not self.variant_sizes:
            return self.sizes.describe()
        return "; ".join(f"variant={v!r}: {rule.describe()}" for v, rule in self.variant_sizes.items())


_REGISTRY: dict[str, ModelConfig] = {}


def register_model(name: str, **config) -> Callable:
    """Decorator: register ``builder`` under ``name`` with its :class:`ModelConfig` fields."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise BadValue(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelConfig(name=name, builder=builder, **config)
        return builder

    return wrap


def list_models() -> list[str]:
    """Names of every registered network, sorted."""
    return sorted(_REGISTRY)


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return BadValue(f"unknown model {name!r}{hint} (available: {', '.join(list_models())})")


def model_config(name: str) -> ModelConfig:
    """The :class:`ModelConfig` of a registered network; an error lists the closest names."""
    if name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY[name]


RANDOM_WEIGHTS = ("random", "none")  # what a user types for no weights at all


def asks_for_no_weights(weights) -> bool:
    """``weights`` is "random" or "none" (any case): an untrained baseline, not a source of weights."""
    return weights is not None and str(weights).strip().lower() in RANDOM_WEIGHTS


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
    "random" (or "none") asks for no weights, as None does, with a warning that the result is a baseline.
    As in timm: ``global_pool`` ('avg', 'max', 'avgmax', or '' with ``num_classes=0``) sets the head's
    pooling, and ``features_only=True`` returns a :class:`~inceptionkit.models.features.FeatureNet`
    giving the feature maps of ``feature_info`` (those at ``out_indices``; all by default).
    """
    if out_indices is not None and not features_only:
        raise BadValue("out_indices chooses the maps of a features_only=True model; pass features_only=True")
    if asks_for_no_weights(weights):
        warnings.warn(f"{name} with random weights: a baseline to compare trained weights against",
                      RandomWeightsWarning, stacklevel=2)
        weights = None
    if weights is not None:
        from ..weights.load import (
            load_source,  # weights build on models, not the other way round
        )

        model = load_source(name, weights, **kwargs)
    else:
        model = _build(name, kwargs)
    if global_pool is not None:
        model.set_global_pool(global_pool)
    if features_only:
        from .features import FeatureNet

        return FeatureNet(model, out_indices)
    return model


def _build(name: str, kwargs: dict) -> nn.Module:
    config = model_config(name)
    accepted = inspect.signature(config.builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise BadArgument(
                f"{name} does not take {', '.join(unknown)}; it takes: {', '.join(accepted)}"
            )
    model = config.builder(**kwargs)
    model.config = config
    model.init_kwargs = dict(kwargs)  # what it was built with, so that an exported file can rebuild it
    model.pretrained_cfg = default_pretrained_cfg(config, model)
    return model


def default_pretrained_cfg(config: ModelConfig, model: nn.Module) -> dict:
    """timm's ``pretrained_cfg`` keys for a network without weights; loading weights adds theirs."""
    in_chans = getattr(model, "in_chans", 0) or config.input_size[0]
    rule = getattr(model, "size_rule", config.sizes)
    first = model.trunk[0] if getattr(model, "trunk", None) else ""
    first_conv = [f"{first}.{n}" if n else first for n, m in getattr(model, first).named_modules()
                  if isinstance(m, nn.Conv2d) and m.in_channels == in_chans] if first else []
    return {
        "architecture": config.name,
        "tag": "",
        "url": "",
        "num_classes": getattr(model, "num_classes", 0),
        "input_size": (in_chans, *config.input_size[1:]),
        "min_input_size": (in_chans, rule.minimum, rule.minimum),
        "fixed_input_size": config.sizes.exact is not None,
        "pool_size": config.pool_size,
        "crop_pct": config.crop_pct,
        "interpolation": config.interpolation,
        "mean": config.mean,
        "std": config.std,
        "first_conv": first_conv[0] if len(first_conv) == 1 else tuple(first_conv),
        "classifier": "fc",
        "license": "",
        "paper": config.paper,
    }
