"""Side-by-side costs the articles compute by hand, and one table across every registered network.

- ``naive_vs_reduced``: the naive module (Figure 2a) against the one with 1x1 reductions (2b);
- ``five_vs_two_3x3``: one 5x5 against two stacked 3x3 (v3 paper, 25/18);
- ``square_vs_asymmetric``: n x n against 1 x n followed by n x 1 (v3 paper, n^2 / 2n);
- ``compare_modules``: any modules on one input, e.g. your own;
- ``network_table``: parameters, multiply-adds and depth of every registered network.

Comparisons build convolutions without bias or BatchNorm so that parameters are the weights the
papers count; multiply-adds follow ``counting.module_macs``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import BadValue
from ..models import build_model, list_models, model_config
from ..models.blocks import Branch, conv_branch
from ..models.googlenet import InceptionModule, NaiveInception
from ..probe import dims
from .graph import layer_graph
from .summary import Summary, summary

PLAIN = dict(bn=False, bias=False)  # weights only, as the papers count


COMPARISON_HEADER = ("module", "output shape", "params", "multiply-adds", "vs first")
LAYER_HEADER = ("layer", "type", "output shape", "params", "multiply-adds")


def layer_cells(result: Summary) -> list[tuple[str, ...]]:
    """The conv units and pooling layers of a module's summary (depth 3) as text cells under
    :data:`LAYER_HEADER`, as ``inceptionkit cost`` shows them."""
    return [(row.name, row.type, dims(row.output_shape), f"{row.params:,}", f"{row.macs:,}")
            for row in result.rows if row.type in ("BasicConv", "MaxPool2d", "AvgPool2d")]


@dataclass
class CostRow:
    name: str
    params: int
    macs: int
    output_shape: tuple[int, ...]


@dataclass
class Comparison:
    """Costs of several modules on the same input; ratios are against the first row."""

    input_size: tuple[int, ...]
    rows: list[CostRow]
    title: str = ""

    def __getitem__(self, name: str) -> CostRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no row {name!r}; rows are {[r.name for r in self.rows]}")

    def ratio(self, a: str, b: str) -> float:
        """How many times the multiply-adds of ``a`` are those of ``b``."""
        return self[a].macs / self[b].macs

    def to_dict(self) -> dict:
        data = asdict(self)
        first = self.rows[0].macs
        for out, row in zip(data["rows"], self.rows):
            out["macs_vs_first"] = row.macs / first if first else None
        return data

    def table_cells(self) -> list[tuple[str, ...]]:
        """The table's rows as text cells under :data:`COMPARISON_HEADER` (the CLI draws them with rich)."""
        first = self.rows[0].macs or 1
        return [(r.name, dims(r.output_shape), f"{r.params:,}", f"{r.macs:,}", f"{r.macs / first:.3f}x")
                for r in self.rows]

    def verdict(self) -> str:
        """For two rows, how many times the second's multiply-adds the first costs, in a sentence; else ''."""
        if len(self.rows) != 2:
            return ""
        a, b = self.rows
        return (f"{a.name} costs {a.macs / b.macs:.3f}x the multiply-adds of {b.name} "
                f"({1 - b.macs / a.macs:.1%} saved by the second)")

    def __str__(self) -> str:
        body = self.table_cells()
        widths = [max(len(line[i]) for line in [COMPARISON_HEADER, *body]) for i in range(len(COMPARISON_HEADER))]

        def line(cells):
            return "  ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        rule = "-" * len(line(COMPARISON_HEADER))
        title = f"{self.title + ': ' if self.title else ''}input {dims(self.input_size)}"
        return "\n".join([title, rule, line(COMPARISON_HEADER), rule, *map(line, body), rule])


def compare_modules(
    modules: Mapping[str, nn.Module] | Sequence[nn.Module], input_size: tuple[int, ...], title: str = ""
) -> Comparison:
    """Parameters, multiply-adds and output shape of each module on zeros of ``input_size`` (C, H, W)."""
    if not isinstance(modules, Mapping):
        modules = {f"{i + 1}: {type(m).__name__}": m for i, m in enumerate(modules)}
    if not modules:
        raise BadValue("compare_modules needs at least one module")
    rows = []
    for name, module in modules.items():
        result = summary(module, input_size, title=name)
        rows.append(CostRow(name, result.total_params, result.total_macs, result.output_shape))
    return Comparison(tuple(input_size), rows, title)


