"""Registry of network builders by name, each with its default configuration as data."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from ..errors import BadArgument, BadValue
from ..normalization import IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD  # noqa: F401  (used by the families)
from .features import FeatureNet
from .sizes import SizeRule


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


def build_model(
    name: str,
    *,
    features_only: bool = False,
    out_indices: Sequence[int] | None = None,
    global_pool: str | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered network with fresh weights: ``build_model("inception_v3", num_classes=10)``.

    ``inceptionkit.create_model`` takes the same arguments and ``weights=`` besides. As in timm:
    ``global_pool`` ('avg', 'max', 'avgmax', or '' with ``num_classes=0``) sets the head's pooling, and
    ``features_only=True`` returns a :class:`~inceptionkit.models.features.FeatureNet` giving the
    feature maps of ``feature_info`` (those at ``out_indices``; all by default).
    """
    if "weights" in kwargs:
        raise BadArgument("inceptionkit.models.build_model builds fresh networks; for pretrained weights call "
                          f"inceptionkit.create_model({name!r}, weights=...)")
    check_feature_request(features_only, out_indices)
    return shape_model(_build(name, kwargs), features_only=features_only, out_indices=out_indices,
                       global_pool=global_pool)


def check_feature_request(features_only: bool, out_indices: Sequence[int] | None) -> None:
    """Refuse ``out_indices`` without ``features_only`` (timm's rule)."""
    if out_indices is not None and not features_only:
        raise BadValue("out_indices chooses the maps of a features_only=True model; pass features_only=True")


def shape_model(model: nn.Module, *, features_only: bool = False, out_indices: Sequence[int] | None = None,
                global_pool: str | None = None) -> nn.Module:
    """``model`` with its head's pooling set, or wrapped to give its feature maps (timm's keywords)."""
    if global_pool is not None:
        model.set_global_pool(global_pool)
    return FeatureNet(model, out_indices) if features_only else model


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
