"""What this process runs on, detected once: the CPU's architecture and the instruction sets that
decide which kernels are fast (AVX2, AVX-512, VNNI, AMX, native bf16), its cores, and the CUDA
devices. Every choice that depends on the hardware (the int8 scheme, bf16, what ``optimize``
measures) reads it from here, so a test can pretend to be another machine with :func:`assume`.

torch is imported inside the functions: ``import inceptionkit.hardware`` costs nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import platform
from collections.abc import Iterator
from dataclasses import dataclass

#: the instruction-set features recorded, in torch's names (``torch.cpu.get_capabilities()``)
FEATURES = ("avx2", "fma3", "avx512_f", "avx512_bw", "avx512_vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
            "amx_tile", "amx_int8", "amx_bf16", "neon", "dot", "i8mm", "bf16", "sve", "sve2")


@dataclass(frozen=True)
class Hardware:
    """One machine, as far as inference and training speed care."""

    architecture: str  # "x86_64", "aarch64" (arm64 is reported as aarch64)
    cpu: str  # the CPU's name as the system reports it
    features: tuple[str, ...]  # the FEATURES this CPU has
    kernels: str  # the vector code PyTorch dispatches to here: "AVX512", "AVX2", "DEFAULT", "SVE256"...
    physical_cores: int
    logical_cpus: int  # the CPUs this process may run on
    cuda: tuple[str, ...] = ()  # the names of the CUDA devices torch sees

    @property
    def x86(self) -> bool:
        return self.architecture == "x86_64"

    @property
    def vnni(self) -> bool:
        """An int8 multiply-add that accumulates uint8 x int8 in 32 bits (AVX512-VNNI, AVX-VNNI or
        AMX). Without it x86 int8 kernels add pairs in 16 bits, which saturate at full 8-bit range."""
        return self.x86 and bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(self.features))

    @property
    def native_bf16(self) -> bool:
        """bf16 computed by the CPU itself (AVX512-BF16, AMX or Arm's BF16): faster than fp32. Elsewhere
        PyTorch emulates it, slower than fp32."""
        return bool({"avx512_bf16", "amx_bf16", "bf16", "sve_bf16"} & set(self.features))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"vnni": self.vnni, "native_bf16": self.native_bf16}

    def key(self) -> str:
        """A short hash of the record: what a cache of hardware-dependent decisions is keyed by."""
        about = json.dumps(dataclasses.asdict(self) | {"cuda": list(self.cuda)}, sort_keys=True)
        return hashlib.sha256(about.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line: ``x86_64 AMD EPYC, 2 cores (2 CPUs), AVX2 kernels, no VNNI, no native bf16``."""
        cores = f"{self.physical_cores} cores ({self.logical_cpus} CPUs)"
        int8 = ("VNNI" if self.vnni else "no VNNI") if self.x86 else None
        bf16 = "native bf16" if self.native_bf16 else "no native bf16"
        gpus = f"CUDA: {', '.join(self.cuda)}" if self.cuda else "no CUDA device"
        parts = [f"{self.architecture} {self.cpu}".strip(), cores, f"{self.kernels} kernels", int8, bf16, gpus]
        return ", ".join(p for p in parts if p)


_assumed: list[Hardware] = []


def current() -> Hardware:
    """The machine this process runs on (or the one a test :func:`assume` s)."""
    return _assumed[-1] if _assumed else detect()


@contextlib.contextmanager
def assume(**changes) -> Iterator[Hardware]:
    """Within the block, :func:`current` reports this machine with ``changes`` (``Hardware`` fields),
    e.g. ``assume(features=("avx2", "fma3"))`` for a CPU without VNNI: for tests of both branches."""
    _assumed.append(dataclasses.replace(current(), **changes))
    try:
        yield _assumed[-1]
    finally:
        _assumed.pop()


def native_bf16_on(device) -> bool:
    """Whether ``device`` (a torch.device) computes bf16 natively: a CUDA device that does (compute
    capability 8 or more), or this machine's CPU where :attr:`Hardware.native_bf16`."""
    if device.type == "cuda":
        import torch

        return torch.cuda.is_bf16_supported(including_emulation=False)
    return current().native_bf16


@functools.cache
def detect() -> Hardware:
    """The record of this machine, read once per process: torch's cpuinfo-based capabilities
    (``torch.cpu.get_capabilities``, torch >= 2.10), else only what ``platform`` and PyTorch's
    dispatch level say."""
    import torch

    caps = dict(torch.cpu.get_capabilities()) if hasattr(torch.cpu, "get_capabilities") else {}
    architecture = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    logical = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cuda = ()
    if torch.cuda.is_available():
        cuda = tuple(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return Hardware(
        architecture=architecture,
        cpu=str(caps.get("cpu_name") or platform.processor() or "").strip(),
        features=tuple(f for f in FEATURES if caps.get(f) is True) or _features_from_dispatch(),
        kernels=torch.backends.cpu.get_cpu_capability(),
        physical_cores=min(int(caps.get("num_physical_cores") or logical), logical),
        logical_cpus=logical,
        cuda=cuda,
    )


def _features_from_dispatch() -> tuple[str, ...]:
    """What PyTorch's dispatch level implies, where cpuinfo's record is missing."""
    import torch

    level = torch.backends.cpu.get_cpu_capability()
    found = {"AVX2": ("avx2", "fma3"), "AVX512": ("avx2", "fma3", "avx512_f", "avx512_bw", "avx512_vl")}.get(level, ())
    bf16 = getattr(getattr(torch.ops, "mkldnn", None), "_is_mkldnn_bf16_supported", None)
    with contextlib.suppress(RuntimeError, AttributeError):
        if bf16 is not None and bf16():
            found += ("avx512_bf16",) if level.startswith("AVX512") else ("bf16",)
    return found


def versions() -> dict[str, str | None]:
    """The versions of the libraries whose kernels decide speed and int8 results (None: not installed)."""
    from importlib import metadata

    found = {}
    for package in ("torch", "torchvision", "torchao", "onnxruntime", "onnx", "timm"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found