# --- building the compared modules ---------------------------------------------------------------

_SPEC = re.compile(r"^\s*(\d+)(?:x(\d+))?\s*:\s*(\d+)\s*$")


def parse_stack(text: str) -> list[tuple[tuple[int, int], int]]:
    """'1x1:16,5x5:32' -> [((1, 1), 16), ((5, 5), 32)]: kernel and output channels of each conv."""
    convs = []
    for part in text.split(","):
        match = _SPEC.match(part)
        if not match:
            raise BadValue(
                f"a conv is written KxK:CHANNELS (e.g. 5x5:32 or 1x7:192), got {part.strip()!r} in {text!r}"
            )
        kh, kw, out = match.groups()
        kernel = (int(kh), int(kw if kw is not None else kh))
        if int(out) <= 0 or min(kernel) <= 0 or kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
            raise BadValue(f"kernels must be odd and channels positive, got {part.strip()!r}")
        convs.append((kernel, int(out)))
    return convs


def conv_stack(in_chs: int, convs: str | Sequence[tuple[tuple[int, int] | int, int]]) -> Branch:
    """Convolutions in sequence with 'same' padding, no bias or BN: ``conv_stack(192, '1x1:16,5x5:32')``."""
    if isinstance(convs, str):
        convs = parse_stack(convs)
    return conv_branch(in_chs, *((out, kernel) for kernel, out in convs), **PLAIN)


def naive_vs_reduced(
    in_chs: int, size: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int
) -> Comparison:
    """The naive module (1x1, 3x3, 5x5, pool pass-through) against the reduced one, Table 1's columns.

    At GoogLeNet's inception (3a) (``naive_vs_reduced(192, 28, 64, 96, 128, 16, 32, 32)``) the naive
    module costs 2.37x the multiply-adds and still outputs more channels (416: the pool passes 192).
    """
    modules = {
        "naive (Fig. 2a)": NaiveInception(in_chs, ch1x1, ch3x3, ch5x5, **PLAIN),
        "with 1x1 reductions (Fig. 2b)": InceptionModule(
            in_chs, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, **PLAIN
        ),
    }
    return compare_modules(modules, (in_chs, size, size), "naive vs reduced inception module")


def five_vs_two_3x3(channels: int, size: int) -> Comparison:
    """One 5x5 against two stacked 3x3 (same receptive field), ``channels`` in, between and out: 25/18."""
    modules = {
        "5x5": conv_stack(channels, [((5, 5), channels)]),
        "two 3x3": conv_stack(channels, [((3, 3), channels), ((3, 3), channels)]),
    }
    return compare_modules(modules, (channels, size, size), "5x5 vs two stacked 3x3")


def square_vs_asymmetric(n: int, channels: int, size: int) -> Comparison:
    """An n x n convolution against 1 x n followed by n x 1: n^2 / 2n (3: 1.5x, 7: 3.5x)."""
    if n < 3 or n % 2 == 0:
        raise BadValue(f"n must be an odd kernel size of at least 3, got {n}")
    modules = {
        f"{n}x{n}": conv_stack(channels, [((n, n), channels)]),
        f"1x{n} + {n}x1": conv_stack(channels, [((1, n), channels), ((n, 1), channels)]),
    }
    return compare_modules(modules, (channels, size, size), f"{n}x{n} vs 1x{n} + {n}x1")


# --- every network ---------------------------------------------------------------------------------


@dataclass
class NetworkRow:
    name: str
    input_size: tuple[int, ...]
    params: int
    macs: int
    depth: int  # layers with weights on the longest path
    depth_with_pooling: int


def network_table(names: Sequence[str] | None = None) -> list[NetworkRow]:
    """Parameters (no aux heads), multiply-adds at the default input and depth of each network."""
    rows = []
    for name in names or list_models():
        size = model_config(name).input_size
        with torch.device("meta"):
            model = build_model(name, aux_logits=False)
        graph = layer_graph(model, size)
        params = sum(p.numel() for p in model.parameters())
        macs = sum(node.macs for node in graph.nodes)
        rows.append(NetworkRow(name, tuple(size), params, macs, graph.depth(), graph.depth(count_pooling=True)))
    return rows
