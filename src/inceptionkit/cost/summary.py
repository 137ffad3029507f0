"""Per-layer summary of any nn.Module: output shapes, parameters, multiply-adds and activation memory.

Shapes leave the batch dimension out, as torchsummary does. The totals count the modules that ran
in the (eval-mode) forward pass; modules that did not run, such as auxiliary heads, are listed in
``not_run`` with their parameters and left out of the totals. The memory estimate follows
torchsummary's convention (float32, MB = 2**20 bytes): input size; forward/backward pass size =
2 x the layer outputs (kept for the backward pass, plus their gradients); params size; their total.

Two ways to count the layer outputs (``convention``):

- ``"inceptionkit"`` (default): each new tensor a leaf layer makes counts once; layers that hand
  back their input (Identity, in-place ReLU) add nothing.
- ``"torchsummary"``: torchsummary's own rule, reproduced exactly: the output of every module call
  except the model itself, ``Sequential`` and ``ModuleList`` counts, so a conv, its ReLU and the
  block holding them count the same tensor three times.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..errors import BadValue
from ..probe import dims, locate_failure, probing, sample_input
from .counting import module_macs

MB = 1024**2
BYTES = 4  # torchsummary's float32 convention
CONVENTIONS = ("inceptionkit", "torchsummary")


@dataclass
class Row:
    """One module: its dotted name, class, output shape (no batch), parameters, MACs, activation bytes.

    ``params``, ``macs`` and ``activation_bytes`` include everything inside the module.
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    activation_bytes: int = 0

    @property
    def depth(self) -> int:
        return self.name.count(".") + 1


@dataclass
class Summary:
    """What :func:`summary` found: the rows, totals of the modules that ran, and those that did not."""

    rows: list[Row]
    input_size: tuple[int, ...]
    total_params: int  # of the modules that ran (what the rows add up to)
    trainable_params: int
    non_trainable_params: int
    total_macs: int
    memory_mb: dict[str, float] = field(default_factory=dict)
    title: str = ""
    output_shape: tuple[int, ...] = ()  # of the model's (first) output, without the batch
    not_run: list[Row] = field(default_factory=list)  # modules with parameters the pass did not call
    convention: str = "inceptionkit"

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    @property
    def all_params(self) -> int:
        """Every parameter of the model, the modules that did not run included."""
        return self.total_params + sum(row.params for row in self.not_run)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["total_flops"] = self.total_flops
        data["all_params"] = self.all_params
        return data

    def __str__(self) -> str:
        return render(self)


def _first_tensor(output) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


def _is_leaf(module: nn.Module) -> bool:
    return next(module.children(), None) is None


def _within(prefix: str, name: str) -> bool:
    return not prefix or name == prefix or name.startswith(prefix + ".")


def _owner(param_name: str) -> str:
    return param_name.rpartition(".")[0]


def _weight_and_bias(module: nn.Module) -> int:
    """torchsummary's parameter count of one call: the module's own ``weight`` and ``bias`` only."""
    return sum(t.numel() for t in (getattr(module, "weight", None), getattr(module, "bias", None))
               if isinstance(t, torch.Tensor))


def memory_estimate(input_size, layer_output_elements: int, params: int, batch_size: int = 1) -> dict[str, float]:
    """torchsummary's four figures, in MB: input, forward/backward pass, params, estimated total."""
    data = {
        "input_size": math.prod(input_size) * batch_size * BYTES / MB,
        "forward_backward_pass_size": 2 * layer_output_elements * batch_size * BYTES / MB,
        "params_size": params * BYTES / MB,
    }
    data["estimated_total_size"] = sum(data.values())
    return data


