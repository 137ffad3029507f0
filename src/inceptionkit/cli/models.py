"""``inceptionkit list`` and ``inceptionkit summary``."""

from __future__ import annotations

import json

import torch
import typer
from rich.table import Table

from ..cost import LayerInputError
from ..cost import summary as summarize
from ..cost.counting import dims
from ..cost.summary import totals_lines
from ..models import create_model, list_models, model_config
from .common import console, parse_size, user_errors


def _count(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(name, **kwargs).parameters())


def list_cmd() -> None:
    """Every network with its parameter count, default input size and the reference it follows."""
    table = Table(title="inceptionkit networks (1000 classes unless the network's default differs)")
    for column in ("name", "params", "with aux heads", "input", "follows"):
        table.add_column(column, justify="right" if column in ("params", "with aux heads") else "left",
                         no_wrap=column != "follows")
    for name in list_models():
        config = model_config(name)
        try:
            with_aux = f"{_count(name, aux_logits=True):,}"
        except ValueError:  # a network without aux heads refuses aux_logits=True
            with_aux = "-"
        table.add_row(
            name,
            f"{_count(name, aux_logits=False):,}",
            with_aux,
            "x".join(map(str, config.input_size)),
            config.source,
        )
    console.print(table)


@user_errors
def summary_cmd(
    name: str = typer.Argument(..., help="registered network name (see `inceptionkit list`)"),
    input: str = typer.Option(None, "--input", help="input size CxHxW; default: the network's own"),
    depth: int = typer.Option(1, "--depth", help="rows down to this many levels of dotted names"),
    batch_size: int = typer.Option(1, "--batch-size", help="batch size for the memory estimate"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Per-layer output shapes, parameters, multiply-adds and memory of a network (eval mode, no aux heads)."""
    config = model_config(name)
    size = parse_size(input) if input else config.input_size
    if batch_size <= 0:
        raise ValueError(f"--batch-size must be positive, got {batch_size}")
    model = create_model(name)
    try:
        result = summarize(model, size, depth=depth, batch_size=batch_size, title=name)
    except LayerInputError as exc:
        raise ValueError(f"{exc}\n{name} takes {config.input_size[0]} channels and at least "
                         f"{config.min_input}x{config.min_input} pixels (default {dims(config.input_size)})") from None
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    table = Table(title=f"{name}: input {dims(size)}")
    for column in ("layer", "type", "output shape", "params", "MACs", "activations"):
        table.add_column(column, justify="right" if column in ("params", "MACs", "activations") else "left")
    for row in result.rows:
        table.add_row("  " * (row.depth - 1) + row.name, row.type, dims(row.output_shape), f"{row.params:,}",
                      f"{row.macs:,}", f"{row.activation_bytes / 2**20:.2f} MB")
    console.print(table)
    for line in totals_lines(result):
        console.print(line, highlight=False)
    aux = [getattr(model, a) for a in getattr(model, "aux_taps", {}).values()]
    if aux:
        aux_params = sum(p.numel() for head in aux for p in head.parameters())
        console.print(f"of which aux heads {aux_params:,} params: they run in train mode only, so no rows or MACs here")


def register(app: typer.Typer) -> None:
    app.command("list")(list_cmd)
    app.command("summary")(summary_cmd)
