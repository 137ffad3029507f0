"""Ahead-of-time compilation with AOTInductor: the network is exported and compiled by Inductor
into one shared library per input shape, built on the first call with that shape. A call then goes
straight into compiled C++, with no Python between layers and no guard checks: at batch 1 on a CPU
that overhead is what separates ``torch.compile`` from ONNX Runtime (docs/benchmarks.md).
"""

from __future__ import annotations

import copy
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from .workarounds import forget_dead_torchscript_builtins

_building = threading.Lock()  # Inductor's configuration and caches are the process's: one build at a time


class AheadOfTime:
    """``net`` (eval mode, frozen weights) compiled ahead of time, one library per input shape, dtype
    and device. The caller keeps the memory layout it was built for (``channels_last`` or contiguous):
    a compiled library trusts the strides it was exported with. ``store``: a folder keeping each
    library's package, loaded from there instead of built when it is there already (the caller keys
    the folder by the network's weights and everything else the library depends on)."""

    def __init__(self, net: nn.Module, channels_last: bool = False, passes: dict | None = None,
                 store: str | os.PathLike | None = None):
        self.net = net
        self.channels_last = channels_last
        self.passes = passes or {}
        self.store = Path(store) if store is not None else None
        self.built: dict[tuple, Callable[[torch.Tensor], torch.Tensor]] = {}
        self.loaded = 0  # libraries loaded from the store rather than built

    def layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layout(x)
        key = (tuple(x.shape), x.dtype, x.device)
        runner = self.built.get(key)
        if runner is None:
            runner = self.built[key] = self._build(x)
            forget_dead_torchscript_builtins()  # lowering a quantized graph replaces operator objects
        return runner(x)

    def _build(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        if self.store is None:
            return compile_ahead_of_time(self.net, x, self.passes)
        from torch._inductor import aoti_load_package

        dtype = str(x.dtype).removeprefix("torch.")
        package = self.store / f"{'x'.join(map(str, x.shape))}-{dtype}-{x.device.type}.pt2"
        if package.is_file():
            try:
                runner = aoti_load_package(str(package))
                self.loaded += 1
                return runner
            except (RuntimeError, OSError):  # a package this torch cannot load: built again
                pass
        self.store.mkdir(parents=True, exist_ok=True)
        partial = package.with_name(f".tmp-{os.getpid()}-{package.name}")
        runner = compile_ahead_of_time(self.net, x, self.passes, package_path=partial)
        os.replace(partial, package)
        return runner


def compile_ahead_of_time(net: nn.Module, example: torch.Tensor, passes: dict | None = None,
                          package_path: str | os.PathLike | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """``net`` exported at ``example``'s shape and compiled by AOTInductor with its weights frozen into
    the library (constants folded, convolution weights prepacked); the loaded library. ``passes``:
    Inductor's custom graph passes by their config name (``post_grad_custom_pre_pass``...).
    ``package_path``: keep the package there (``torch._inductor.aoti_load_package`` loads it again)."""
    from torch._inductor import aoti_compile_and_package, aoti_load_package

    with _building, torch.no_grad():  # on a copy: Inductor's freezing rewrites the graph it lowers
        program = torch.export.export(copy.deepcopy(net), (example,))
        with tempfile.TemporaryDirectory(prefix="inceptionkit-aot-") as work:
            package = aoti_compile_and_package(program, package_path=os.fspath(package_path or
                                                                               os.path.join(work, "model.pt2")),
                                               inductor_configs={"freezing": True, **(passes or {})})
            return aoti_load_package(package)  # the library is loaded: a temporary package file can go
