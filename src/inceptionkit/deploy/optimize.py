"""``optimize(model, ...)``: an inference copy of a network computing the same function faster.

BatchNorm and residual scales folded, sibling 1x1 convolutions fused (:mod:`.fuse`), then run by
PyTorch (channels_last, inference mode, optionally compiled ahead of time by AOTInductor,
:mod:`.aot`; bf16 where the hardware has it) or by ONNX Runtime (fp32, or int8 by static
post-training quantization calibrated on the user's images). The original network is left
untouched; the result reports what was done and how far its outputs are from the original's.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..probe import probing
from ..train.precision import cpu_supports_bf16
from ..weights.load import preprocessing_of
from .aot import AheadOfTime
from .chunks import run_early_stages_in_chunks, split_high_resolution_stages, split_quantized_graph
from .fuse import fold_batchnorm, fold_residual_scales, fuse_sibling_convs
from .quantize import INT8_PASSES, calibration_batches, compare_logits, quantize_onnx, torch_int8

DTYPES = ("fp32", "bf16", "int8")
BACKENDS = ("torch", "onnxruntime")


@dataclass
class Optimization:
    """What :func:`optimize` did, and how the result compares with the original on a check batch."""

    dtype: str
    backend: str
    folded_batchnorms: int = 0
    folded_scales: int = 0
    merged_convs: int = 0
    chunked_stages: int = 0  # high-resolution stages run ``chunk`` images at a time
    chunk: int = 0
    channels_last: bool = False
    compiled: bool = False
    max_rel_diff: float | None = None  # max |optimized - original| / max |original| on the check batch
    top1_agreement: float | None = None  # share of calibration images whose top-1 class is unchanged (int8)
    notes: list[str] = field(default_factory=list)


class InferenceModel(nn.Module):
    """An optimized network: call it on a preprocessed batch (N x C x H x W float tensor) for logits.
    ``optimization`` says what was done; ``pretrained_cfg`` and ``preprocessing`` are the original's."""

    def __init__(self, run, optimization: Optimization, source: nn.Module):
        super().__init__()
        self.run = run
        self.optimization = optimization
        self.pretrained_cfg = dict(getattr(source, "pretrained_cfg", {}) or {})
        self.preprocessing = preprocessing_of(source)
        self.config = getattr(source, "config", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)


