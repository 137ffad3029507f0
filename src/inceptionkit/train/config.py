"""What a run does (:class:`TrainConfig`) and what follows from it alone: the input size, the
network's constructor arguments and the data."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..data import DataSplits, load_data
from ..errors import BadValue
from ..factory import create_model
from ..models import model_config
from ..weights.preprocessing import Preprocessing, preprocessing_of
from .recipes import Recipe, get_recipe


@dataclass
class TrainConfig:
    """What a run does. A None takes a new run's default (:data:`DEFAULTS`, the recipe's, the network's);
    with ``fit(config, resume=RUN)`` a None means "as the run has it", and a value that differs from
    the run's is refused (only :data:`MAY_CHANGE` and data that moved may differ)."""

    model: str | None = None  # None: googlenet_cifar
    model_kwargs: dict = field(default_factory=dict)
    weights: str | None = None  # start from these weights (a tag, file or run, as create_model takes); None: random
    train_stages: int | None = None  # only the last N trunk stages with weights (and the head) learn; None: all
    input_size: tuple[int, int, int] | None = None  # (C, H, W) images are resized to; None: the model's
    data: str | None = None  # None: the embedded digits; a folder or file is saved as an absolute path
    recipe: str | None = None  # None: fast
    epochs: int | None = None  # None: the recipe's
    batch_size: int | None = None  # global batch (split over torchrun processes); None: the recipe's
    lr: float | None = None  # None: the recipe's
    amp: str | None = None  # auto, bf16, fp16 or none; None: auto
    channels_last: bool | None = None  # None: True
    seed: int | None = None  # None: 0
    out: str | None = None  # run folder; None: runs/<model>-<data>
    device: str = "auto"
    workers: int = 0
    augment: bool | None = None  # None: True
    max_steps: int | None = None  # cap on optimizer steps per epoch (smoke runs, tests)
    progress: bool = True  # report progress to fit's ``report`` callback
    download: bool = False

    def with_defaults(self) -> TrainConfig:
        """A copy with the new-run default in every field of :data:`DEFAULTS` left None."""
        return replace(self, **{key: value for key, value in DEFAULTS.items() if getattr(self, key) is None})


DEFAULTS = {"model": "googlenet_cifar", "recipe": "fast", "amp": "auto", "channels_last": True, "seed": 0,
            "augment": True}
MAY_CHANGE = ("epochs", "device", "workers", "download", "progress")  # besides data that moved


def data_size(config: TrainConfig) -> tuple[int, int, int]:
    """(C, H, W) of the run's images: ``input_size``, or the weights' (``weights``) or network's, with
    the channels it is built for."""
    if config.input_size:
        size = tuple(config.input_size)
    elif config.weights:
        size = weights_preprocessing(config.model, config.weights).input_size
    else:
        size = model_config(config.model).input_size
    in_chans = config.model_kwargs.get("in_chans", size[0])
    return (in_chans, size[1], size[2])


def network_kwargs(config: TrainConfig, num_classes: int | None) -> dict:
    """The run's ``create_model`` arguments: its own, the class count (None: the network's default)
    and the input channels. Saved in every checkpoint's meta, so that the network can be rebuilt."""
    kwargs = dict(config.model_kwargs)
    if num_classes is not None:
        kwargs.setdefault("num_classes", num_classes)
    kwargs.setdefault("in_chans", data_size(config)[0])
    return kwargs


def recipe_of(config: TrainConfig) -> Recipe:
    """The run's recipe, with the config's epochs, batch size and lr where it sets them."""
    return get_recipe(config.recipe, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr)


def load_splits(config: TrainConfig) -> DataSplits:
    """The run's data, sized and normalised for its network (or, with ``weights``, as the weights expect)."""
    cfg = model_config(config.model)
    mean, std, crop_pct, interpolation = cfg.mean, cfg.std, cfg.crop_pct, cfg.interpolation
    if config.weights:
        prep = weights_preprocessing(config.model, config.weights)
        if prep.value_range != (0.0, 1.0) or prep.colour == "BGR":
            raise BadValue(f"weights {config.weights} expect {prep.describe()}: the data sets here give RGB in "
                             f"[0, 1]; build the data with that preprocessing and pass it to fit(config, data=...)")
        mean, std, crop_pct, interpolation = prep.mean, prep.std, prep.crop_pct, prep.interpolation
    return load_data(config.data, data_size(config), mean=mean, std=std, augment=config.augment,
                     seed=config.seed, download=config.download, crop_pct=crop_pct, interpolation=interpolation)


def weights_preprocessing(model: str, weights: str) -> Preprocessing:
    """What images ``model`` with ``weights`` expects (the weights' own preprocessing)."""
    path = Path(weights).expanduser()
    return _preprocessing(model, weights, path.stat().st_mtime_ns if path.is_file() else 0)


@functools.lru_cache(maxsize=4)
def _preprocessing(model: str, weights: str, version: int) -> Preprocessing:
    return preprocessing_of(create_model(model, weights=weights))
