"""Mixed precision: bf16 where the hardware computes it natively, fp16 with a grad scaler on older GPUs."""

from __future__ import annotations

import contextlib

import torch

from .. import hardware
from ..errors import BadValue


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` on ``device``; ``auto`` picks bf16 where the hardware has it."""
    if amp not in ("auto", "bf16", "fp16", "none"):
        raise BadValue(f"amp must be auto, bf16, fp16 or none, got {amp!r}")
    if amp == "auto":
        if hardware.native_bf16_on(device):
            return torch.bfloat16
        return torch.float16 if device.type == "cuda" else None
    if amp == "fp16" and device.type != "cuda":
        raise BadValue("fp16 mixed precision needs a GPU (a grad scaler on CUDA); on CPU use --amp bf16")
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}[amp]


def autocast(device: torch.device, dtype: torch.dtype | None):
    """torch.autocast for ``dtype`` on ``device``, or nothing when ``dtype`` is None (fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def amp_name(dtype: torch.dtype | None) -> str:
    """The ``--amp`` name of an autocast dtype: what a run records, so that a resume keeps it."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16", None: "none"}[dtype]