@torch.no_grad()
def summary(
    model: nn.Module,
    input_size: tuple[int, ...],
    depth: int = 1,
    batch_size: int = 1,
    title: str | None = None,
    convention: str = "inceptionkit",
) -> Summary:
    """Run one forward pass (eval mode) on zeros of ``input_size`` (C, H, W) and count per module.

    Rows are the modules at most ``depth`` levels deep (``inception4c`` is depth 1,
    ``inception4c.branch2`` depth 2); each row's figures include its children. ``title`` defaults
    to the model's class name; ``convention`` picks how layer outputs count toward the memory
    estimate (see the module's docstring). An input the model cannot take raises a
    LayerInputError naming the layer.
    """
    if depth < 1:
        raise BadValue(f"depth must be at least 1 (1: one row per top-level module), got {depth}")
    if convention not in CONVENTIONS:
        raise BadValue(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    input_size = tuple(int(d) for d in input_size)
    if not input_size or min(input_size) <= 0:
        raise BadValue(f"input size must be positive numbers like (3, 224, 224), got {input_size}")
    title = title or type(model).__name__
    shapes: dict[str, tuple[int, ...]] = {}
    macs: dict[str, int] = {}
    outputs: dict[str, int] = {}  # output elements of leaf layers (per sample)
    torchsummary = {"outputs": 0, "params": 0}  # the same, counted as torchsummary counts
    ran: set[str] = set()
    names = {m: n for n, m in model.named_modules()}
    leaves = {m for m in names if _is_leaf(m)}

    def hook(module, inputs, output):
        name = names[module]
        ran.add(name)
        tensor = _first_tensor(output)
        if tensor is None:
            return
        shapes[name] = tuple(tensor.shape[1:])
        macs[name] = macs.get(name, 0) + module_macs(module, tensor)
        if module in leaves and not any(tensor is i for i in inputs):  # Identity, in-place ops: no new memory
            outputs[name] = outputs.get(name, 0) + tensor[0].numel()
        if module is not model and not isinstance(module, (nn.Sequential, nn.ModuleList)):
            torchsummary["outputs"] += tensor[0].numel()
            torchsummary["params"] += _weight_and_bias(module)

    with probing(model, forward=[(module, hook) for module in names]), locate_failure(model, title):
        result = _first_tensor(model(sample_input(model, input_size, batch_size)))

    params = dict(model.named_parameters())
    counted = {k: p for k, p in params.items() if _owner(k) in ran}
    rows = []
    for name, module in model.named_modules():
        if not name or name.count(".") >= depth or name not in shapes:
            continue
        rows.append(Row(
            name, type(module).__name__, shapes[name],
            sum(p.numel() for k, p in counted.items() if _within(name, k)),
            sum(v for k, v in macs.items() if _within(name, k)),
            BYTES * sum(v for k, v in outputs.items() if _within(name, k)),
        ))
    not_run = [
        Row(name, type(module).__name__, (), sum(p.numel() for p in module.parameters()), 0)
        for name, module in model.named_modules()
        if name and name not in ran and _owner(name) in ran | {""} and any(True for _ in module.parameters())
    ]
    total = sum(p.numel() for p in counted.values())
    trainable = sum(p.numel() for p in counted.values() if p.requires_grad)
    if convention == "torchsummary":
        memory = memory_estimate(input_size, torchsummary["outputs"], torchsummary["params"], batch_size)
    else:
        memory = memory_estimate(input_size, sum(outputs.values()), total, batch_size)
    output_shape = tuple(result.shape[1:]) if result is not None else ()
    return Summary(rows, input_size, total, trainable, total - trainable, sum(macs.values()), memory, title,
                   output_shape, not_run, convention)


HEADER = ("layer", "type", "output shape", "params", "MACs", "activations")


def table_cells(result: Summary) -> list[tuple[str, ...]]:
    """The table's rows as text cells: the modules that ran, then those that did not (marked so)."""
    cells = [
        ("  " * (row.depth - 1) + row.name, row.type, dims(row.output_shape), f"{row.params:,}", f"{row.macs:,}",
         f"{row.activation_bytes / MB:.2f} MB")
        for row in result.rows
    ]
    cells += [(row.name, row.type, "not run", f"{row.params:,}", "-", "-") for row in result.not_run]
    return cells


def render(result: Summary) -> str:
    """The summary as a plain-text table (the CLI draws the same data with rich)."""
    body = table_cells(result)
    widths = [max(len(r[i]) for r in [HEADER, *body]) for i in range(len(HEADER))]
    right = {3, 4, 5}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(HEADER))
    lines = [f"{result.title}: input {dims(result.input_size)}", rule, line(HEADER), rule]
    lines += [line(cells) for cells in body] + [rule]
    lines += totals_lines(result)
    return "\n".join(lines)


def totals_lines(result: Summary) -> list[str]:
    """The totals under the table, torchsummary's four memory lines among them."""
    m = result.memory_mb
    lines = [f"Total params: {result.total_params:,}"]
    if result.not_run:
        names = ", ".join(row.name for row in result.not_run)
        lines.append(f"  + {names}: {result.all_params - result.total_params:,} params not run in eval mode "
                     f"({result.all_params:,} params with them)")
    lines += [
        f"Trainable params: {result.trainable_params:,}",
        f"Non-trainable params: {result.non_trainable_params:,}",
        f"Multiply-adds: {result.total_macs:,} ({result.total_macs / 1e9:.3f} GMACs, "
        f"{result.total_flops / 1e9:.3f} GFLOPs)",
        f"Input size (MB): {m['input_size']:.2f}",
        f"Forward/backward pass size (MB): {m['forward_backward_pass_size']:.2f}"
        + ("  (torchsummary's count: every module's output)" if result.convention == "torchsummary" else ""),
        f"Params size (MB): {m['params_size']:.2f}",
        f"Estimated Total Size (MB): {m['estimated_total_size']:.2f}",
    ]
    return lines
