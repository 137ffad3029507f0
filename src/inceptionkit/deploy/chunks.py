"""The high-resolution stages run a few images at a time: the stem and the stages before the first
reduction to 1/16 of the input's side hold the largest activations, and at batch 16 oneDNN runs
them far below its speed on small batches (googlenet's 7x7/2 stem on 3 channels: 44.7 ms for 16
images at once, 10.9 ms as eight batches of 2; conv3's 3x3 at 56x56: 49.5 against 27.5 ms), while
the deep 14x14 and 7x7 stages run best on the whole batch (docs/benchmarks.md). Chunking the early
stages and concatenating their outputs before the rest computes the same function, image by image.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import BadValue
from ..probe import probing, sample_input


class InChunks(nn.Module):
    """``body`` applied to ``chunk`` images at a time, the outputs concatenated in order. The batch
    size decides the split when the graph is traced: each compiled library holds its own."""

    def __init__(self, body: nn.Module, chunk: int):
        super().__init__()
        self.body = body
        self.chunk = chunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] <= self.chunk:
            return self.body(x)
        return torch.cat([self.body(part) for part in x.split(self.chunk)])


@torch.no_grad()
def high_resolution_stages(net: nn.Module) -> list[str]:
    """The trunk's first stages, in order, up to and including the one whose output is at 1/16 of the
    input's side or less, measured on one image of the network's input size; none when no stage gets
    there (the small-input networks) or when the network has no registered trunk."""
    if not hasattr(net, "trunk") or "input_size" not in (getattr(net, "pretrained_cfg", None) or {}):
        return []
    size = tuple(net.pretrained_cfg["input_size"])
    sides: dict[str, int] = {}

    def record(name: str):
        def hook(module, inputs, out):
            sides.setdefault(name, out.shape[-1])
        return hook

    with probing(net, forward=[(getattr(net, name), record(name)) for name in net.trunk]):
        net.forward_features(sample_input(net, size))
    for count, name in enumerate(net.trunk, 1):
        if sides[name] * 16 <= size[-1] + 15:  # ceil(side / 16) or less: the first stride-16 output
            return list(net.trunk[:count])
    return []


def run_early_stages_in_chunks(net: nn.Module, chunk: int) -> list[str]:
    """Wrap the high-resolution stages of ``net`` (in place) into one :class:`InChunks` that takes
    the first stage's place (the others become identities); the stages wrapped (none for networks
    without high-resolution stages)."""
    if chunk < 1:
        raise BadValue(f"chunk must be at least 1 image, got {chunk}")
    stages = high_resolution_stages(net)
    if not stages:
        return []
    setattr(net, stages[0], InChunks(_in_order(net, stages), chunk))
    for name in stages[1:]:
        setattr(net, name, nn.Identity())
    return stages


class AfterStages(nn.Module):
    """The rest of ``net`` after its first ``skip`` trunk stages (eval mode): the remaining stages
    and the head, taking the last skipped stage's output."""

    def __init__(self, net: nn.Module, skip: list[str]):
        super().__init__()
        self.net = net
        self.stages = [name for name in net.trunk if name not in skip]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.stages:
            x = getattr(self.net, name)(x)
        return self.net.forward_head(x)


def split_high_resolution_stages(net: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """``net`` as two networks, the high-resolution stages and the rest (sharing its modules), whose
    composition is ``net`` in eval mode; None when it has no high-resolution stages."""
    stages = high_resolution_stages(net)
    if not stages:
        return None
    return _in_order(net, stages), AfterStages(net, stages)


def _in_order(net: nn.Module, stages: list[str]) -> nn.Sequential:
    return nn.Sequential(*(getattr(net, name) for name in stages))


def split_quantized_graph(graph: torch.fx.GraphModule, prefix: str = "0") -> tuple[torch.fx.GraphModule,
                                                                                    torch.fx.GraphModule]:
    """An exported graph of ``nn.Sequential(early, rest)`` (quantized or not) cut in two after the
    last operation of ``early`` (submodule ``prefix``): the graph up to it, and the rest taking its
    output. In int8 the cut goes after that output's quantization, so the two graphs hand over int8
    values and the rest reads them at the scale they were written with."""
    nodes = list(graph.graph.nodes)

    def in_early(node) -> bool:
        stack = node.meta.get("nn_module_stack") or {}
        return any(path == prefix or path.startswith(prefix + ".") for path, _ in stack.values())

    last = max((i for i, node in enumerate(nodes) if in_early(node)), default=None)
    if last is None:
        raise ValueError(f"the graph holds no operation of submodule {prefix!r}")
    cut = nodes[last]
    users = list(cut.users)
    if len(users) == 1 and users[0].target == torch.ops.quantized_decomposed.quantize_per_tensor.default:
        cut = users[0]

    early = copy.deepcopy(graph)
    early_cut = next(n for n in early.graph.nodes if n.name == cut.name)
    output = next(n for n in early.graph.nodes if n.op == "output")
    output.args = (type(output.args[0])([early_cut]),) if isinstance(output.args[0], (tuple, list)) else (early_cut,)
    early.graph.eliminate_dead_code()
    early.recompile()

    rest = copy.deepcopy(graph)
    rest_cut = next(n for n in rest.graph.nodes if n.name == cut.name)
    (inputs,) = [n for n in rest.graph.nodes if n.op == "placeholder"]
    with rest.graph.inserting_before(inputs):
        features = rest.graph.placeholder("features")
    rest_cut.replace_all_uses_with(features)
    for node in list(inputs.users):  # export's guard on the images' shape goes with the early graph
        if node.op == "call_module" and not node.users:
            rest.graph.erase_node(node)
    rest.graph.eliminate_dead_code()
    rest.graph.erase_node(inputs)
    rest.recompile()
    return early, rest
