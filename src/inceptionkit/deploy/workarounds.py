"""Work-arounds for bugs in the libraries deploy uses, each with the symptom it prevents."""

from __future__ import annotations

import gc

from torch import nn


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


def ceil_mode_max_pools(net: nn.Module) -> list[str]:
    """The names of ``net``'s max pools in ceil mode, which int8 leaves in fp32.

    Inductor (torch 2.14) lowers an int8 max pool through a pattern for the low-memory pooling that
    max_pool2d_with_indices decomposes into, and that pattern binds ``ceil_mode`` to the name of an
    argument the operation no longer has: the pool runs in floor mode. googlenet's 3x3/2 ceil-mode
    pools then give 55x55 where the network has 56x56, and its int8 graph either fails to compile (at
    the reshape in the next LocalResponseNorm) or, without LRN, silently computes on smaller maps.
    Left unquantized, such a pool runs on the dequantized values in a kernel Inductor generates, at
    the right size (and, with the early stages in chunks, as fast as an int8 pool: docs/benchmarks.md)."""
    return [name for name, module in net.named_modules() if isinstance(module, nn.MaxPool2d) and module.ceil_mode]
