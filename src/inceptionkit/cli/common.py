"""Shared helpers of the CLI: user errors become one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from typing import Annotated

import typer
from rich.console import Console

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:  # piped or captured: don't squeeze tables to 80
    console = Console(width=140)
err_console = Console(stderr=True)


def main_process() -> bool:
    """False on the other ranks of a torchrun job, so that an error is printed once."""
    return os.environ.get("RANK", "0") == "0"


def user_errors(fn):
    """Turn errors raised for bad input (ValueError, TypeError, a file missing, unwritable or of the wrong
    kind) into ``error: ...``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError, FileNotFoundError, PermissionError, IsADirectoryError,
                NotADirectoryError) as exc:
            if main_process():
                err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def parse_size(text: str) -> tuple[int, ...]:
    """'3x299x299' -> (3, 299, 299)."""
    try:
        size = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"input size must look like 3x224x224, got {text!r}") from None
    if len(size) != 3 or min(size) <= 0:
        raise ValueError(f"input size must be three positive numbers CxHxW, got {text!r}")
    return size


# --- constructor options, shared by every command that builds a network ---------------------------
# Each command declares these as parameters (``variant: VariantOpt = None`` ...) and passes them to
# :func:`model_kwargs`; None means "the network's default", so only what the user typed is passed on.

VariantOpt = Annotated[str | None, typer.Option("--variant", help="googlenet: paper or torchvision")]
WidthOpt = Annotated[float | None, typer.Option("--width", help="filter multiplier (googlenet, googlenet_cifar)")]
InChansOpt = Annotated[int | None, typer.Option(
    "--in-chans", help="input channels the network is built for; default: the channels of --input, else 3")]
AuxOpt = Annotated[bool | None, typer.Option(
    "--aux/--no-aux", help="build the auxiliary heads; default: the network's")]
DropRateOpt = Annotated[float | None, typer.Option("--drop-rate", help="dropout before the classifier")]


def model_kwargs(variant: str | None = None, width: float | None = None, in_chans: int | None = None,
                 aux: bool | None = None, drop_rate: float | None = None) -> dict:
    """The constructor options the user gave, as ``create_model`` keyword arguments."""
    given = dict(variant=variant, width=width, in_chans=in_chans, aux_logits=aux, drop_rate=drop_rate)
    return {key: value for key, value in given.items() if value is not None}


def channels_for(size: tuple[int, int, int], kwargs: dict, default: tuple[int, int, int]) -> dict:
    """``kwargs`` with ``in_chans`` taken from an ``--input`` size whose channels differ from the default.

    ``--in-chans`` and ``--input`` that disagree are refused, naming both.
    """
    if "in_chans" in kwargs:
        if kwargs["in_chans"] != size[0]:
            raise ValueError(f"--in-chans {kwargs['in_chans']} disagrees with --input "
                             f"{'x'.join(map(str, size))} ({size[0]} channel{'s' if size[0] != 1 else ''})")
        return kwargs
    return kwargs if size[0] == default[0] else {**kwargs, "in_chans": size[0]}


def build_for_size(name: str, size: tuple[int, int, int] | None, kwargs: dict, device: str = "meta"):
    """``(model, input size)``: the network built with ``kwargs`` for ``size`` (default: its own).

    On the meta device by default: shapes and counts without allocating or initialising weights.
    """
    import torch

    from ..models import create_model, model_config

    default = model_config(name).input_size
    size = size or (kwargs.get("in_chans", default[0]), *default[1:])
    kwargs = channels_for(size, kwargs, default)
    with torch.device(device):
        return create_model(name, **kwargs), size


@contextlib.contextmanager
def explained_input(name: str, in_chans: int | None = None):
    """Turn a LayerInputError (a layer that cannot take its input) into one message that also says
    what the network takes: its channels and its smallest input side."""
    from ..models import model_config
    from ..probe import LayerInputError, dims

    try:
        yield
    except LayerInputError as exc:
        config = model_config(name)
        raise ValueError(f"{exc}\n{name} takes {in_chans or config.input_size[0]} channels and "
                         f"{config.describe_sizes()} pixels (default {dims(config.input_size)})") from None


def comma_list(text: str, what: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """``a,b,c`` as a tuple (spaces and empty parts dropped); refused when empty or, with ``allowed``, unknown."""
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        raise ValueError(f"{what} is empty")
    if allowed is not None:
        unknown = [item for item in items if item not in allowed]
        if unknown:
            raise ValueError(f"{what}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return items


MODEL_HELP = "NAME[:SOURCE] (inception_v3:torchvision), a run folder or a weights file"
WEIGHTS_HELP = "with --model NAME: a source (torchvision, timm, DEFAULT) or a weights file"


def network_with_weights(model: str, weights: str | None):
    """The network a ``--model [--weights]`` command (lens, retrain) works on, with its weights, in eval mode."""
    from ..models import create_model
    from ..weights.load import open_weights

    net = open_weights(model) if weights is None else create_model(model, weights=weights)
    return net.eval()


@contextlib.contextmanager
def quiet_libraries():
    """Python warnings and torch's log warnings (the quantizer's and compiler's notes to their
    developers: "Enum subclass ... register_constant() is deprecated", "No CUDA runtime is found")
    silenced while the block runs; errors still show."""
    loggers = [logging.getLogger(name) for name in ("torch", "torch.utils")]  # torch resets its own on imports
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
