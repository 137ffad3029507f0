"""Work-arounds for bugs in the libraries deploy uses, each with the symptom it prevents."""

from __future__ import annotations

import gc
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files
from torch.jit import _builtins
from torch.nn.modules.utils import _pair

from .. import hardware
from ..errors import BadValue


def forget_dead_torchscript_builtins() -> int:
    """Drop TorchScript's builtin-operator entries whose object no longer exists; the count dropped.

    torch.jit recognises an operator by ``id()`` of its Python object. When overloads are added to
    an operator torch has already looked up (torchao's quantizer does this to the
    ``quantized_decomposed`` operators on import, Inductor again when it lowers the quantized graph),
    torch makes a new operator object and frees the old one, whose id stays in TorchScript's table.
    A later object at the same address is then taken for that operator, and ``torch.jit.script`` of
    an unrelated network fails at random ("builtin cannot be used as a value"). Every object in the
    table is either held by torch's own list of builtins or tracked by the garbage collector, so an
    id that is neither belongs to nothing."""
    table = getattr(_builtins, "_builtin_table", None)
    if not table:
        return 0
    live = {id(o) for o in gc.get_objects()} | {id(f) for f, _ in getattr(_builtins, "_builtin_ops", ())}
    dead = [key for key in table if key not in live]
    for key in dead:
        del table[key]
    return len(dead)


