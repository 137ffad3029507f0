"""Work-arounds for bugs in the libraries deploy uses, each with the symptom it prevents."""

from __future__ import annotations

import contextlib
import gc

import torch


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



@contextlib.contextmanager
def exact_ceil_mode_pools():
    """Inductor (torch 2.14) lowering a quantized graph pools in floor mode where it should pool in
    ceil mode: its int8 max-pool pattern for the low-memory pooling that max_pool2d_with_indices
    decomposes into binds ``ceil_mode`` to the name of an argument that operation no longer has.
    googlenet's 3x3/2 ceil-mode pools then give 55x55 where the network has 56x56: its int8 graph
    either fails to compile (at the reshape in the next LocalResponseNorm) or, without LRN, silently
    computes on smaller maps. Within this context Inductor lowers max_pool2d_with_indices itself,
    whose int8 pattern binds every argument right."""
    from torch._inductor import decomposition

    op = torch.ops.aten.max_pool2d_with_indices.default
    saved = decomposition.decompositions.pop(op, None)
    decomposition.fast_random_decomps.cache_clear()  # the table in use is a cached copy
    try:
        yield
    finally:
        if saved is not None:
            decomposition.decompositions[op] = saved
        decomposition.fast_random_decomps.cache_clear()
