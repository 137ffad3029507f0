"""``inceptionkit cost``, ``compare``, ``table`` and ``draw``: counting modules and networks."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import BadValue
from .common import (
    AuxOpt,
    DropRateOpt,
    InChansOpt,
    VariantOpt,
    WidthOpt,
    console,
    model_kwargs,
    parse_size,
    user_errors,
)


def _ints(text: str, count: int, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count or min(values) <= 0:
        raise BadValue(f"{what} takes {count} positive comma-separated numbers, got {text!r}")
    return values


def _check_grid(in_chs: int, size: int) -> None:
    if in_chs <= 0 or size <= 0:
        raise BadValue(f"--in and --size must be positive, got {in_chs} and {size}")


REDUCED_HELP = "#1x1,#3x3 reduce,#3x3,#5x5 reduce,#5x5,pool proj (Table 1's columns), e.g. 64,96,128,16,32,32"


def _module_from_options(in_chs: int, reduced: str | None, naive: str | None, convs: str | None):
    from ..cost import conv_stack
    from ..models.googlenet import InceptionModule, NaiveInception

    given = [o for o in (reduced, naive, convs) if o]
    if len(given) != 1:
        raise BadValue("give exactly one of --reduced, --naive or --convs")
    if reduced:
        return "inception module with 1x1 reductions", InceptionModule(
            in_chs, *_ints(reduced, 6, "--reduced"), bn=False, bias=False)
    if naive:
        return "naive inception module", NaiveInception(in_chs, *_ints(naive, 3, "--naive"), bn=False, bias=False)
    return f"convolutions {convs}", conv_stack(in_chs, convs)


def _print_table(title: str, header: tuple[str, ...], cells: list[tuple[str, ...]], first_right: int) -> None:
    """The library's cells as a rich table; columns from ``first_right`` on are numbers (right-aligned)."""
    from rich.table import Table

    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="right" if i >= first_right else "left")
    for row in cells:
        table.add_row(*row)
    console.print(table)


def _print_comparison(result, as_json: bool) -> None:
    from ..cost.compare import COMPARISON_HEADER
    from ..probe import dims

    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    title = f"{result.title}: input {dims(result.input_size)} (weights only, no bias or BN)"
    _print_table(title, COMPARISON_HEADER, result.table_cells(), first_right=2)
    if result.verdict():
        console.print(result.verdict())


