"""GoogLeNet's Table 1, rebuilt from a model row by row, beside the figures the paper printed.

The paper's columns: type, patch size/stride, output size, depth (layers with weights on the
longest path), #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj, params, ops. Params here
are weights only (the paper leaves biases out) in the paper's K of 1024; ops are multiply-adds
in M of 10**6. A computed figure "agrees" with a printed one when it is within 2% or one printed
unit of it: the spread of the paper's own rounding. Three rows disagree with the paper's own
filter columns (conv1, 4c, 5a); the table prints both figures and says why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..errors import BadArgument
from ..models import build_model
from ..models.googlenet import GoogLeNet, InceptionModule
from ..probe import dims
from .counting import WEIGHTED
from .graph import layer_graph, stage_of

# The paper's printed params (K) and ops (M) per row of Table 1, in its row order.
PAPER_FIGURES: dict[str, tuple[float | None, float | None]] = {
    "conv1": (2.7, 34), "maxpool1": (None, None), "conv2+conv3": (112, 360), "maxpool2": (None, None),
    "inception3a": (159, 128), "inception3b": (380, 304), "maxpool3": (None, None),
    "inception4a": (364, 73), "inception4b": (437, 88), "inception4c": (463, 100), "inception4d": (580, 119),
    "inception4e": (840, 170), "maxpool4": (None, None), "inception5a": (1072, 54), "inception5b": (1388, 71),
    "global_pool": (None, None), "head_drop": (None, None), "fc": (1000, 1), "softmax": (None, None),
}
K, M = 1024, 10**6

FILTER_COLUMNS = ("#1x1", "#3x3 reduce", "#3x3", "#5x5 reduce", "#5x5", "pool proj")


@dataclass
class Table1Row:
    name: str  # the model's stage name(s)
    type: str  # the paper's row type: convolution, max pool, inception (3a), ...
    patch: str  # patch size/stride, e.g. 7x7/2
    output_size: str  # HxWxC as the paper writes it
    depth: int
    filters: dict[str, int] = field(default_factory=dict)
    weights: int = 0
    macs: int = 0
    paper_params_k: float | None = None
    paper_ops_m: float | None = None
    note: str = ""

    @property
    def params_k(self) -> float:
        return self.weights / K

    @property
    def ops_m(self) -> float:
        return self.macs / M

    @property
    def agrees(self) -> bool:
        """The computed params and ops match the printed ones within the paper's rounding."""
        return _close(self.params_k, self.paper_params_k) and _close(self.ops_m, self.paper_ops_m)


@dataclass
class Table1:
    rows: list[Table1Row]
    input_size: tuple[int, ...]
    depth: int  # layers with weights on the longest path
    depth_with_pooling: int

    @property
    def total_weights(self) -> int:
        return sum(r.weights for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def to_dict(self) -> dict:
        data = asdict(self)
        for row, out in zip(self.rows, data["rows"]):
            out.update(params_k=row.params_k, ops_m=row.ops_m, agrees=row.agrees)
        data.update(total_weights=self.total_weights, total_macs=self.total_macs)
        return data

    def __str__(self) -> str:
        return render(self)


def _close(computed: float, printed: float | None) -> bool:
    if printed is None:
        return True
    unit = 0.1 if printed < 10 and printed != int(printed) else 1.0
    return abs(computed - printed) <= max(unit, 0.02 * printed)


def _weights(module: nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, WEIGHTED))


def _hw(shape: tuple[int, ...]) -> str:
    """(C, H, W) -> 'HxWxC', the paper's order."""
    return f"{shape[1]}x{shape[2]}x{shape[0]}" if len(shape) == 3 else f"1x1x{shape[0]}"


def _kernel(module) -> str:
    k, s = module.kernel_size, module.stride
    k = k if isinstance(k, tuple) else (k, k)
    return f"{dims(k)}/{s if isinstance(s, int) else s[0]}"


def _filters(module: InceptionModule) -> dict[str, int]:
    def out(branch, index):
        return branch[index].out_chs

    return dict(zip(FILTER_COLUMNS, (
        out(module.branch1, 0), out(module.branch2, 0), out(module.branch2, -1),
        out(module.branch3, 0), out(module.branch3, -1), out(module.branch4, -1),
    )))


def _notes(row: Table1Row) -> str:
    if row.agrees:
        return ""
    printed = f"paper prints {row.paper_params_k:g}K / {row.paper_ops_m:g}M"
    computed = f"its filter columns give {row.params_k:.1f}K / {row.ops_m:.1f}M"
    if row.name == "conv1":
        return (f"{printed}, which is a depthwise-separable 7x7 (3x8 depthwise + 1x1 to 64: 2,712 weights, "
                f"34.0M); the dense 7x7 of its own table gives {row.params_k:.1f}K / {row.ops_m:.1f}M")
    return f"{printed}; {computed}"