def optimize(model: nn.Module, dtype: str = "fp32", *, fuse: bool | None = None, backend: str = "torch",
             compile: bool = False, chunk: int | None = None,
             calibration: Iterable[torch.Tensor] | torch.Tensor | None = None, threads: int | None = None,
             spin: bool = True, check: bool = True) -> InferenceModel:
    """An inference copy of ``model`` (eval mode) that computes the same function.

    ``dtype``: "fp32"; "bf16" (PyTorch backend, where the hardware computes bf16 natively: a GPU, or a
    CPU with AVX512-BF16 or AMX); "int8" (static post-training quantization calibrated on
    ``calibration``, a batch or an iterable of preprocessed batches of the user's images: with the
    torch backend torchao's x86 quantizer, compiled ahead of time; with onnxruntime its quantizer).
    BatchNorm and residual scales are always folded; ``fuse`` also merges sibling 1x1 convolutions
    (default: where it pays: PyTorch, 2-5%, but not compiled fp32 with ``chunk=0``, which loses at
    batch 16; ONNX Runtime loses).
    ``backend``: "torch" (channels_last; ``compile``: AOTInductor, one library per input shape built
    on its first call, 15-40 s each, then the fastest path at batch 1; ``chunk``: images per pass
    through the stem and the other stages above 1/16 of the input's side, default 2 on a CPU, 0 for
    the whole batch at once: :mod:`.chunks`; in int8 those stages are a quantized graph of their own)
    or "onnxruntime"
    (``threads``: its intra-op threads; ``spin=False`` stops idle threads spinning, for sharing the
    cores). ``check``: compare with the original on a batch (the report's ``max_rel_diff``, and for
    int8 the top-1 agreement on the calibration images).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    param = next(model.parameters())
    if dtype == "int8" and calibration is None:
        raise ValueError("int8 needs calibration: a few batches of your own preprocessed images")
    if dtype == "bf16":
        if backend != "torch":
            raise ValueError("bf16 runs in PyTorch: pass backend='torch'")
        if not _native_bf16(param.device):
            raise ValueError("bf16 is refused here: this CPU has no native bf16 (AVX512-BF16 or AMX), so bf16 "
                             "would run emulated, slower than fp32; use fp32 or int8")
    if chunk is None:
        chunk = 2 if backend == "torch" and param.device.type == "cpu" else 0
    if chunk < 0:
        raise ValueError(f"chunk must be 0 (the whole batch at once) or a number of images, got {chunk}")
    if chunk and backend != "torch":
        raise ValueError("chunk is for the torch backend: ONNX Runtime runs the whole batch")
    net = copy.deepcopy(model).eval()
    net.requires_grad_(False)
    report = Optimization(dtype, backend)
    batches = calibration_batches(calibration) if calibration is not None else None
    report.folded_batchnorms = fold_batchnorm(net)
    report.folded_scales = fold_residual_scales(net)
    if fuse is None:
        # ONNX Runtime's Split is not in its blocked (NCHWc) layout, and the reorders around it cost
        # more than the one wider convolution saves; compiled fp32 on the whole batch loses at 16
        # (docs/benchmarks.md)
        fuse = backend == "torch" and (dtype == "int8" or not compile or chunk > 0)
    if fuse and backend == "onnxruntime":
        raise ValueError("fuse=True is for the torch backend: ONNX Runtime runs the merged convolutions slower")
    if fuse:
        report.merged_convs = fuse_sibling_convs(net)
    if chunk and dtype != "int8" and (stages := run_early_stages_in_chunks(net, chunk)):
        report.chunked_stages, report.chunk = len(stages), chunk
    if backend == "torch" and dtype == "int8":
        run = _torch_int8_runner(net, batches, chunk, report)
    elif backend == "torch":
        run = _torch_runner(net, dtype, compile, report)
    else:
        run = _onnx_runner(net, dtype, batches, threads, spin, check, report)
    optimized = InferenceModel(run, report, model)
    if check:
        _compare(model, optimized, report, calibration_batches(calibration) if calibration is not None else None)
    return optimized


def _native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return cpu_supports_bf16()


def _torch_runner(net: nn.Module, dtype: str, compile: bool, report: Optimization):
    device = next(net.parameters()).device
    net = net.to(memory_format=torch.channels_last)
    if dtype == "bf16":
        net = net.to(torch.bfloat16)
    report.channels_last = True
    forward = net
    if compile:
        forward = AheadOfTime(net, channels_last=True)
        report.compiled = True
    cast = torch.bfloat16 if dtype == "bf16" else torch.float32

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            x = x.to(device, cast).contiguous(memory_format=torch.channels_last)
            return forward(x).float()

    run.module = net  # what runs, for inspection
    run.compiled = forward if compile else None
    return run


def _torch_int8_runner(net: nn.Module, batches: list[torch.Tensor], chunk: int, report: Optimization):
    split = split_high_resolution_stages(net) if chunk else None
    report.compiled = True
    if split is None:
        quantized = torch_int8(net, batches)
        compiled = AheadOfTime(quantized, passes=INT8_PASSES)

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return compiled(x.detach().float().cpu())

        run.module, run.compiled = quantized, compiled
        return run
    # one quantized graph, cut in two after the high-resolution stages: those compiled for ``chunk``
    # images, the rest for the whole batch (one library holding both compiles 3x slower); int8
    # values cross the cut
    early, rest = split
    quantized = split_quantized_graph(torch_int8(nn.Sequential(early, rest), batches))
    compiled = AheadOfTime(quantized[0], passes=INT8_PASSES), AheadOfTime(quantized[1], True, INT8_PASSES)
    report.chunked_stages, report.chunk = len(early), chunk

    def run_split(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x = x.detach().float().cpu()
            return compiled[1](torch.cat([compiled[0](part) for part in x.split(chunk)]))

    run_split.module, run_split.compiled = quantized, compiled
    return run_split


def _onnx_runner(net: nn.Module, dtype: str, batches: list[torch.Tensor] | None, threads: int | None,
                 spin: bool, check: bool, report: Optimization):
    from .onnx import export_onnx, session

    with tempfile.TemporaryDirectory(prefix="inceptionkit-onnx-", ignore_cleanup_errors=True) as work:
        folder = Path(work)  # the session holds the model once made: the files go
        path = export_onnx(net.float().cpu(), folder / "model.onnx", rtol=1e-4 if check else None).path
        if dtype == "int8":
            path = quantize_onnx(path, batches, folder / "model.int8.onnx")
        runtime = session(path, threads, spin)
    name = runtime.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        out = runtime.run(None, {name: x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out)

    run.session = runtime
    return run


@torch.no_grad()
def _compare(model: nn.Module, optimized: InferenceModel, report: Optimization,
             batches: list[torch.Tensor] | None) -> None:
    if batches is None:
        size = optimized.preprocessing.input_size
        batches = [torch.randn(4, *size, generator=torch.Generator().manual_seed(0))]
    param = next(model.parameters())
    with probing(model):
        expected = torch.cat([model(b.to(param.device, param.dtype)).float().cpu() for b in batches])
    got = torch.cat([optimized(b).float().cpu() for b in batches])
    report.max_rel_diff, agreement = compare_logits(got, expected)
    if report.dtype != "fp32":
        report.top1_agreement = agreement
