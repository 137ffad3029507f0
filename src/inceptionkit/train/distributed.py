"""DistributedDataParallel set-up for runs started by ``torchrun``; a no-op for a single process.

``torchrun --nproc_per_node=N -m inceptionkit train ...`` sets RANK, LOCAL_RANK and WORLD_SIZE; we
then join the process group (nccl on GPUs, gloo on CPUs), give each process its device, and let
only rank 0 print, log and write files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import torch
import torch.distributed as dist

from ..errors import BadArgument, BadValue, MissingFile, UserError

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BadValue(f"device {name!r} asked for, but CUDA is not available on this machine")
    return device


def setup(device: str = "auto") -> DistInfo:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); otherwise one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo(device=pick_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    base = pick_device(device)
    if base.type == "cuda":
        torch.cuda.set_device(local_rank)
        base = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        # rank 0 alone evaluates and writes at each epoch's end while the others wait: allow it an hour
        dist.init_process_group(backend="nccl" if base.type == "cuda" else "gloo", timeout=timedelta(hours=1))
    return DistInfo(rank, world_size, local_rank, base)


def cleanup(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_finite(value: torch.Tensor, info: DistInfo) -> bool:
    """True when ``value`` is finite on every process (so all ranks stop together on a NaN)."""
    flag = torch.isfinite(value.detach()).all().to(torch.float32).reshape(1)
    if info.distributed:
        flag = flag.to(info.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() > 0)


_KINDS = {"MissingFile": MissingFile, "BadValue": BadValue, "BadArgument": BadArgument, "OSError": OSError}


def _as_raised_elsewhere(description: tuple[str, str]) -> Exception:
    """The error another rank raised, as one of the types the CLI reports as a user error where it was one."""
    kind, message = description
    return _KINDS.get(kind, RuntimeError)(message)


def _describe(exc: BaseException) -> tuple[str, str]:
    """``(kind, message)``: the user errors and OS errors by kind, anything else a RuntimeError."""
    kinds = ((MissingFile, "MissingFile"), (BadArgument, "BadArgument"), (UserError, "BadValue"), (OSError, "OSError"))
    return next((name for t, name in kinds if isinstance(exc, t)), "RuntimeError"), str(exc)


def rank0_first(fn: Callable[[], T], info: DistInfo) -> T:
    """``fn()`` on rank 0, then on the others (a download or unpacking happens once); when it fails on
    any rank, every rank raises that error, so none is left waiting in a collective for a rank that
    has gone (which gloo reports as a "Connection closed by peer" traceback)."""
    if not info.distributed:
        return fn()
    result, failure = None, None
    if info.is_main:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001  (told to the others, then raised here as it was)
            failure = exc
    verdict = [None if failure is None else _describe(failure)]
    dist.broadcast_object_list(verdict, src=0)
    if not info.is_main and verdict[0] is None:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001
            failure = exc
    if verdict[0] is None:  # rank 0 succeeded: did every other rank?
        verdicts = [None] * info.world_size
        dist.all_gather_object(verdicts, None if failure is None else _describe(failure))
        verdict = [next((v for v in verdicts if v is not None), None)]
    if failure is not None:
        raise failure
    if verdict[0] is not None:
        raise _as_raised_elsewhere(verdict[0])
    return result


def reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a small tensor of counts (or a confusion matrix) over all processes."""
    if info.distributed:
        values = values.to(info.device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values.cpu()


@torch.no_grad()
def same_on_all_ranks(model: torch.nn.Module, info: DistInfo) -> bool:
    """True when every process holds exactly the same parameters (a position-weighted checksum)."""
    flat = torch.cat([p.detach().reshape(-1).double().cpu() for p in model.parameters()])
    position = torch.arange(1, flat.numel() + 1, dtype=torch.float64)
    digest = torch.stack([flat.sum(), (flat * position).sum(), (flat * flat).sum()])
    if not info.distributed:
        return True
    gathered = [torch.zeros_like(digest).to(info.device) for _ in range(info.world_size)]
    dist.all_gather(gathered, digest.to(info.device))
    return all(torch.equal(g.cpu(), gathered[0].cpu()) for g in gathered)


@torch.no_grad()
def broadcast_state(model: torch.nn.Module, info: DistInfo) -> None:
    """Give every process rank 0's parameters and buffers (as DDP does when it wraps a network): a network
    drawn at random in each process becomes the same one everywhere."""
    if info.distributed:
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)