@torch.no_grad()
def table1(model: GoogLeNet | None = None, input_size: tuple[int, int, int] = (3, 224, 224)) -> Table1:
    """Table 1 of the GoogLeNet paper, computed from ``model`` (default: the paper variant, 1000 classes).

    Works for any GoogLeNet (the torchvision variant, other widths or class counts); the paper's
    printed figures are set beside the rows only for the paper variant at 224x224 with 1000 classes.
    """
    if model is None:
        with torch.device("meta"):
            model = build_model("googlenet", aux_logits=False)
    if not isinstance(model, GoogLeNet):
        raise BadArgument(f"table1 reads GoogLeNet's stages; got {type(model).__name__} (use stage_table for others)")
    graph = layer_graph(model, input_size)
    shapes = {stage_of(n.name): n.output_shape for n in graph.nodes}
    macs: dict[str, int] = {}
    for node in graph.nodes:
        macs[stage_of(node.name)] = macs.get(stage_of(node.name), 0) + node.macs

    def depth_of(*stages: str) -> int:
        return graph.depth(stages=set(stages))

    rows: list[Table1Row] = []
    trunk = [name for name in model.trunk if not name.startswith("lrn")]
    skip = set()
    for name in trunk:
        if name in skip:
            continue
        module = getattr(model, name)
        if name == "conv2":  # the stem's 1x1 reduce and 3x3 are one row, "#3x3 reduce" and "#3x3"
            skip.add("conv3")
            rows.append(Table1Row(
                "conv2+conv3", "convolution", _kernel(model.conv3.conv), _hw(shapes["conv3"]),
                depth_of("conv2", "conv3"),
                {"#3x3 reduce": model.conv2.out_chs, "#3x3": model.conv3.out_chs},
                _weights(model.conv2) + _weights(model.conv3), macs["conv2"] + macs["conv3"],
            ))
        elif isinstance(module, InceptionModule):
            rows.append(Table1Row(name, f"inception ({name.removeprefix('inception')})", "", _hw(shapes[name]),
                                  depth_of(name), _filters(module), _weights(module), macs[name]))
        elif isinstance(module, nn.MaxPool2d):
            rows.append(Table1Row(name, "max pool", _kernel(module), _hw(shapes[name]), 0))
        else:  # conv1
            rows.append(Table1Row(name, "convolution", _kernel(module.conv), _hw(shapes[name]), depth_of(name),
                                  {}, _weights(module), macs[name]))
    grid = shapes[trunk[-1]][1:]
    rows.append(Table1Row("global_pool", "avg pool", f"{dims(grid)}/1", _hw(shapes["global_pool"]), 0))
    rows.append(Table1Row("head_drop", f"dropout ({model.head_drop.p:.0%})", "", _hw(shapes["global_pool"]), 0))
    if isinstance(model.fc, nn.Linear):
        rows.append(Table1Row("fc", "linear", "", _hw((model.fc.out_features,)), 1, {}, _weights(model.fc), macs["fc"]))
        rows.append(Table1Row("softmax", "softmax", "", _hw((model.fc.out_features,)), 0))

    paper = model.variant == "paper" and tuple(input_size) == (3, 224, 224) and model.num_classes == 1000
    paper = paper and model.width == 1.0
    for row in rows:
        if paper:
            row.paper_params_k, row.paper_ops_m = PAPER_FIGURES[row.name]
            row.note = _notes(row)
    return Table1(rows, tuple(input_size), graph.depth(), graph.depth(count_pooling=True))


def render(table: Table1) -> str:
    """Table 1 as plain text, the paper's columns plus the printed figures where they are known."""
    header = ["type", "patch size/stride", "output size", "depth", *FILTER_COLUMNS, "params", "ops"]
    with_paper = any(r.paper_params_k is not None for r in table.rows)
    if with_paper:
        header += ["paper params", "paper ops"]
    body = []
    for r in table.rows:
        cells = [r.type, r.patch, r.output_size, str(r.depth) if r.depth else ""]
        cells += [str(r.filters[c]) if c in r.filters else "" for c in FILTER_COLUMNS]
        cells += [f"{r.params_k:.1f}K" if r.weights else "", f"{r.ops_m:.1f}M" if r.macs else ""]
        if with_paper:
            cells += [f"{r.paper_params_k:g}K" if r.paper_params_k is not None else "",
                      f"{r.paper_ops_m:g}M" if r.paper_ops_m is not None else ""]
            cells[-1] += " *" if r.note else ""
        body.append(cells)
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(header))
    lines = [f"GoogLeNet Table 1, input {dims(table.input_size)}", rule, line(header), rule]
    lines += [line(cells) for cells in body] + [rule]
    lines.append(f"total {table.total_weights / K:,.1f}K weights, {table.total_macs / M:,.1f}M multiply-adds; "
                 f"depth {table.depth} layers with parameters, {table.depth_with_pooling} counting pooling")
    lines += [f"* {r.type if r.type.startswith('inception') else f'{r.type} {r.patch}'}: {r.note}"
              for r in table.rows if r.note]
    return "\n".join(lines)


@dataclass
class StageRow:
    name: str
    type: str
    output_size: str  # HxWxC
    depth: int  # layers with weights on the stage's longest path
    depth_with_pooling: int
    params: int
    macs: int


def stage_table(model: nn.Module, input_size: tuple[int, ...]) -> list[StageRow]:
    """A Table-1-like view of any network: one row per top-level module, with its depth, params and MACs."""
    graph = layer_graph(model, input_size)
    rows: dict[str, StageRow] = {}
    for node in graph.nodes:
        stage = stage_of(node.name)
        if node.op == "input":
            continue
        row = rows.setdefault(stage, StageRow(stage, "", "", 0, 0, 0, 0))
        module = getattr(model, stage, None)
        row.type = type(module).__name__ if module is not None else node.type
        row.output_size = _hw(node.output_shape)
        row.macs += node.macs
    for row in rows.values():
        module = getattr(model, row.name, None)
        row.params = sum(p.numel() for p in module.parameters()) if isinstance(module, nn.Module) else 0
        row.depth = graph.depth(stages={row.name})
        row.depth_with_pooling = graph.depth(count_pooling=True, stages={row.name})
    return list(rows.values())