@user_errors
def cost_cmd(
    in_chs: int = typer.Option(..., "--in", help="input channels"),
    size: int = typer.Option(..., "--size", help="input height and width"),
    reduced: str = typer.Option(None, "--reduced", help=REDUCED_HELP),
    naive: str = typer.Option(None, "--naive", help="#1x1,#3x3,#5x5 of the naive module (pool passes through)"),
    convs: str = typer.Option(None, "--convs", help="a stack of convolutions, e.g. 1x1:16,5x5:32"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Per-layer parameters and multiply-adds of one module you describe (weights only)."""
    from ..cost import summary
    from ..cost.compare import LAYER_HEADER, layer_cells
    from ..probe import dims

    _check_grid(in_chs, size)
    title, module = _module_from_options(in_chs, reduced, naive, convs)
    result = summary(module, (in_chs, size, size), depth=3, title=title)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    _print_table(f"{title}: input {in_chs}x{size}x{size}", LAYER_HEADER, layer_cells(result), first_right=3)
    console.print(f"total: {result.total_params:,} params, {result.total_macs:,} multiply-adds; "
                  f"output {dims(result.output_shape)}")


@user_errors
def compare_cmd(
    in_chs: int = typer.Option(..., "--in", help="input channels"),
    size: int = typer.Option(..., "--size", help="input height and width"),
    reduced: str = typer.Option(None, "--reduced", help="naive vs reduced module: " + REDUCED_HELP),
    two_3x3: bool = typer.Option(False, "--two-3x3", help="one 5x5 vs two stacked 3x3, --in channels throughout"),
    asymmetric: int = typer.Option(None, "--asymmetric", help="N: an NxN conv vs 1xN + Nx1, --in channels"),
    stack: list[str] = typer.Option(None, "--stack", help="a conv stack to compare, e.g. 5x5:32; repeat it"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
) -> None:
    """Side by side: naive vs reduced module, 5x5 vs two 3x3, NxN vs 1xN + Nx1, or your own stacks."""
    from ..cost import (
        compare_modules,
        conv_stack,
        five_vs_two_3x3,
        naive_vs_reduced,
        square_vs_asymmetric,
    )

    _check_grid(in_chs, size)
    chosen = [bool(reduced), two_3x3, asymmetric is not None, bool(stack)]
    if sum(chosen) != 1:
        raise BadValue("give exactly one of --reduced, --two-3x3, --asymmetric N or --stack (repeated)")
    if reduced:
        result = naive_vs_reduced(in_chs, size, *_ints(reduced, 6, "--reduced"))
    elif two_3x3:
        result = five_vs_two_3x3(in_chs, size)
    elif asymmetric is not None:
        result = square_vs_asymmetric(asymmetric, in_chs, size)
    else:
        result = compare_modules({s: conv_stack(in_chs, s) for s in stack}, (in_chs, size, size), "conv stacks")
    _print_comparison(result, as_json)


@user_errors
def table_cmd(
    name: str = typer.Argument(None, help="googlenet for the paper's Table 1, another network for its stages; "
                                          "none for every network"),
    as_json: bool = typer.Option(False, "--json", help="print machine-readable JSON"),
    variant: VariantOpt = None,
    width: WidthOpt = None,
) -> None:
    """GoogLeNet's Table 1 computed from the model, a stage table of any network, or all networks side by side."""
    import torch
    from rich.table import Table

    from ..cost import network_table, table1
    from ..cost.table1 import stage_table
    from ..models import build_model, model_config
    from ..probe import dims

    if name is None and (variant is not None or width is not None):
        raise BadValue("--variant and --width apply to one network: name it (e.g. `table googlenet --variant "
                         "torchvision`)")
    if name is None:
        rows = network_table()
        if as_json:
            console.print_json(json.dumps([row.__dict__ for row in rows]))
            return
        table = Table(title="every network at its default input (no aux heads, 1000 classes unless its own)")
        for column in ("name", "input", "params", "multiply-adds", "depth", "depth with pooling"):
            table.add_column(column, justify="left" if column in ("name", "input") else "right")
        for r in rows:
            table.add_row(r.name, dims(r.input_size), f"{r.params:,}", f"{r.macs / 1e9:.3f} G", str(r.depth),
                          str(r.depth_with_pooling))
        console.print(table)
        console.print("depth: layers with weights on the longest input-to-output path (GoogLeNet's 22), "
                      "and counting pooling layers too (its 27)")
        return
    config = model_config(name)
    kwargs = model_kwargs(variant=variant, width=width)
    with torch.device("meta"):
        model = build_model(name, aux_logits=False, **kwargs)
    if name == "googlenet":
        result = table1(model)
        if as_json:
            console.print_json(json.dumps(result.to_dict()))
            return
        console.print(str(result), highlight=False, soft_wrap=True)
        return
    rows = stage_table(model, config.input_size)
    if as_json:
        console.print_json(json.dumps([row.__dict__ for row in rows]))
        return
    table = Table(title=f"{name}: stages at input {dims(config.input_size)}")
    for column in ("stage", "type", "output size", "depth", "params", "multiply-adds"):
        table.add_column(column, justify="left" if column in ("stage", "type", "output size") else "right")
    for r in rows:
        table.add_row(r.name, r.type, r.output_size, str(r.depth or ""), f"{r.params:,}" if r.params else "",
                      f"{r.macs / 1e6:.1f}M" if r.macs else "")
    console.print(table)


@user_errors
def draw_cmd(
    name: str = typer.Argument(..., help="registered network name"),
    output: Path = typer.Option(..., "-o", "--out", help="file to write: .svg or .png"),
    module: str = typer.Option(None, "--module", help="draw one module, e.g. inception3a"),
    depth: int = typer.Option(None, "--depth", help="collapse modules below this depth (1: one box per stage)"),
    input: str = typer.Option(None, "--input", help="input size CxHxW; default: the network's own"),
    expand: bool = typer.Option(False, "--expand", help="draw every one of a run of identical blocks, "
                                                        "not one block labelled 'block35 x10'"),
    variant: VariantOpt = None,
    width: WidthOpt = None,
    in_chans: InChansOpt = None,
    aux: AuxOpt = None,
    drop_rate: DropRateOpt = None,
) -> None:
    """A diagram of a network or one of its modules: layers, branches and output shapes.

    Eval mode, as the network classifies; with --aux, train mode, where the auxiliary heads run and are drawn.
    """
    from ..cost.diagram import check_path, draw
    from ..cost.graph import module_input_size
    from ..probe import dims
    from .common import build_for_size, explained_input, model_kwargs

    if depth is not None and depth < 1:
        raise BadValue(f"--depth must be at least 1 (1: one box per stage), got {depth}")
    check_path(output)
    training = bool(aux)
    model, size = build_for_size(name, parse_size(input) if input else None,
                                 model_kwargs(variant, width, in_chans, aux, drop_rate))
    target, target_size = model, size
    with explained_input(name, size[0]):
        if module:
            target_size = module_input_size(model, module, size, training=training)
            target = model.get_submodule(module)
        draw(target, target_size, path=output, depth=depth, expand=expand, training=training)
    what = f"{name}.{module}" if module else name
    mode = ", train mode: aux heads drawn" if training else ""
    console.print(f"wrote {output} ({what} at input {dims(target_size)}{mode})", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("cost")(cost_cmd)
    app.command("compare")(compare_cmd)
    app.command("table")(table_cmd)
    app.command("draw")(draw_cmd)
