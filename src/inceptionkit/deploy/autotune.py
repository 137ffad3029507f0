"""``optimize(backend="auto")``: the ways to run a network that apply on this machine (:class:`Plan`),
timed against each other on the real input shape, the fastest accurate one kept; the decision and
what it built cached on disk, keyed by the network, the machine and the libraries' versions.

Which way is fastest depends on the CPU (AVX-512 with VNNI, or AVX2 only), the core count, the batch
size and the libraries: a constant chosen on one machine loses on another, so nothing here is
tuned: every candidate is measured where it will run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import hardware
from ..files import atomic_write_bytes

#: how far a candidate may be from the original network and still be chosen: the largest logit
#: difference relative to the largest logit (fp32, bf16), or how much less often than the most
#: accurate int8 candidate it keeps the original's top-1 class (int8; or, measured on few images,
#: two standard errors of that share, below which a difference is the sample's and not the plan's)
ACCURACY = {"fp32": 1e-3, "bf16": 0.05, "int8": 0.02}


RULES = 2  # part of every decision's key: raised when the plans or the way one is chosen change


@dataclass(frozen=True)
class Plan:
    """One way to run the network: the runtime, compiled ahead of time or not, images per pass
    through the high-resolution stages (0: the whole batch), sibling 1x1 convolutions merged."""

    backend: str  # "torch" or "onnxruntime"
    compile: bool = False
    chunk: int = 0
    fuse: bool = False

    @property
    def name(self) -> str:
        words = [self.backend, "aot" if self.compile else None, f"chunk {self.chunk}" if self.chunk else None,
                 "fused" if self.fuse else None]
        return " ".join(w for w in words if w)


def candidate_plans(dtype: str, device: str, chunkable: bool, batch: int,
                    machine: hardware.Hardware | None = None) -> list[Plan]:
    """The plans worth timing for ``dtype`` on ``device`` ("cpu" or "cuda") at ``batch`` images:
    PyTorch eager and ahead-of-time compiled, with the high-resolution stages in chunks of 2 or 4
    images where the network has such stages and the batch is larger (CPU only), and ONNX Runtime
    (CPU; fp32 and int8). int8 in PyTorch needs an x86 CPU (oneDNN's int8 kernels through Inductor)."""
    machine = machine or hardware.current()
    chunks = [0] + [c for c in (2, 4) if chunkable and device == "cpu" and batch > c]
    if dtype == "int8":
        torch_plans = [Plan("torch", True, c, True) for c in chunks[:2]] if machine.x86 and device == "cpu" else []
        return [*torch_plans, Plan("onnxruntime")] if device == "cpu" else []
    plans = [Plan("torch", False, c, True) for c in chunks]
    plans += [Plan("torch", True, 0, False)] + [Plan("torch", True, c, True) for c in chunks[1:2]]
    if dtype == "fp32" and device == "cpu":
        plans.append(Plan("onnxruntime"))
    return plans


@dataclass
class Candidate:
    """A plan as measured: images per second at the measured batch size, and its accuracy."""

    plan: str
    images_per_s: float
    max_rel_diff: float
    top1_agreement: float | None = None
    agreement_images: int = 0  # calibration images the top-1 agreement was measured on
    accurate: bool = True
    chosen: bool = False
    build_s: float = 0.0  # building it and its first call (a compiled library is built there)
    error: str | None = None  # why it could not be built or run here (then it is not chosen)


def time_runners(runners: dict[str, Callable[[torch.Tensor], torch.Tensor]], x: torch.Tensor,
                 budget: float, min_rounds: int = 3, max_rounds: int = 50) -> dict[str, float]:
    """Images per second of each runner on ``x`` (already warm): rounds in which each runs once in
    turn, as many as fit in ``budget`` seconds (at least ``min_rounds``); the median call counts."""
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    started = time.perf_counter()
    for round_ in range(max_rounds):
        if round_ >= min_rounds and time.perf_counter() - started > budget:
            break
        for name, runner in runners.items():
            start = time.perf_counter()
            runner(x)
            seconds[name].append(time.perf_counter() - start)
    return {name: len(x) / statistics.median(values) for name, values in seconds.items()}


def choose(candidates: list[Candidate], dtype: str) -> Candidate:
    """The fastest candidate within :data:`ACCURACY`; marks which were accurate and the one chosen."""
    ran = [c for c in candidates if c.error is None]
    if not ran:
        raise RuntimeError(f"no way to run this network in {dtype} worked here: "
                           + "; ".join(f"{c.plan}: {c.error}" for c in candidates))
    if dtype == "int8":
        faithful = max(ran, key=lambda c: c.top1_agreement or 0.0)
        best, images = faithful.top1_agreement or 0.0, faithful.agreement_images
        noise = 2 * math.sqrt(best * (1 - best) / images) if images else 0.0
        for c in candidates:
            c.accurate = c.error is None and (c.top1_agreement or 0.0) >= best - max(ACCURACY["int8"], noise)
    else:
        for c in candidates:
            c.accurate = c.error is None and c.max_rel_diff <= ACCURACY[dtype]
    pool = [c for c in candidates if c.accurate]
    if not pool:
        closest = min(c.max_rel_diff for c in ran)
        raise RuntimeError(f"no way to run this network in {dtype} computes what it computes (closest: "
                           f"{closest:.2e} of the largest logit): please report it")
    winner = max(pool, key=lambda c: c.images_per_s)
    winner.chosen = True
    return winner


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/inceptionkit/optimize`` (``~/.cache/...`` by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "inceptionkit" / "optimize"


def cache_key(**about) -> str:
    """A short hash of what a decision depends on: the network's identity and the request (given),
    this machine's hardware record, PyTorch's thread count and the libraries' versions."""
    about |= {"hardware": hardware.current().key(), "threads": torch.get_num_threads(),
              "versions": hardware.versions(), "rules": RULES}
    return hashlib.sha256(json.dumps(about, sort_keys=True, default=str).encode()).hexdigest()[:24]


def tensors_digest(batches: list[torch.Tensor] | None) -> str | None:
    """A hash of the calibration images (int8 is calibrated on them: they key what it builds)."""
    if batches is None:
        return None
    digest = hashlib.sha256()
    for batch in batches:
        digest.update(batch.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def read_decision(folder: Path, key: str) -> dict | None:
    """The cached decision under ``key``: the chosen plan and the candidates' table; None if there is
    none or it cannot be read (it is measured again then)."""
    try:
        return json.loads((folder / "decisions" / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None


def write_decision(folder: Path, key: str, plan: Plan, candidates: list[Candidate]) -> None:
    record = {"plan": asdict(plan), "candidates": [asdict(c) for c in candidates]}
    atomic_write_bytes(folder / "decisions" / f"{key}.json", json.dumps(record, indent=1).encode())
