"""Work-arounds for bugs in the libraries deploy uses, each with the symptom it prevents."""

from __future__ import annotations

import ctypes
import gc
import os
import sys
import tempfile

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair


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
    from torch.jit import _builtins

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
    argument the operation no longer has: the pool runs in floor mode. googlenet's 3x3/2 ceil-mode
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
                    raise ValueError(f"int8 with backend='torch' cannot run {name} ({child}): Inductor computes a "
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


def prepack_for_the_output_written(graph: torch.fx.Graph) -> int:
    """Prepack again each int8 convolution's weights that oneDNN would reorder on every call (an
    Inductor pass run before its post-grad passes, on the frozen graph); the count prepacked again.

    torchao's freezing pass prepacks the weights (``onednn.qconv_prepack``) for the input's shape
    and a convolution writing int32, whose blocking is an fp32 output's; a convolution writing
    uint8, because the next layer reads int8, may want another blocking (inception_v3's mixed_6a
    3x3/2 conv, 288 -> 384 channels, at batch 2: ``AcdB64a4b`` against the ``AcdB48a4b`` prepacked),
    and oneDNN then reorders its weights on every call (4-30 ms there: half the network's speed once
    whole Inception modules run in int8). Each convolution runs once on random input of its shapes
    with oneDNN's log on; if the log shows a reorder, the weights are prepacked again for the shapes
    oneDNN's prepacking knows (its own dummy shape, then batch 1) until one runs without."""
    convolutions = [n for n in graph.nodes if n.op == "call_function" and n.target in _int8_convolutions()]
    if not convolutions or not torch._C._verbose.mkldnn_set_verbose(0):  # no int8 conv, or no log to read
        return 0
    return sum(_prepack_again_if_reordered(graph.owning_module, node) for node in convolutions)


def _prepack_again_if_reordered(gm: torch.fx.GraphModule, node: torch.fx.Node) -> bool:
    """Whether ``node``'s weights were prepacked again (:func:`prepack_for_the_output_written`)."""
    names = [a.name for a in node.target._schema.arguments]
    args = dict(zip(names, node.args)) | dict(node.kwargs)
    weight = args["qw"]
    if not (isinstance(weight, torch.fx.Node) and weight.op == "get_attr" and len(weight.users) == 1):
        return False
    values = {name: _example_value(gm, value) for name, value in args.items()}
    run = lambda: node.target(**values)  # noqa: E731
    try:
        if "reorder" not in _onednn_log(run):
            return False
        dense, x = values["qw"].to_dense(), values["qx"]
        for shape in (None, [1, *x.shape[1:]]):
            values["qw"] = torch.ops.onednn.qconv_prepack(
                dense, values["w_scale"], float(values["x_scale"]), int(values["x_zero_point"]), values["stride"],
                values["padding"], values["dilation"], values["groups"], shape)
            if "reorder" not in _onednn_log(run):
                setattr(*_owner_and_name(gm, weight.target), values["qw"])
                return True
    except (RuntimeError, OSError):  # a call oneDNN refuses, or no C library to flush: left as prepacked
        pass
    return False


def _owner_and_name(gm: torch.fx.GraphModule, target: str) -> tuple[nn.Module, str]:
    """The module holding a ``get_attr`` node's constant, and its attribute name there."""
    owner, _, name = target.rpartition(".")
    return (gm.get_submodule(owner) if owner else gm), name


def _int8_convolutions() -> set:
    onednn = torch.ops.onednn
    return {onednn.qconv_pointwise.default, onednn.qconv_pointwise.tensor, onednn.qconv2d_pointwise.default,
            onednn.qconv2d_pointwise.tensor, onednn.qconv2d_pointwise.binary, onednn.qconv2d_pointwise.binary_tensor}


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


def _onednn_log(run) -> str:
    """What oneDNN logs while ``run()`` runs (after one run outside the log, which builds and caches
    its primitives): its verbose lines, read from the process's standard output."""
    run()
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    libc.fflush(None)
    with tempfile.TemporaryFile(mode="w+") as log:
        saved = os.dup(1)
        os.dup2(log.fileno(), 1)
        try:
            torch._C._verbose.mkldnn_set_verbose(1)
            try:
                run()
            finally:
                torch._C._verbose.mkldnn_set_verbose(0)
                libc.fflush(None)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        return log.read()