class FloorModeMaxPool(nn.Module):
    """A ceil-mode max pool (dilation 1) computed in floor mode: its input is first extended at the
    bottom and the right by repeating its last row and column, as far as the ceil-mode windows reach.
    Every such window holds at least one real element of that last row or column (PyTorch starts
    the last window inside the input), so repeating it does not change any maximum: the same
    function for every input, whatever its sign, and in int8 a pure copy of quantized values."""

    def __init__(self, pool: nn.MaxPool2d):
        super().__init__()
        self.kernel_size, self.stride, self.padding = _pair(pool.kernel_size), _pair(pool.stride), _pair(pool.padding)

    def extra(self, size: int, axis: int) -> int:
        """Rows (axis 0) or columns (axis 1) the ceil-mode windows reach beyond the floor-mode input."""
        k, s, p = self.kernel_size[axis], self.stride[axis], self.padding[axis]
        out = -(-(size + 2 * p - k) // s) + 1  # ceil mode
        if (out - 1) * s >= size + p:
            out -= 1
        return max(0, (out - 1) * s + k - (size + 2 * p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bottom, right = self.extra(x.shape[-2], 0), self.extra(x.shape[-1], 1)
        if bottom or right:
            x = F.pad(x, (0, right, 0, bottom), mode="replicate")
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


def floor_mode_max_pools(net: nn.Module) -> int:
    """Replace (in place) ``net``'s ceil-mode max pools with :class:`FloorModeMaxPool`; the count.

    Inductor (torch 2.14) lowers an int8 max pool through a pattern for the low-memory pooling that
    max_pool2d_with_indices decomposes into, and that pattern binds ``ceil_mode`` to the name of an
    argument the operation does not have: the pool runs in floor mode. googlenet's 3x3/2 ceil-mode
    pools then give 55x55 where the network has 56x56, and its int8 graph either fails to compile (at
    the reshape in the next LocalResponseNorm) or, without LRN, silently computes on smaller maps. The
    same pattern also matches a pool left in fp32 between a dequantize and a quantize, and then
    keeps the input's scale where the next layer reads the output's: a ceil-mode pool cannot be
    left to Inductor in either precision, so a dilated one (which the rewrite cannot express) is
    refused."""
    count = 0
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d) and child.ceil_mode:
                if _pair(child.dilation) != (1, 1) or child.return_indices:
                    raise BadValue(f"int8 with backend='torch' cannot run {name} ({child}): Inductor computes a "
                                     f"dilated max pool in ceil mode wrongly; use backend='onnxruntime'")
                setattr(parent, name, FloorModeMaxPool(child))
                count += 1
    return count


def rename_frozen_constants(graph) -> int:
    """Give the constants that torchao's quantization names ``_frozen_param<N>`` other names (in
    place, a ``torch.fx.GraphModule``); the count renamed.

    Inductor's freezing names the constants it makes (the prepacked int8 weights) ``_frozen_param<N>``
    too. When a graph cut out of a quantized one (:func:`.chunks.split_quantized_graph`) is compiled
    ahead of time, the two sets of names meet and a convolution is handed an unpacked weight ("Weight
    should be prepacked as an MKLDNN tensor" when called)."""
    renamed = 0
    for node in graph.graph.nodes:
        if node.op == "get_attr" and node.target.startswith("_frozen_param"):
            value = getattr(graph, node.target)
            delattr(graph, node.target)
            node.target = "int8_constant_" + node.target.removeprefix("_frozen_param")
            setattr(graph, node.target, value)
            renamed += 1
    graph.recompile()
    return renamed


class FastestWeightPacking(CustomGraphPass):
    """An Inductor pass on the frozen int8 graph (``post_grad_custom_pre_pass``) that gives each int8
    convolution the packing of its weights that runs fastest here; :attr:`repacked` counts the
    convolutions whose packing it changed.

    torchao's freezing pass packs the weights (``onednn.qconv_prepack``) for a convolution writing
    int32; one writing uint8, because the next layer reads int8, may want another blocking
    (inception_v3's mixed_6a 3x3/2 convolution, 288 -> 384 channels, at batch 2 with AVX512-VNNI:
    64 output channels at a time against the 48 packed), and oneDNN then reorders its weights on
    every call (4-30 ms there). Which blocking a kernel wants depends on the CPU, so each convolution
    is timed on random input of its shapes with the weights as packed and packed for oneDNN's other
    shapes (its default, then batch 1), and keeps the fastest by more than a tenth."""

    def __init__(self):
        self.repacked = 0

    def __call__(self, graph: torch.fx.Graph) -> None:
        for node in list(graph.nodes):
            if _is_int8_convolution(node) and _pack_fastest(graph.owning_module, node):
                self.repacked += 1

    def uuid(self) -> str:
        """What the pass's result depends on: its code, the CPU and the libraries."""
        return get_hash_for_files((__file__,)).hex() + hardware.current().key() + torch.__version__


def _is_int8_convolution(node: torch.fx.Node) -> bool:
    target = node.target
    return (node.op == "call_function" and getattr(target, "namespace", None) == "onednn"
            and str(getattr(target, "__name__", "")).startswith("qconv")
            and "qw" in {a.name for a in target._schema.arguments})


def _pack_fastest(gm: torch.fx.GraphModule, node: torch.fx.Node) -> bool:
    """Whether ``node``'s weights were packed again (:class:`FastestWeightPacking`)."""
    names = [a.name for a in node.target._schema.arguments]
    args = dict(zip(names, node.args)) | dict(node.kwargs)
    weight = args["qw"]
    if not (isinstance(weight, torch.fx.Node) and weight.op == "get_attr" and len(weight.users) == 1):
        return False
    values = {name: _example_value(gm, value) for name, value in args.items()}
    try:
        dense, x = values["qw"].to_dense(), values["qx"]
        packings = [values["qw"]] + [
            torch.ops.onednn.qconv_prepack(dense, values["w_scale"], float(values["x_scale"]),
                                           int(values["x_zero_point"]), values["stride"], values["padding"],
                                           values["dilation"], values["groups"], shape)
            for shape in (None, [1, *x.shape[1:]])]
        seconds = _fastest_times([lambda w=w: node.target(**(values | {"qw": w})) for w in packings])
    except (RuntimeError, AttributeError, TypeError):  # an operation oneDNN refuses: left as packed
        return False
    best = min(range(len(packings)), key=seconds.__getitem__)
    if best == 0 or seconds[best] > 0.9 * seconds[0]:
        return False
    setattr(*_owner_and_name(gm, weight.target), packings[best])
    return True


def _fastest_times(calls: list, rounds: int = 5) -> list[float]:
    """The fastest of ``rounds`` timings of each call, taken in turns after one warm-up call each."""
    for call in calls:
        call()
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        for i, call in enumerate(calls):
            start = time.perf_counter()
            call()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _owner_and_name(gm: torch.fx.GraphModule, target: str) -> tuple[nn.Module, str]:
    """The module holding a ``get_attr`` node's constant, and its attribute name there."""
    owner, _, name = target.rpartition(".")
    return (gm.get_submodule(owner) if owner else gm), name


def _example_value(gm: torch.fx.GraphModule, value):
    """An argument of a node, as a value to call its operation with: a constant as it is, an
    activation as random values of its shape, strides and dtype."""
    if isinstance(value, (list, tuple)):
        return type(value)(_example_value(gm, v) for v in value)
    if not isinstance(value, torch.fx.Node):
        return value
    if value.op == "get_attr":
        return getattr(*_owner_and_name(gm, value.target))
    meta = value.meta["val"]
    out = torch.empty_strided(meta.shape, meta.stride(), dtype=meta.dtype)
    if meta.dtype in (torch.uint8, torch.int8):
        return out.copy_(torch.randint(0, 100, meta.shape, dtype=meta.dtype))
    return out.copy_(torch.randn(meta.shape))
