"""``inceptionkit list`` and ``inceptionkit summary``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..errors import BadValue
from .common import (
    AuxOpt,
    DropRateOpt,
    InChansOpt,
    VariantOpt,
    WidthOpt,
    build_for_size,
    console,
    explained_input,
    model_kwargs,
    parse_size,
    user_errors,
)


def list_cmd() -> None:
    """Every network with its parameter count, default input size and the reference it follows."""
    import torch
    from rich.table import Table

    from ..models import build_model, list_models, model_config

    def counts(name: str) -> tuple[int, int | None]:
        """Params without and with the aux heads (None: the network has none), from one meta build."""
        with torch.device("meta"):
            try:
                model = build_model(name, aux_logits=True)
            except ValueError:  # a network without aux heads refuses aux_logits=True
                model = build_model(name)
        total = sum(p.numel() for p in model.parameters())
        heads = [getattr(model, attr) for attr in getattr(model, "aux_taps", {}).values()]
        if not heads:
            return total, None
        return total - sum(p.numel() for head in heads for p in head.parameters()), total

    table = Table(title="inceptionkit networks (1000 classes unless the network's default differs)")
    for column in ("name", "params", "with aux heads", "input", "input sides", "follows"):
        table.add_column(column, justify="right" if column in ("params", "with aux heads") else "left",
                         no_wrap=column != "follows")
    for name in list_models():
        config = model_config(name)
        without, with_aux = counts(name)
        table.add_row(
            name,
            f"{without:,}",
            "-" if with_aux is None else f"{with_aux:,}",
            "x".join(map(str, config.input_size)),
            config.brief_sizes(),
            config.source,
        )
    console.print(table)


@user_errors
def summary_cmd(
    name: str = typer.Argument(..., help="registered network name (see `inceptionkit list`)"),
    input: str = typer.Option(None, "--input", help="input size CxHxW; default: the network's own"),
    depth: int = typer.Option(1, "--depth", help="rows down to this many levels of dotted names (at least 1)"),
    batch_size: int = typer.Option(1, "--batch-size", help="batch size for the memory estimate"),
    convention: Annotated[str, typer.Option(
        "--convention", help="how layer outputs count toward memory: inceptionkit (each tensor once) or "
        "torchsummary (every module's output, as torchsummary prints)")] = "inceptionkit",
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
    variant: VariantOpt = None,
    width: WidthOpt = None,
    in_chans: InChansOpt = None,
    aux: AuxOpt = None,
    drop_rate: DropRateOpt = None,
) -> None:
    """Per-layer output shapes, parameters, multiply-adds and memory of a network in eval mode.

    Modules that do not run in eval mode (the auxiliary heads) are listed as such and left out of the totals.
    """
    from ..cost import summary as summarize

    if batch_size <= 0:
        raise BadValue(f"--batch-size must be positive, got {batch_size}")
    if depth < 1:
        raise BadValue(f"--depth must be at least 1 (1: one row per stage), got {depth}")
    kwargs = model_kwargs(variant, width, in_chans, aux, drop_rate)
    model, size = build_for_size(name, parse_size(input) if input else None, kwargs)
    with explained_input(name, size[0]):
        result = summarize(model, size, depth=depth, batch_size=batch_size, title=name, convention=convention)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    print_summary(result, name)


def print_summary(result, name: str) -> None:
    """A summary as a rich table and its totals."""
    from rich.table import Table

    from ..cost.summary import HEADER, table_cells, totals_lines
    from ..probe import dims

    table = Table(title=f"{name}: input {dims(result.input_size)}")
    for i, column in enumerate(HEADER):
        table.add_column(column, justify="right" if i >= 3 else "left")
    for cells in table_cells(result):
        table.add_row(*cells)
    console.print(table)
    for line in totals_lines(result):
        console.print(line, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("list")(list_cmd)
    app.command("summary")(summary_cmd)
