"""Per-layer summary of any nn.Module: output shapes, parameters and multiply-adds.

Multiply-adds (MACs) count convolutions and linear layers only:
conv = k_h * k_w * (c_in / groups) * c_out * h_out * w_out, linear = in * out (biases excluded).
FLOPs are 2 x MACs. Shapes leave the batch dimension out, as torchsummary does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass
class Row:
    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


@dataclass
class Summary:
    rows: list[Row]
    input_size: tuple[int, ...]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    total_macs: int
    extra: dict = field(default_factory=dict)

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    def to_dict(self) -> dict:
        data = asdict(self)
        data["total_flops"] = self.total_flops
        return data


def module_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-adds of one conv or linear layer for one sample, given its output."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        h, w = output.shape[-2:]
        return kh * kw * (module.in_channels // module.groups) * module.out_channels * h * w
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features * (output[0].numel() // module.out_features)
    return 0


def _first_tensor(output) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    return None


@torch.no_grad()
def summary(model: nn.Module, input_size: tuple[int, ...], depth: int = 1, batch_size: int = 1) -> Summary:
    """Run one forward pass on zeros of ``input_size`` (C, H, W) and count per module.

    Rows are the modules at most ``depth`` levels deep (``inception4c`` is depth 1,
    ``inception4c.branch2`` depth 2); each row's params and MACs include its children.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    macs: dict[str, int] = {}
    handles = []
    names = {m: n for n, m in model.named_modules()}

    def hook(module, _inputs, output):
        name = names[module]
        tensor = _first_tensor(output)
        if tensor is not None:
            shapes[name] = tuple(tensor.shape[1:])
            macs[name] = macs.get(name, 0) + module_macs(module, tensor)

    for module in names:
        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters(), torch.empty(0)).device
        model(torch.zeros(batch_size, *input_size, device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    def subtotal(prefix: str, table: dict[str, int]) -> int:
        return sum(v for k, v in table.items() if k == prefix or k.startswith(prefix + "."))

    param_of = {pname: p.numel() for pname, p in model.named_parameters()}
    rows = []
    for name, module in model.named_modules():
        if not name or name.count(".") >= depth or name not in shapes:
            continue
        rows.append(Row(name, type(module).__name__, shapes[name], subtotal(name, param_of), subtotal(name, macs)))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return Summary(rows, tuple(input_size), total, trainable, total - trainable, sum(macs.values()))
