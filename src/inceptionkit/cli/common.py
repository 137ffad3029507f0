"""Shared helpers of the CLI: errors as one clear line (exit code 2 for bad input, 1 for a bug), options
every command shares."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from pathlib import Path
from typing import Annotated

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from ..errors import BadValue

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:  # piped or captured: don't squeeze tables to 80
    console = Console(width=140)
err_console = Console(stderr=True)


def main_process() -> bool:
    """False on the other ranks of a torchrun job, so that an error is printed once."""
    return os.environ.get("RANK", "0") == "0"


DEBUG_ENV = "INCEPTIONKIT_DEBUG"


_debug = {"on": False}  # --debug of the command being run (set by the group's callback at every call)


def set_debug(on: bool) -> None:
    _debug["on"] = bool(on)


def debugging() -> bool:
    """``--debug`` given, or ``INCEPTIONKIT_DEBUG`` set to anything but empty or 0."""
    return _debug["on"] or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def user_errors(fn):
    """Report what went wrong in one line, never a traceback (but under ``--debug``).

    The input at fault (:class:`~inceptionkit.errors.UserError`) or the system refusing (an ``OSError``:
    a file missing, unwritable, a full disk): ``error: ...``, exit code 2. Anything else is a bug of
    inceptionkit: ``internal error (a bug): ...`` and how to see the traceback, exit code 1.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..errors import InceptionkitWarning, UserError

        try:
            with warnings.catch_warnings():  # each command shows each of our warnings once, however often it runs
                warnings.filterwarnings("default", category=InceptionkitWarning)
                return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.TyperException):  # typer reports its own
            raise
        except KeyboardInterrupt:  # the long commands say what they kept themselves
            raise interrupted("nothing was saved", "run the command again") from None
        except (UserError, OSError) as exc:
            if debugging():
                raise
            if main_process():
                err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except Exception as exc:
            if debugging():
                raise
            if main_process():
                err_console.print(f"[bold red]internal error (a bug):[/] {type(exc).__name__}: {escape(str(exc))}\n"
                                  f"Run again with --debug (or {DEBUG_ENV}=1) to see the traceback, and please "
                                  f"report it.", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper


# --- one convention for every command ---------------------------------------------------------------
# The network (or its weights) comes first, as a positional argument; every output is -o/--out;
# --channels is a list or range of channel numbers. Older spellings are rewritten here, with a note,
# for one release.

NETWORK_FIRST = ("activations", "visualize", "examples", "dream", "retrain")  # were --model NAME
RENAMED = {  # command -> {old option: new option}
    **{name: {"--output": "--out"} for name in ("activations", "visualize", "examples", "dream", "draw", "export")},
    "microscope": {"--output": "--out", "--channels": "--per-branch"},
    "tour": {"--channels": "--per-branch"},
    "eval": {"--model": "--network"},
}


def modernize(command: str, args: list[str]) -> tuple[list[str], list[str]]:
    """``args`` of ``command`` in today's spelling, and a note for each older spelling rewritten."""
    args, notes, renamed = list(args), [], RENAMED.get(command, {})
    out, moved, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            out += args[i:]
            break
        name, eq, value = arg.partition("=")
        if command in NETWORK_FIRST and name == "--model":
            network = value if eq else (args[i + 1] if i + 1 < len(args) else None)
            if network is None:
                out.append(arg)  # let the parser say that a value is missing
                break
            moved.append(network)
            notes.append(f"`{command} --model {network}` is now `{command} {network}` (the network first)")
            i += 1 if eq else 2
            continue
        if name in renamed:
            notes.append(f"{name} is now {renamed[name]}")
            out.append(renamed[name] + (eq + value if eq else ""))
        else:
            out.append(arg)
        i += 1
    return moved + out, notes


def _metavar(param) -> str:
    """What help shows after an option or argument: nothing after a flag, NAME for an argument, the
    value's kind (INTEGER, FLOAT, TEXT, PATH) after an option."""
    if getattr(param, "is_flag", False):
        return ""
    if param.param_type_name == "argument":
        return param.name.upper()
    annotation = param.type_descriptor.annotation
    kind = next((arg for arg in getattr(annotation, "__args__", ()) if arg is not type(None)), annotation)
    kind = next(iter(getattr(kind, "__args__", ())), kind)  # list[str] -> str
    return {int: "INTEGER", float: "FLOAT", bool: ""}.get(kind, "PATH" if kind is Path else "TEXT")


def _plain(params: list) -> list:
    """``params`` with plain help labels (see :func:`_metavar`); arguments show no type column."""
    for param in params:
        if param.metavar is None:
            param.metavar = _metavar(param)
        if param.param_type_name == "argument":
            param.display_type_rich = lambda ctx: None
    return params


class Command(typer.core.TyperCommand):
    """A command whose help reads plainly: ``--quiet`` (no ``<bool>``), ``MODEL`` (no ``{model}``)."""

    def get_params(self, ctx):
        return _plain(super().get_params(ctx))

    def collect_usage_pieces(self, ctx) -> list[str]:
        """``[OPTIONS] MODEL [IMAGE]``: required arguments bare, optional ones in brackets."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                pieces.append(param.metavar if param.required else f"[{param.metavar}]")
        return pieces


class Group(typer.core.TyperGroup):
    """The command line's group: older spellings of options rewritten with a note (:func:`modernize`)."""

    def get_params(self, ctx):
        return _plain(super().get_params(ctx))

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None:
            rest, notes = modernize(name, rest)
            if notes and main_process():
                for note in notes:
                    err_console.print(f"note: {note}; the old spelling goes in the next release", highlight=False,
                                      soft_wrap=True)
        return name, command, rest


def show_warnings_as_lines() -> None:
    """inceptionkit's own warnings (random weights, a tiny image ...) printed as one ``warning: ...`` line
    each, once per message; other libraries' warnings as Python shows them."""
    from ..errors import InceptionkitWarning

    shown = warnings.showwarning
    if getattr(shown, "inceptionkit", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, InceptionkitWarning):
            if main_process():
                err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
        else:
            shown(message, category, filename, lineno, file, line)

    show.inceptionkit = True
    warnings.showwarning = show


class Bars:
    """The progress of a long command, from the library's ``progress(what, done, total)`` calls.

    On a terminal, one bar per phase (``what``) with its count, rate and time left, and a line when the
    phase ends; elsewhere (a pipe, a log file) only that line; with ``quiet``, nothing. With
    ``every=SECONDS``, no bar but a line at most that often with the count and the time left, each
    starting with ``prefix`` (each rank of a torchrun job prints its own). Use it as a context manager
    so that an open bar is closed on any exit.
    """

    def __init__(self, quiet: bool = False, every: float | None = None, prefix: str = ""):
        import sys

        self.quiet, self.terminal = quiet, sys.stderr.isatty() and every is None
        self.every, self.prefix, self.last_line = every, prefix, 0.0
        self.bar, self.what, self.started, self.done, self.total = None, None, 0.0, 0, 0

    def __call__(self, what: str, done: int, total: int) -> None:
        import time

        if self.quiet:
            return
        now = time.perf_counter()
        if what != self.what:
            self.close()
            self.what, self.started, self.last_line = what, now, now
            if self.terminal:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=what, leave=False, dynamic_ncols=True)
        self.done, self.total = done, total
        if self.bar is not None:
            self.bar.total = total
            self.bar.update(done - self.bar.n)
        if total and done >= total:
            self.close()
        elif self.every is not None and now - self.last_line >= self.every and done:
            self.last_line = now
            left = (now - self.started) * (total - done) / done
            err_console.print(f"{self.prefix}{what}: {done}/{total} ({100 * done / total:.0f}%), "
                              f"{_duration(now - self.started)} in, about {_duration(left)} left",
                              highlight=False, soft_wrap=True)

    def note(self, line: str) -> None:
        """A line of its own between the phases (not with ``quiet``)."""
        if not self.quiet:
            self.close()
            err_console.print(line, highlight=False, soft_wrap=True)

    def close(self) -> None:
        """End the current phase: its bar closed and, if it finished, its line printed."""
        import time

        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.what is not None and self.total and self.done >= self.total:
            seconds = time.perf_counter() - self.started
            err_console.print(f"{self.prefix}{self.what}: {seconds:.0f} s", highlight=False, soft_wrap=True)
        self.what = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _duration(seconds: float) -> str:
    """'42 s', '7 min', '2 h 05 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def interrupted(kept: str, then: str = "run the same command again to continue from there") -> typer.Exit:
    """After Ctrl-C: one line saying what was kept and how to go on; exit code 130."""
    if main_process():
        err_console.print(f"interrupted: {kept}; {then}", highlight=False, soft_wrap=True)
    return typer.Exit(130)


def parse_size(text: str) -> tuple[int, ...]:
    """'3x299x299' -> (3, 299, 299)."""
    try:
        size = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise BadValue(f"input size must look like 3x224x224, got {text!r}") from None
    if len(size) != 3 or min(size) <= 0:
        raise BadValue(f"input size must be three positive numbers CxHxW, got {text!r}")
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
            raise BadValue(f"--in-chans {kwargs['in_chans']} disagrees with --input "
                             f"{'x'.join(map(str, size))} ({size[0]} channel{'s' if size[0] != 1 else ''})")
        return kwargs
    return kwargs if size[0] == default[0] else {**kwargs, "in_chans": size[0]}


def build_for_size(name: str, size: tuple[int, int, int] | None, kwargs: dict, device: str = "meta"):
    """``(model, input size)``: the network built with ``kwargs`` for ``size`` (default: its own).

    On the meta device by default: shapes and counts without allocating or initialising weights.
    """
    import torch

    from ..models import build_model, model_config

    default = model_config(name).input_size
    size = size or (kwargs.get("in_chans", default[0]), *default[1:])
    kwargs = channels_for(size, kwargs, default)
    with torch.device(device):
        return build_model(name, **kwargs), size


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
        raise BadValue(f"{exc}\n{name} takes {in_chans or config.input_size[0]} channels and "
                         f"{config.describe_sizes()} pixels (default {dims(config.input_size)})") from None


def comma_list(text: str, what: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """``a,b,c`` as a tuple (spaces and empty parts dropped); refused when empty or, with ``allowed``, unknown."""
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        raise BadValue(f"{what} is empty")
    if allowed is not None:
        unknown = [item for item in items if item not in allowed]
        if unknown:
            raise BadValue(f"{what}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
    return items


MODEL_HELP = "NAME[:SOURCE] (inception_v3:torchvision; NAME:random for no weights), a run folder or a weights file"
WEIGHTS_HELP = ("for a network NAME: a source (torchvision, timm, DEFAULT), a weights file, or random (or none): "
                "no weights, a baseline")


def network_with_weights(model: str, weights: str | None):
    """The network a ``MODEL [--weights]`` command (lens, retrain) works on, with its weights, in eval mode."""
    from ..factory import create_model
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
