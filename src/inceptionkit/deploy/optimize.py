"""``optimize(model, ...)``: an inference copy of a network computing the same function faster.

BatchNorm and residual scales folded, sibling 1x1 convolutions fused (:mod:`.fuse`), then run by
PyTorch (channels_last, inference mode, optionally compiled ahead of time by AOTInductor,
:mod:`.aot`; bf16 where the hardware has it) or by ONNX Runtime (fp32, or int8 by static
post-training quantization calibrated on the user's images). By default every way that applies on
this machine is built and timed, and the fastest accurate one kept (:mod:`.autotune`). The original
network is left untouched; the result reports what was done and how far its outputs are from the
original's.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .. import hardware
from ..errors import BadValue
from ..extras import require
from ..files import atomic_write_bytes
from ..probe import probing
from ..weights.preprocessing import network_identity, preprocessing_of
from . import autotune
from .aot import AheadOfTime
from .autotune import Candidate, Plan
from .chunks import (
    high_resolution_stages,
    run_early_stages_in_chunks,
    split_high_resolution_stages,
    split_quantized_graph,
)
from .fuse import fold_batchnorm, fold_residual_scales, fuse_sibling_convs
from .onnx import export_onnx, session
from .quantize import (
    calibration_batches,
    compare_logits,
    int8_passes,
    int8_scheme,
    quantize_onnx,
    torch_int8,
)

DTYPES = ("fp32", "bf16", "int8")
BACKENDS = ("auto", "torch", "onnxruntime")


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
    int8_scheme: str | None = None  # quantize.int8_scheme's: "u8s8", or 7 bits on one side without VNNI
    batch_size: int | None = None  # backend="auto": the batch size the candidates were timed at
    candidates: list[Candidate] = field(default_factory=list)  # backend="auto": every plan timed, the chosen marked
    reused_decision: bool = False  # backend="auto": the choice came from the cache, nothing was timed
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        """The candidates (backend="auto") as aligned text, fastest first."""
        rows = sorted(self.candidates, key=lambda c: -c.images_per_s)
        lines = [f"{'plan':<28} {'images/s':>9} {'diff':>9} {'top-1':>6}  "]
        for c in rows:
            top1 = "" if c.top1_agreement is None else f"{c.top1_agreement:.3f}"
            mark = "chosen" if c.chosen else (f"failed: {c.error}" if c.error else "" if c.accurate else "inaccurate")
            lines.append(f"{c.plan:<28} {c.images_per_s:>9.1f} {c.max_rel_diff:>9.1e} {top1:>6}  {mark}")
        return "\n".join(lines)


class InferenceModel(nn.Module):
    """An optimized network: call it on a preprocessed batch (N x C x H x W float tensor) for logits.
    ``optimization`` says what was done; ``pretrained_cfg`` and ``preprocessing`` are the original's."""

    def __init__(self, runner, optimization: Optimization, source: nn.Module):
        super().__init__()
        self.runner = runner  # TorchRunner, Int8Runner, ChunkedInt8Runner or OnnxRunner
        self.optimization = optimization
        self.pretrained_cfg = dict(getattr(source, "pretrained_cfg", {}) or {})
        self.preprocessing = preprocessing_of(source)
        self.config = getattr(source, "config", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.runner(x)


@dataclass(eq=False)
class TorchRunner:
    """``module`` (channels_last, fp32 or bf16) in PyTorch, through ``compiled`` (its AheadOfTime
    library) when there is one: the batch moved to ``device`` and ``dtype``, the logits in fp32."""

    module: nn.Module
    compiled: AheadOfTime | None
    device: torch.device
    dtype: torch.dtype

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        forward = self.module if self.compiled is None else self.compiled
        with torch.inference_mode():
            x = x.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)
            return forward(x).float()


@dataclass(eq=False)
class Int8Runner:
    """The int8 graph ``module`` run by ``compiled``, its AheadOfTime library, on the CPU."""

    module: nn.Module
    compiled: AheadOfTime

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.compiled(x.detach().float().cpu())


@dataclass(eq=False)
class ChunkedInt8Runner:
    """The int8 graph cut after the high-resolution stages: ``module`` holds the two graphs and
    ``compiled`` their AheadOfTime libraries; the first runs ``chunk`` images at a time, the second the
    whole batch."""

    module: tuple[nn.Module, nn.Module]
    compiled: tuple[AheadOfTime, AheadOfTime]
    chunk: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        early, rest = self.compiled
        with torch.no_grad():
            x = x.detach().float().cpu()
            return rest(torch.cat([early(part) for part in x.split(self.chunk)]))


@dataclass(eq=False)
class OnnxRunner:
    """An ONNX Runtime ``session`` fed the batch in fp32 on the CPU as its input ``input_name``."""

    session: object  # onnxruntime.InferenceSession
    input_name: str

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {self.input_name: x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out)


