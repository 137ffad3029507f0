"""A saved run, continued or evaluated: what a resume keeps and may change, data that moved, and
the state put back where the last checkpoint left it."""

from __future__ import annotations

import inspect
import os
from dataclasses import replace
from pathlib import Path

from ..data import DataSplits, data_location
from ..errors import BadValue, MissingFile
from ..models import model_config
from ..runs import Checkpoint, read_config
from . import distributed
from .config import MAY_CHANGE, TrainConfig, data_size, load_splits
from .precision import amp_name, resolve_amp


def _flag(name: str, value) -> str:
    """An option as the command line spells it: ``--lr 0.5``, ``--no-augment``, ``--input 3x16x16``."""
    flag = {"aux_logits": "--aux", "input_size": "--input"}.get(name, "--" + name.replace("_", "-"))
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    return f"{flag} {_value(name, value)}"


def _value(name: str, value) -> str:
    if isinstance(value, bool):
        return _flag(name, value)
    if value is None:
        return "no cap" if name == "max_steps" else "the network's default"
    return "x".join(map(str, value)) if name == "input_size" else str(value)


def _builder_default(model: str, key: str):
    parameter = inspect.signature(model_config(model).builder).parameters.get(key)
    return None if parameter is None or parameter.default is parameter.empty else parameter.default


def _differences(config: TrainConfig, saved: TrainConfig, meta: dict) -> list[str]:
    """Each option ``config`` sets to a value other than the run's, as ``--flag VALUE (the run uses X)``."""
    run_lr = saved.lr if saved.lr is not None else meta.get("recipe", {}).get("lr")
    kept = {"recipe": saved.recipe, "batch_size": saved.batch_size, "lr": run_lr, "amp": saved.amp,
            "channels_last": saved.channels_last, "seed": saved.seed, "augment": saved.augment,
            "max_steps": saved.max_steps, "input_size": data_size(saved), "weights": saved.weights,
            "train_stages": saved.train_stages}
    differ = []
    if config.model is not None and config.model != saved.model:
        differ.append(f"{config.model} (the run trains {saved.model})")
    for name, run_value in kept.items():
        given = getattr(config, name)
        if name == "input_size" and given is not None:
            given = tuple(given)
        if name == "amp" and given == "auto":  # what auto means on this machine
            given = amp_name(resolve_amp("auto", distributed.pick_device(config.device)))
        if given is not None and given != run_value:
            differ.append(f"{_flag(name, getattr(config, name))} (the run uses {_value(name, run_value)})")
    built = meta.get("model_kwargs", {})
    for key, given in config.model_kwargs.items():
        run_value = saved.model_kwargs.get(key, built.get(key, _builder_default(saved.model, key)))
        if given != run_value:
            differ.append(f"{_flag(key, given)} (the run uses {_value(key, run_value)})")
    return differ


def resumed_config(config: TrainConfig, resumed: Checkpoint, run: Path) -> TrainConfig:
    """The run's saved config, with :data:`MAY_CHANGE` and moved data (``config.data``) taken from ``config``.

    Every other option ``config`` sets (not None) to a value other than the run's is refused in
    one ValueError that names each, with the value the run keeps.
    """
    saved = TrainConfig(**resumed.meta["config"])
    differ = _differences(config, saved, resumed.meta)
    if config.out is not None and os.path.abspath(config.out) != os.path.abspath(run):
        differ.append(f"--out {config.out} (the run is in {run})")
    if differ:
        raise BadValue(f"a resumed run keeps its settings: {', '.join(differ)}; only --epochs, --data (the same "
                         f"classes, moved), --device, --workers, --download and --quiet may change")
    changes = {name: getattr(config, name) for name in MAY_CHANGE}
    changes["epochs"] = saved.epochs if config.epochs is None else config.epochs
    if config.data is not None:
        changes["data"] = data_location(config.data)
    return replace(saved, out=str(run), **changes)


# --- the run's data, which may have moved ------------------------------------------------------------


def _names(classes: list[str]) -> str:
    return ", ".join(classes) if len(classes) <= 12 else f"{', '.join(classes[:10])} ... ({len(classes)} in all)"


def _data_path(spec: str | None) -> str | None:
    """The folder or file a data spec names (None for the embedded digits and default locations)."""
    if spec is None or spec.strip().lower() == "digits":
        return None
    name, _, rest = spec.partition(":")
    if name.strip().lower() in ("cifar10", "fer2013"):
        return rest or None
    return spec


def load_run_data(config: TrainConfig, classes: list[str] | None, data_given: bool) -> DataSplits:
    """The data of a saved run (to resume or evaluate it), refused unless it has the run's ``classes``.

    ``data_given``: ``config.data`` is a new place the user named; otherwise an error loading the
    run's own data says how to point at data that moved.
    """
    where = _data_path(config.data)
    if not data_given and where is not None and not Path(where).expanduser().exists():
        raise MissingFile(f"the run's data {where} is not there any more: if it moved, "
                                f"pass --data WHERE_IT_IS_NOW (checked to have the run's classes)")
    try:
        data = load_splits(config)
    except (ValueError, FileNotFoundError) as exc:
        if data_given:
            raise
        kind = MissingFile if isinstance(exc, FileNotFoundError) else BadValue
        raise kind(f"{exc} (this is the data the run was trained on; if it moved, pass --data WHERE_IT_IS_NOW)") \
            from None
    if classes is not None and list(classes) != data.classes:
        raise BadValue(f"{data.name} has the classes {_names(data.classes)}, but the run was trained on "
                         f"{_names(list(classes))}: --data must name the run's data (moved) or data with its classes")
    return data


def latest_data(run_dir: str | Path, data: str | None) -> str | None:
    """Where a run's data was last: ``config.json`` is rewritten at every start, so after a resume
    with ``--data`` it names the new place, while ``best.json`` may still name the old one."""
    saved = read_config(run_dir) or {}
    return saved.get("data", data)
