"""The layer graph of any nn.Module, recorded from one real forward pass, and its depth.

Nodes are the layers that ran (modules without children, ``BasicConv`` units, or whole modules
when the graph is collapsed to a depth) and the tensor operations between them (``cat``, ``add``,
``flatten`` ...). An edge joins the layer that produced a tensor to each layer that used it. The
recording follows the real control flow, so it works for any module, ours or theirs.

Depth is the paper's: the number of layers with weights on the longest input-to-output path
(GoogLeNet: 22), optionally counting pooling layers too (GoogLeNet: 27).

Runs of identical blocks one after another (Inception-ResNet-v2's ten ``block35``) are found while
recording; :func:`collapse_repeats` keeps one of each run, so a diagram need not draw all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import BadValue
from ..models.blocks import BasicConv
from ..probe import describe, dims, locate_failure, probing, sample_input
from .counting import POOLING, WEIGHTED, module_macs

_POOL_FUNCTIONS = {"max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
                   "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool1d"}
_IGNORED = {"__get__", "__set__", "size", "dim", "numel", "__len__", "__bool__", "__format__", "__repr__",
            "__iter__", "tolist", "item", "detach", "requires_grad_", "contiguous", "__index__", "__hash__"}


@dataclass
class Node:
    """One layer or tensor operation. ``inputs`` are the names of the nodes whose outputs it used."""

    name: str
    op: str  # "input", "module" or "function"
    type: str  # class or function name
    label: str  # short description: 'Conv2d 3x3/1 64->192'
    output_shape: tuple[int, ...]  # without the batch dimension
    inputs: list[str] = field(default_factory=list)
    params: int = 0
    macs: int = 0
    weighted: bool = False
    pooling: bool = False


@dataclass
class Repeat:
    """Sibling blocks that run one after another and are the same: class, configuration, parameter
    shapes, input and output shapes (``block35_1`` ... ``block35_10``)."""

    modules: list[str]

    @property
    def title(self) -> str:
        """'block35 x10' when the names number the blocks 1, 2, 3...; else 'first..last x3'."""
        found = [re.fullmatch(r"(.+?)_?(\d+)", name) for name in self.modules]
        if all(found) and len({m[1] for m in found}) == 1 and found[0][1][-1] not in "._":
            numbers = [int(m[2]) for m in found]
            if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
                return f"{found[0][1]} x{len(numbers)}"
        return f"{self.modules[0]}..{self.modules[-1]} x{len(self.modules)}"


@dataclass
class LayerGraph:
    """Nodes in execution order (a topological order); ``output`` names the node of the result.

    ``repeats`` are the runs of identical blocks found while recording, drawn once unless expanded.
    """

    nodes: list[Node]
    output: str
    input_size: tuple[int, ...]
    repeats: list[Repeat] = field(default_factory=list)

    def __getitem__(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def depth(self, count_pooling: bool = False, stages: set[str] | None = None) -> int:
        """Layers with weights (and pooling layers, if asked) on the longest path to the output.

        With ``stages`` (top-level module names), the longest path inside those modules alone.
        """
        longest: dict[str, int] = {}
        for node in self.nodes:
            if stages is not None and stage_of(node.name) not in stages:
                continue
            own = int(node.weighted or (count_pooling and node.pooling))
            longest[node.name] = own + max((longest[i] for i in node.inputs if i in longest), default=0)
        return longest[self.output] if stages is None else max(longest.values(), default=0)


def stage_of(name: str) -> str:
    """The top-level module a node belongs to: 'inception3a.branch2.1' -> 'inception3a', 'cat:2' -> 'cat'."""
    return name.split(".")[0].split(":")[0]


def _unit(module: nn.Module) -> bool:
    """Recorded as one node: layers without children and conv-bn-act units."""
    return isinstance(module, BasicConv) or next(module.children(), None) is None


class _Recorder(TorchFunctionMode):
    """Records tensor operations run outside any recorded layer."""

    def __init__(self, graph: _Builder):
        super().__init__()
        self.graph = graph

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.graph.inside == 0 and isinstance(out, torch.Tensor):
            name = getattr(func, "__name__", str(func))
            if name in _IGNORED:  # detach, contiguous...: the same layer's output, passed on
                self.graph.pass_on((args, kwargs), out)
            else:
                self.graph.function(name, (args, kwargs), out)
        return out


class _Builder:
    def __init__(self, model: nn.Module, collapse_depth: int | None):
        self.model = model
        self.names = {m: n for n, m in model.named_modules()}
        self.collapse_depth = collapse_depth
        self.nodes: list[Node] = []
        self.producer: dict[int, str] = {}
        self.keep: list[torch.Tensor] = []  # keep outputs alive so their ids stay unique
        self.inside = 0
        self.counts: dict[str, int] = {}
        self.scope: list[str] = []
        self.shapes: dict[str, tuple] = {}  # module name -> (input shape, output shape), of its first call

    def recorded(self, module: nn.Module) -> bool:
        name = self.names.get(module)
        if name is None or module is self.model:
            return False
        if self.collapse_depth is not None and name.count(".") + 1 == self.collapse_depth:
            return True
        if self.collapse_depth is not None and name.count(".") + 1 > self.collapse_depth:
            return False  # inside a collapsed module
        return _unit(module)

    def sources(self, value) -> list[str]:
        found: list[str] = []

        def visit(item):
            if isinstance(item, torch.Tensor):
                name = self.producer.get(id(item))
                if name is not None and name not in found:
                    found.append(name)
            elif isinstance(item, (tuple, list)):
                for sub in item:
                    visit(sub)
            elif isinstance(item, dict):
                for sub in item.values():
                    visit(sub)

        visit(value)
        return found

    def add(self, node: Node, output) -> None:
        self.nodes.append(node)
        for tensor in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(tensor, torch.Tensor):
                self.producer[id(tensor)] = node.name
                self.keep.append(tensor)

    def pass_on(self, args, out: torch.Tensor) -> None:
        sources = self.sources(args)
        if sources and id(out) not in self.producer:
            self.producer[id(out)] = sources[0]
            self.keep.append(out)

    def unique(self, name: str) -> str:
        count = self.counts.get(name, 0)
        self.counts[name] = count + 1
        return name if count == 0 else f"{name}:{count}"

    def function(self, fname: str, args, out: torch.Tensor) -> None:
        inputs = self.sources(args)
        if not inputs:
            return
        name = self.unique(".".join([*self.scope[-1:], fname]) if self.scope else fname)
        pooling = fname in _POOL_FUNCTIONS
        self.add(Node(name, "function", fname, fname, tuple(out.shape[1:]), inputs, pooling=pooling), out)

    def pre(self, module, inputs):
        tensor = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
        self.shapes.setdefault(self.names.get(module, ""), (tuple(tensor.shape[1:]) if tensor is not None else (),))
        if self.inside:
            return
        if self.recorded(module):
            self.pending = self.sources(inputs)
            self.inside += 1
            self.current = module
        elif module is not self.model:
            self.scope.append(self.names[module])

    def post(self, module, _inputs, output):
        tensor = output[0] if isinstance(output, (tuple, list)) else output
        shape = tuple(tensor.shape[1:]) if isinstance(tensor, torch.Tensor) else ()
        name = self.names.get(module, "")
        if len(self.shapes.get(name, ())) == 1:
            self.shapes[name] += (shape,)
        if self.inside and module is self.current:
            layers = [m for m in module.modules()]
            weighted = any(isinstance(m, WEIGHTED) for m in layers)
            pooling = any(isinstance(m, POOLING) for m in layers)
            macs = sum(module_macs(m, tensor) for m in layers if isinstance(m, WEIGHTED)) if _unit(module) else 0
            self.add(Node(
                self.unique(self.names[module]), "module", type(module).__name__, describe(module), shape,
                self.pending, sum(p.numel() for p in module.parameters()), macs, weighted, pooling,
            ), output)
            self.inside -= 1  # after the counting above, whose tensor calls must not be recorded
        elif not self.inside and module is not self.model and self.scope and self.scope[-1] == self.names[module]:
            self.scope.pop()

    def repeats(self) -> list[Repeat]:
        """Runs of two or more sibling blocks (not single layers or conv units) that ran and are the same."""
        runs: list[Repeat] = []
        for parent, module in self.model.named_modules():
            run: list[str] = []
            key = None
            for child_name, child in module.named_children():
                name = f"{parent}.{child_name}" if parent else child_name
                shapes = self.shapes.get(name, ())
                same = None if _unit(child) or len(shapes) < 2 else (
                    type(child), repr(child), tuple(tuple(p.shape) for p in child.parameters()), shapes)
                if same is not None and same == key:
                    run.append(name)
                    continue
                if len(run) > 1:
                    runs.append(Repeat(run))
                run, key = [name], same
            if len(run) > 1:
                runs.append(Repeat(run))
        return runs


@torch.no_grad()
def layer_graph(model: nn.Module, input_size: tuple[int, ...], depth: int | None = None,
                training: bool = False) -> LayerGraph:
    """Record the layer graph of ``model`` on zeros of ``input_size`` (C, H, W), in eval mode.

    ``depth=None`` records every layer; ``depth=1`` makes each top-level module one node
    (``inception3a``), ``depth=2`` each of their children, and so on. ``training=True`` records
    train mode instead, where the auxiliary heads run (on a batch of two, which BatchNorm needs);
    the model's BatchNorm statistics are put back afterwards.
    """
    if depth is not None and depth < 1:
        raise BadValue(f"depth must be at least 1 (1: one node per top-level module), got {depth}")
    input_size = tuple(int(d) for d in input_size)
    builder = _Builder(model, depth)
    x = sample_input(model, input_size, batch_size=2 if training else 1)
    builder.add(Node(builder.unique("input"), "input", "input", f"input {dims(input_size)}", input_size), x)
    hooks = dict(pre=[(m, builder.pre) for m in builder.names], forward=[(m, builder.post) for m in builder.names])
    with probing(model, **hooks, training=training), locate_failure(model, type(model).__name__), _Recorder(builder):
        out = model(x)
    result = out[0] if isinstance(out, (tuple, list)) else out
    output = builder.producer.get(id(result), builder.nodes[-1].name)
    return LayerGraph(builder.nodes, output, input_size, builder.repeats())


def _within(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def collapse_repeats(graph: LayerGraph) -> LayerGraph:
    """The graph with each run of identical blocks drawn once.

    A run whose blocks are nodes (``depth=1``) becomes one node named by the run ('block35 x10');
    a run whose blocks were recorded layer by layer keeps the first block's layers, and what used
    the last block's output uses the first one's. A run is left as it is unless its blocks form a
    chain: each block takes only the previous block's output, and nothing else uses it.
    """
    nodes = list(graph.nodes)
    output = graph.output
    for repeat in graph.repeats:
        members = [[n for n in nodes if _within(n.name, m)] for m in repeat.modules]
        if not all(members):
            continue  # inside a node of a shallower depth, or already gone with an outer run
        inside = [{n.name for n in group} for group in members]
        outs = []
        for k, names in enumerate(inside):
            used = {i for n in nodes if n.name not in names for i in n.inputs if i in names}
            used |= {output} & names
            outs.append(used)
        chained = all(len(used) == 1 for used in outs) and all(
            i in inside[k] or i in outs[k - 1] for k in range(1, len(inside)) for n in members[k] for i in n.inputs)
        users = {n.name for n in nodes for i in n.inputs if any(i in names for names in inside[:-1])}
        if not chained or not users <= set().union(*inside) or any(output in names for names in inside[:-1]):
            continue
        last = next(iter(outs[-1]))
        if [n.name for n in members[0]] == repeat.modules[:1]:  # the blocks are nodes: one node for all
            blocks = [group[0] for group in members]
            shown = replace(blocks[0], name=repeat.title, output_shape=blocks[-1].output_shape,
                            params=sum(n.params for n in blocks), macs=sum(n.macs for n in blocks))
            replaced, rename = {blocks[0].name: shown}, {last: shown.name}
        else:  # the first block's layers stand for the run
            replaced, rename = {}, {last: next(iter(outs[0]))}
        gone = set().union(*inside[1:])
        result = []
        for node in nodes:
            if node.name in gone:
                continue
            node = replaced.get(node.name, node)
            if any(i in rename for i in node.inputs):
                node = replace(node, inputs=list(dict.fromkeys(rename.get(i, i) for i in node.inputs)))
            result.append(node)
        nodes = result
        output = rename.get(output, output)
    return LayerGraph(nodes, output, graph.input_size, graph.repeats)


def layer_depth(model: nn.Module, input_size: tuple[int, ...], count_pooling: bool = False) -> int:
    """The paper's depth: layers with weights (and pooling, if asked) on the longest path."""
    return layer_graph(model, input_size).depth(count_pooling)


@torch.no_grad()
def module_input_size(model: nn.Module, name: str, input_size: tuple[int, ...],
                      training: bool = False) -> tuple[int, ...]:
    """The shape (C, H, W) that submodule ``name`` receives when ``model`` runs on ``input_size``
    (in train mode with ``training=True``, where the auxiliary heads run)."""
    modules = dict(model.named_modules())
    if name not in modules or not name:
        stages = [n for n in modules if n and "." not in n]
        raise BadValue(
            f"{type(model).__name__} has no module {name!r}; its top-level modules are {', '.join(stages)}"
        )
    seen: list[tuple[int, ...]] = []

    def grab(_module, inputs):
        if not seen and inputs and isinstance(inputs[0], torch.Tensor):
            seen.append(tuple(inputs[0].shape[1:]))

    with probing(model, pre=[(modules[name], grab)], training=training), locate_failure(model, type(model).__name__):
        model(sample_input(model, input_size, batch_size=2 if training else 1))
    if not seen:
        mode = "train" if training else "eval"
        raise BadValue(f"module {name!r} does not run in {mode} mode (an aux head?), so it has no input to draw")
    return seen[0]