def optimize(model: nn.Module, dtype: str = "fp32", *, backend: str = "auto", fuse: bool | None = None,
             compile: bool | None = None, chunk: int | None = None,
             calibration: Iterable[torch.Tensor] | torch.Tensor | None = None, batch_size: int | None = None,
             budget: float = 20.0, cache: bool | str | os.PathLike = True, threads: int | None = None,
             spin: bool = True, check: bool = True) -> InferenceModel:
    """An inference copy of ``model`` (eval mode) that computes the same function.

    ``dtype``: "fp32"; "bf16" (PyTorch, where the hardware computes bf16 natively: a GPU, or a CPU
    with AVX512-BF16, AMX or Arm's BF16); "int8" (static post-training quantization calibrated on
    ``calibration``, a batch or an iterable of preprocessed batches of the user's images: in PyTorch
    torchao's x86 quantizer, compiled ahead of time; in ONNX Runtime its quantizer; 7 bits on one
    side on x86 CPUs without VNNI, :func:`.quantize.int8_scheme`).

    ``backend="auto"`` (default) builds every plan that applies here (:func:`.autotune.candidate_plans`:
    PyTorch eager or compiled ahead of time, the high-resolution stages in chunks of 0, 2 or 4 images,
    ONNX Runtime), times them on ``batch_size`` images (default: the first calibration batch's size,
    else 1) for up to ``budget`` seconds after building them, and keeps the fastest whose outputs stay
    within :data:`.autotune.ACCURACY`; ``.optimization.candidates`` holds the table. Building costs
    more than timing: a compiled library takes 15-60 s. The decision and what was built are cached
    in ``cache`` (a folder; default ``~/.cache/inceptionkit/optimize``; False: none), keyed by the
    network's weights, the request, this machine's hardware record and the libraries' versions: a
    second call loads the winner instead of measuring. ``fuse``, ``compile`` and ``chunk`` given with
    ``backend="auto"`` narrow the plans timed.

    ``backend="torch"`` or ``"onnxruntime"`` forces the runtime and measures nothing: channels_last;
    ``compile`` (default False): AOTInductor, one library per input shape built on its first call;
    ``chunk``: images per pass through the stem and the stages above 1/16 of the input's side
    (default 2 on a CPU; 0 for the whole batch at once, :mod:`.chunks`; in int8 those stages are a
    quantized graph of their own); ``fuse`` (default: where it paid on the machines measured,
    docs/benchmarks.md) merges sibling 1x1 convolutions. ONNX Runtime: ``threads``, its intra-op
    threads; ``spin=False`` stops idle threads spinning, for sharing the cores.

    ``check``: compare with the original (the report's ``max_rel_diff``, and for int8 the top-1
    agreement on the calibration images).
    """
    require("deploy", "optimize")
    if dtype not in DTYPES:
        raise BadValue(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if backend not in BACKENDS:
        raise BadValue(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    param = next(model.parameters())
    if dtype == "int8" and calibration is None:
        raise BadValue("int8 needs calibration: a few batches of your own preprocessed images")
    if dtype == "bf16":
        if backend == "onnxruntime":
            raise BadValue("bf16 runs in PyTorch: pass backend='torch' or 'auto'")
        if not hardware.native_bf16_on(param.device):
            raise BadValue("bf16 is refused here: this CPU has no native bf16 (AVX512-BF16, AMX or Arm's BF16), "
                             "so bf16 would run emulated, slower than fp32; use fp32 or int8")
    if chunk is not None and chunk < 0:
        raise BadValue(f"chunk must be 0 (the whole batch at once) or a number of images, got {chunk}")
    if chunk and backend == "onnxruntime":
        raise BadValue("chunk is for the torch backend: ONNX Runtime runs the whole batch")
    if fuse and backend == "onnxruntime":
        raise BadValue("fuse=True is for the torch backend: ONNX Runtime runs the merged convolutions slower")
    if compile and backend == "onnxruntime":
        raise BadValue("compile is for the torch backend: ONNX Runtime compiles its own graph")
    if batch_size is not None and batch_size < 1:
        raise BadValue(f"batch_size must be at least 1, got {batch_size}")
    batches = calibration_batches(calibration) if calibration is not None else None
    if backend == "torch" and dtype == "int8" and not hardware.current().x86:
        warnings.warn(f"int8 in PyTorch runs oneDNN's x86 kernels; on this {hardware.current().architecture} "
                      f"CPU ONNX Runtime runs it instead", stacklevel=2)
        backend = "onnxruntime"
    if backend == "auto":
        return _autotuned(model, dtype, batches, fuse=fuse, compile=compile, chunk=chunk, batch_size=batch_size,
                          budget=budget, cache=cache, threads=threads, spin=spin, check=check)
    plan = _forced_plan(model, dtype, backend, fuse, compile, chunk)
    optimized = _build(model, plan, dtype, batches, threads, spin, check)
    if check:
        _compare(model, optimized, optimized.optimization, batches)
    return optimized


def _forced_plan(model: nn.Module, dtype: str, backend: str, fuse: bool | None, compile: bool | None,
                 chunk: int | None) -> Plan:
    """The plan asked for by name, its unset parts filled with the defaults."""
    on_cpu = next(model.parameters()).device.type == "cpu"
    if backend == "onnxruntime":
        return Plan("onnxruntime")
    compile = dtype == "int8" or bool(compile)
    chunk = (2 if on_cpu else 0) if chunk is None else chunk
    if fuse is None:
        # compiled fp32 on the whole batch lost at batch 16 where it was measured (docs/benchmarks.md)
        fuse = dtype == "int8" or not compile or chunk > 0
    return Plan("torch", compile, chunk, fuse)


def _build(model: nn.Module, plan: Plan, dtype: str, batches: list[torch.Tensor] | None, threads: int | None,
           spin: bool, check: bool, store: Path | None = None) -> InferenceModel:
    """``model`` rewritten and run as ``plan`` says (``store``: where compiled libraries and ONNX
    files are kept and found again)."""
    net = copy.deepcopy(model).eval()
    net.requires_grad_(False)
    report = Optimization(dtype, plan.backend)
    report.folded_batchnorms = fold_batchnorm(net)
    report.folded_scales = fold_residual_scales(net)
    if plan.fuse:
        report.merged_convs = fuse_sibling_convs(net)
    if dtype == "int8":
        report.int8_scheme = int8_scheme(plan.backend)
    if plan.chunk and dtype != "int8" and (stages := run_early_stages_in_chunks(net, plan.chunk)):
        report.chunked_stages, report.chunk = len(stages), plan.chunk
    if plan.backend == "torch" and dtype == "int8":
        runner = _torch_int8_runner(net, batches, plan.chunk, report, store)
    elif plan.backend == "torch":
        runner = _torch_runner(net, dtype, plan.compile, report, store)
    else:
        runner = _onnx_runner(net, dtype, batches, threads, spin, check, report, store)
    return InferenceModel(runner, report, model)


def _autotuned(model: nn.Module, dtype: str, batches: list[torch.Tensor] | None, *, fuse, compile, chunk,
               batch_size, budget, cache, threads, spin, check) -> InferenceModel:
    """optimize(backend="auto"): the candidates built and timed, or the cached decision loaded."""
    device = next(model.parameters()).device
    size = tuple(preprocessing_of(model).input_size)
    batch = batch_size or (len(batches[0]) if batches else 1)
    chunkable = bool(high_resolution_stages(model))
    plans = [p for p in autotune.candidate_plans(dtype, device.type, chunkable, batch)
             if (compile is None or p.compile == compile) and (chunk is None or p.chunk == chunk)]
    if fuse is not None:
        plans = list(dict.fromkeys(dataclasses.replace(p, fuse=fuse and p.backend == "torch") for p in plans))
    if not plans:
        raise BadValue(f"no way to run {dtype} here with compile={compile}, chunk={chunk}, fuse={fuse}")
    folder = None if cache is False else (autotune.default_cache_dir() if cache is True else Path(cache))
    identity = {"network": network_identity(model), "dtype": dtype, "device": str(device),
                "calibration": autotune.tensors_digest(batches), "spin": spin, "threads_onnx": threads}
    key = autotune.cache_key(**identity, batch=batch, input=size, plans=[p.name for p in plans])
    store_of = (lambda plan: folder / "built" / autotune.cache_key(**identity, plan=plan.name)) if folder else None
    x = torch.randn(batch, *size, generator=torch.Generator().manual_seed(0))
    decision = autotune.read_decision(folder, key) if folder else None
    if decision is not None:
        plan = Plan(**decision["plan"])
        optimized = _build(model, plan, dtype, batches, threads, spin, check, store_of(plan))
        report = optimized.optimization
        report.candidates = [Candidate(**c) for c in decision["candidates"]]
        report.reused_decision = True
        if check:
            _evaluate(model, optimized, x, batches, report)
    else:
        built, candidates = {}, []
        for plan in plans:
            started = time.perf_counter()
            candidate = Candidate(plan.name, 0.0, float("inf"))
            try:
                optimized = _build(model, plan, dtype, batches, threads, spin, check,
                                   store_of(plan) if store_of else None)
                _evaluate(model, optimized, x, batches, candidate)
                built[plan] = optimized
            except Exception as exc:  # noqa: BLE001 - a plan this machine or network cannot run is left out
                candidate.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            candidate.build_s = time.perf_counter() - started
            candidates.append(candidate)
        speeds = autotune.time_runners({p.name: built[p] for p in built}, x, budget) if built else {}
        for candidate in candidates:
            candidate.images_per_s = speeds.get(candidate.plan, 0.0)
        winner = autotune.choose(candidates, dtype)
        plan = next(p for p in plans if p.name == winner.plan)
        optimized = built[plan]
        report = optimized.optimization
        report.candidates = candidates
        report.max_rel_diff, report.top1_agreement = winner.max_rel_diff, winner.top1_agreement
        if folder:
            autotune.write_decision(folder, key, plan, candidates)
    report.batch_size = batch
    return optimized


@torch.no_grad()
def _evaluate(model: nn.Module, optimized: InferenceModel, x: torch.Tensor, batches: list[torch.Tensor] | None,
              into) -> None:
    """How far ``optimized`` is from ``model``, at the batch size of ``x`` only (a compiled library is
    built per batch size): the largest logit difference on ``x`` relative to the largest logit, and
    for int8 the top-1 agreement on the calibration images, run in batches of that size."""
    param = next(model.parameters())
    with probing(model):
        expected = model(x.to(param.device, param.dtype)).float().cpu()
        into.max_rel_diff = compare_logits(optimized(x).float().cpu(), expected)[0]
        if optimized.optimization.dtype == "int8" and batches:
            images = torch.cat(batches)
            if len(images) < len(x):
                images = images.repeat(-(-len(x) // len(images)), 1, 1, 1)
            parts = images[: len(images) // len(x) * len(x)].split(len(x))
            expected = torch.cat([model(b.to(param.device, param.dtype)).float().cpu() for b in parts])
            got = torch.cat([optimized(b).float().cpu() for b in parts])
            into.top1_agreement = compare_logits(got, expected)[1]
            if hasattr(into, "agreement_images"):
                into.agreement_images = len(got)


def _torch_runner(net: nn.Module, dtype: str, compile: bool, report: Optimization,
                  store: Path | None) -> TorchRunner:
    device = next(net.parameters()).device
    net = net.to(memory_format=torch.channels_last)
    if dtype == "bf16":
        net = net.to(torch.bfloat16)
    report.channels_last = True
    compiled = AheadOfTime(net, channels_last=True, store=store) if compile else None
    report.compiled = bool(compile)
    return TorchRunner(net, compiled, device, torch.bfloat16 if dtype == "bf16" else torch.float32)


def _torch_int8_runner(net: nn.Module, batches: list[torch.Tensor], chunk: int, report: Optimization,
                       store: Path | None) -> Int8Runner | ChunkedInt8Runner:
    split = split_high_resolution_stages(net) if chunk else None
    report.compiled = True
    if split is None:
        quantized = torch_int8(net, batches, report.int8_scheme)
        return Int8Runner(quantized, AheadOfTime(quantized, passes=int8_passes(), store=store))
    # one quantized graph, cut in two after the high-resolution stages: those compiled for ``chunk``
    # images, the rest for the whole batch (one library holding both compiles 3x slower); int8
    # values cross the cut
    early, rest = split
    quantized = split_quantized_graph(torch_int8(nn.Sequential(early, rest), batches, report.int8_scheme))
    compiled = (AheadOfTime(quantized[0], passes=int8_passes(), store=store and store / "early"),
                AheadOfTime(quantized[1], channels_last=True, passes=int8_passes(), store=store and store / "rest"))
    report.chunked_stages, report.chunk = len(early), chunk
    return ChunkedInt8Runner(quantized, compiled, chunk)


def _onnx_runner(net: nn.Module, dtype: str, batches: list[torch.Tensor] | None, threads: int | None,
                 spin: bool, check: bool, report: Optimization, store: Path | None) -> OnnxRunner:

    kept = store / ("model.int8.onnx" if dtype == "int8" else "model.onnx") if store else None
    if kept is not None and kept.is_file():
        runtime = session(kept, threads, spin)
    else:
        with tempfile.TemporaryDirectory(prefix="inceptionkit-onnx-", ignore_cleanup_errors=True) as work:
            folder = Path(work)  # the session holds the model once made: the files go
            path = export_onnx(net.float().cpu(), folder / "model.onnx", rtol=1e-4 if check else None).path
            if dtype == "int8":
                path = quantize_onnx(path, batches, folder / "model.int8.onnx", report.int8_scheme)
            runtime = session(path, threads, spin)
            if kept is not None:
                atomic_write_bytes(kept, path.read_bytes())
    return OnnxRunner(runtime, runtime.get_inputs()[0].name)


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
