"""Per-layer summary of any nn.Module: output shapes, parameters, multiply-adds and activation memory.

Shapes leave the batch dimension out, as torchsummary does. The memory estimate follows
torchsummary's convention (float32, MB = 2**20 bytes): input size; forward/backward pass size =
2 x the outputs of every layer (kept for the backward pass, plus their gradients); params size;
their total. torchsummary also adds the outputs of container modules (an inception module *and*
its branches) and of layers that hand back their input (Identity, in-place ReLU), counting the
same tensor twice or more; here each new tensor a layer makes counts once.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .counting import dims, locate_failure, module_macs, sample_input

MB = 1024**2
BYTES = 4  # torchsummary's float32 convention


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
    rows: list[Row]
    input_size: tuple[int, ...]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    total_macs: int
    memory_mb: dict[str, float] = field(default_factory=dict)
    title: str = ""
    output_shape: tuple[int, ...] = ()  # of the model's (first) output, without the batch

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    def to_dict(self) -> dict:
        data = asdict(self)
        data["total_flops"] = self.total_flops
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
    model: nn.Module, input_size: tuple[int, ...], depth: int = 1, batch_size: int = 1, title: str = ""
) -> Summary:
    """Run one forward pass (eval mode) on zeros of ``input_size`` (C, H, W) and count per module.

    Rows are the modules at most ``depth`` levels deep (``inception4c`` is depth 1,
    ``inception4c.branch2`` depth 2); each row's figures include its children. ``depth=0`` gives
    no rows, only totals. An input the model cannot take raises a LayerInputError naming the layer.
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    input_size = tuple(int(d) for d in input_size)
    if not input_size or min(input_size) <= 0:
        raise ValueError(f"input size must be positive numbers like (3, 224, 224), got {input_size}")
    shapes: dict[str, tuple[int, ...]] = {}
    macs: dict[str, int] = {}
    outputs: dict[str, int] = {}  # output elements of leaf layers (per sample)
    names = {m: n for n, m in model.named_modules()}
    leaves = {m for m in names if _is_leaf(m)}

    def hook(module, inputs, output):
        name = names[module]
        tensor = _first_tensor(output)
        if tensor is None:
            return
        shapes[name] = tuple(tensor.shape[1:])
        macs[name] = macs.get(name, 0) + module_macs(module, tensor)
        if module in leaves and not any(tensor is i for i in inputs):  # Identity, in-place ops: no new memory
            outputs[name] = outputs.get(name, 0) + tensor[0].numel()

    handles = [module.register_forward_hook(hook) for module in names]
    was_training = model.training
    model.eval()
    try:
        with locate_failure(model, title or type(model).__name__):
            result = _first_tensor(model(sample_input(model, input_size, batch_size)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    param_of = {pname: p.numel() for pname, p in model.named_parameters()}
    rows = []
    for name, module in model.named_modules():
        if not name or name.count(".") >= depth or name not in shapes:
            continue
        rows.append(Row(
            name, type(module).__name__, shapes[name],
            sum(v for k, v in param_of.items() if _within(name, k)),
            sum(v for k, v in macs.items() if _within(name, k)),
            BYTES * sum(v for k, v in outputs.items() if _within(name, k)),
        ))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    memory = memory_estimate(input_size, sum(outputs.values()), total, batch_size)
    output_shape = tuple(result.shape[1:]) if result is not None else ()
    return Summary(
        rows, input_size, total, trainable, total - trainable, sum(macs.values()), memory, title, output_shape
    )


def render(result: Summary) -> str:
    """The summary as a plain-text table (the CLI draws the same data with rich)."""
    header = ("layer", "type", "output shape", "params", "MACs", "activations")
    body = [
        ("  " * (row.depth - 1) + row.name, row.type, dims(row.output_shape), f"{row.params:,}", f"{row.macs:,}",
         f"{row.activation_bytes / MB:.2f} MB")
        for row in result.rows
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    right = {3, 4, 5}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(header))
    lines = [f"{result.title or 'model'}: input {dims(result.input_size)}", rule, line(header), rule]
    lines += [line(cells) for cells in body] + [rule]
    lines += totals_lines(result)
    return "\n".join(lines)


def totals_lines(result: Summary) -> list[str]:
    m = result.memory_mb
    return [
        f"Total params: {result.total_params:,}",
        f"Trainable params: {result.trainable_params:,}",
        f"Non-trainable params: {result.non_trainable_params:,}",
        f"Multiply-adds: {result.total_macs:,} ({result.total_macs / 1e9:.3f} GMACs, "
        f"{result.total_flops / 1e9:.3f} GFLOPs)",
        f"Input size (MB): {m['input_size']:.2f}",
        f"Forward/backward pass size (MB): {m['forward_backward_pass_size']:.2f}",
        f"Params size (MB): {m['params_size']:.2f}",
        f"Estimated Total Size (MB): {m['estimated_total_size']:.2f}",
    ]
