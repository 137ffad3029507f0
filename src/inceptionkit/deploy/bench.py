"""Inference speed, ours against the peers', measured in one process on the same weights.

The peers are what people run today: torchvision's googlenet and inception_v3 (eager NCHW and
channels_last, ``torch.compile``, its quantized int8 models, bf16 autocast), timm's inception_v3,
inception_v4 and inception_resnet_v2, and ONNX Runtime (fp32, and int8 from its own quantizer) on
the peer's own export. The peer network is built with random weights and BatchNorm statistics
re-estimated on random images; our network gets the same weights, converted. Every variant runs
once to warm up, then all take turns for ``repeats`` rounds; the median time counts.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .. import hardware
from ..cost.summary import summary
from ..errors import BadValue
from ..extras import require
from ..factory import create_model
from ..weights.convert import convert
from .onnx import onnx_proto, session
from .optimize import optimize
from .quantize import quantize_onnx

PEERS = {  # our network -> the peers' builders that have it
    "googlenet": ("torchvision",),
    "inception_v3": ("torchvision", "timm"),
    "inception_v4": ("timm",),
    "inception_resnet_v2": ("timm",),
}
OUR_KWARGS = {("googlenet", "torchvision"): {"variant": "torchvision"}}


@dataclass
class Variant:
    """One way to run the network: who provides it, its precision, and ``forward`` (a batch -> logits)."""

    name: str
    family: str  # "inceptionkit" or the peer ("torchvision", "timm", "onnxruntime")
    dtype: str
    forward: Callable[[torch.Tensor], object]
    weights: str = ""  # whose weights it holds: the peer library's (ours hold the first peer's)
    reference: nn.Module | None = None  # the fp32 eager network computing the same function


@dataclass
class Timing:
    variant: str
    family: str
    dtype: str
    batch: int
    images_per_s: float
    gflops: float  # achieved: 2 x multiply-adds per image x images per second
    max_rel_diff: float | None = None  # max |logits - reference's| / max |reference's| on the timed batch
    top1_agreement: float | None = None  # int8 / bf16: share of AGREEMENT_IMAGES whose top-1 the reference's


def reestimate_batchnorm(model: nn.Module, input_size: tuple[int, int, int], batches: int = 8, batch: int = 16,
                         seed: int = 0) -> nn.Module:
    """BatchNorm statistics of a randomly initialised network measured on random images (cumulative
    averages), so that its activations and logits have realistic ranges; eval mode on return."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(batches):
            model(torch.randn(batch, *input_size, generator=generator))
    return model.eval()


def peer_model(name: str, peer: str) -> nn.Module:
    """The peer's network, randomly initialised as its library does, without aux heads, BN re-estimated."""
    torch.manual_seed(0)
    if peer == "torchvision":
        import torchvision

        build = getattr(torchvision.models, name)
        model = build(weights=None, aux_logits=False, init_weights=True, transform_input=False)
    elif peer == "timm":
        import timm

        model = timm.create_model(name, pretrained=False)
    else:
        raise BadValue(f"unknown peer {peer!r}")
    size = create_model(name, **OUR_KWARGS.get((name, peer), {})).pretrained_cfg["input_size"]
    return reestimate_batchnorm(model, tuple(size))


def ours_like(name: str, peer_net: nn.Module, peer: str) -> nn.Module:
    """Our network holding the peer's weights."""
    model = create_model(name, aux_logits=False, **OUR_KWARGS.get((name, peer), {}))
    model.load_state_dict(convert(peer_net.state_dict(), name, peer))
    return model.eval()


def torchvision_int8(name: str, peer_net: nn.Module, calibration: list[torch.Tensor]) -> nn.Module:
    """torchvision's quantizable network with the peer's weights, fused and quantized (x86 backend)
    by eager post-training quantization, as torchvision's own recipe does."""
    import torchvision.models.quantization as tvq

    kwargs = dict(weights=None, quantize=False, aux_logits=False, init_weights=False, transform_input=False)
    model = getattr(tvq, name)(**kwargs)
    model.load_state_dict(peer_net.state_dict(), strict=False)
    model.eval().fuse_model(is_qat=False)
    torch.backends.quantized.engine = "x86"
    model.qconfig = torch.ao.quantization.get_default_qconfig("x86")
    torch.ao.quantization.prepare(model, inplace=True)
    with torch.no_grad():
        for batch in calibration:
            model(batch)
    return torch.ao.quantization.convert(model, inplace=True)


def _onnx_variant(proto_model: nn.Module, example: torch.Tensor, folder: Path, label: str, threads: int,
                  calibration: list[torch.Tensor] | None = None):
    path = folder / f"{label}.onnx"
    path.write_bytes(onnx_proto(proto_model.eval(), example[:2]).SerializeToString())
    if calibration is not None:
        path = quantize_onnx(path, calibration, folder / f"{label}.int8.onnx")
    runtime = session(path, threads, spin=False)

    def onnx_forward(x: torch.Tensor):
        return runtime.run(None, {"image": x.numpy()})[0]

    return onnx_forward


def _frozen_compile(model: nn.Module):
    """``torch.compile`` with frozen weights, as ours: constants folded, convolution weights prepacked
    and fused with their ReLU. Freezing is read from Inductor's global config when a graph compiles
    (``options={"freezing": True}`` is not: the graph then calls unpacked convolutions), so it is
    switched on around each call, where the compilation for a new batch size happens."""
    import torch._inductor.config as inductor

    compiled = _eager(torch.compile(model.to(memory_format=torch.channels_last), dynamic=False), True)

    def frozen(x: torch.Tensor):
        with inductor.patch(freezing=True):
            return compiled(x)

    return frozen


def _eager(model: nn.Module, channels_last: bool = False, autocast: bool = False):
    model = model.to(memory_format=torch.channels_last) if channels_last else model

    def eager_forward(x: torch.Tensor):
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=autocast):
            return model(x.contiguous(memory_format=torch.channels_last) if channels_last else x)

    return eager_forward


def variants(name: str, *, peers: tuple[str, ...] = ("torchvision", "timm", "onnxruntime"),
             dtypes: tuple[str, ...] = ("fp32", "int8"), compile: bool = True, threads: int | None = None,
             calibration: list[torch.Tensor] | None = None, batches: tuple[int, ...] = (1, 16),
             progress: Callable[[str], None] | None = None) -> tuple[list[Variant], nn.Module]:
    """Every variant of ``name`` to time: ours (optimize's paths, forced, and ``backend="auto"`` as
    it chooses for each of ``batches``) and the peers' in ``peers`` that have the network, in
    ``dtypes`` ("fp32", "int8", "bf16" where the CPU has it natively). Returns them and our network
    (with the first peer's weights, or random ones when no peer has it)."""
    require("deploy", "the inference benchmark")
    threads = threads or torch.get_num_threads()
    libraries = [p for p in PEERS.get(name, ()) if p in peers]
    bf16 = "bf16" in dtypes and hardware.current().native_bf16
    work = tempfile.TemporaryDirectory(prefix="inceptionkit-bench-", ignore_cleanup_errors=True)
    folder = Path(work.name)  # ONNX files; the sessions hold them once made, the folder goes at the end
    found: list[Variant] = []
    ours = None
    for library in libraries:
        first = len(found)
        peer = peer_model(name, library)
        size = tuple(create_model(name, **OUR_KWARGS.get((name, library), {})).pretrained_cfg["input_size"])
        example = torch.randn(2, *size)
        calib = calibration or [torch.randn(16, *size, generator=torch.Generator().manual_seed(i)) for i in range(4)]
        ours = ours if ours is not None else ours_like(name, peer, library)
        if "fp32" in dtypes:
            found += [Variant(f"{library} NCHW", library, "fp32", _eager(peer)),
                      Variant(f"{library} channels_last", library, "fp32", _eager(peer, True))]
            if compile:
                found.append(Variant(f"{library} compile", library, "fp32", _frozen_compile(peer)))
            if "onnxruntime" in peers:
                found.append(Variant(f"onnxruntime ({library} export)", "onnxruntime", "fp32",
                                     _onnx_variant(peer, example, folder, library, threads)))
        if bf16:
            found.append(Variant(f"{library} bf16 autocast", library, "bf16", _eager(peer, True, autocast=True)))
        if "int8" in dtypes:
            if library == "torchvision":
                found.append(Variant("torchvision int8", library, "int8",
                                     _eager(torchvision_int8(name, peer, calib))))
            if "onnxruntime" in peers:
                found.append(Variant(f"onnxruntime int8 ({library} export)", "onnxruntime", "int8",
                                     _onnx_variant(peer, example, folder, library, threads, calib)))
        for variant in found[first:]:
            variant.weights, variant.reference = library, peer
    ours_first = len(found)
    if ours is None:
        torch.manual_seed(0)
        ours = create_model(name).eval()
        reestimate_batchnorm(ours, tuple(ours.pretrained_cfg["input_size"]))
    size = tuple(ours.pretrained_cfg["input_size"])
    calib = calibration or [torch.randn(16, *size, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    if not libraries and "onnxruntime" in peers:  # no library has it: ONNX Runtime on its plain export
        example = torch.randn(2, *size)
        if "fp32" in dtypes:
            found.append(Variant("onnxruntime (plain export)", "onnxruntime", "fp32",
                                 _onnx_variant(ours, example, folder, "plain", threads)))
        if "int8" in dtypes:
            found.append(Variant("onnxruntime int8 (plain export)", "onnxruntime", "int8",
                                 _onnx_variant(ours, example, folder, "plain", threads, calib)))
    for dtype in ("fp32", "int8"):
        if dtype in dtypes:
            if progress:
                progress(f"optimize(backend='auto') in {dtype}: timing the plans that apply here")
            label = "inceptionkit auto" if dtype == "fp32" else "inceptionkit int8 auto"
            found.append(Variant(label, "inceptionkit", dtype,
                                 _auto(ours, dtype, batches, compile, threads, calib if dtype == "int8" else None)))
    if "fp32" in dtypes:
        found.append(Variant("inceptionkit torch", "inceptionkit", "fp32",
                             optimize(ours, backend="torch", check=False)))
        if compile:
            found.append(Variant("inceptionkit aot", "inceptionkit", "fp32",
                                 optimize(ours, backend="torch", compile=True, check=False)))
        found.append(Variant("inceptionkit onnxruntime", "inceptionkit", "fp32",
                             optimize(ours, backend="onnxruntime", threads=threads, spin=False, check=False)))
    if bf16:
        found.append(Variant("inceptionkit bf16", "inceptionkit", "bf16",
                             optimize(ours, "bf16", backend="torch", check=False)))
        if compile:
            found.append(Variant("inceptionkit bf16 aot", "inceptionkit", "bf16",
                                 optimize(ours, "bf16", backend="torch", compile=True, check=False)))
    if "int8" in dtypes and hardware.current().x86:
        found.append(Variant("inceptionkit int8 torch", "inceptionkit", "int8",
                             optimize(ours, "int8", backend="torch", calibration=calib, check=False)))
    if "int8" in dtypes:
        found.append(Variant("inceptionkit int8 onnxruntime", "inceptionkit", "int8",
                             optimize(ours, "int8", backend="onnxruntime", calibration=calib, threads=threads,
                                      spin=False, check=False)))
    for variant in found[ours_first:]:
        variant.weights = libraries[0] if libraries else "inceptionkit"
        variant.reference = ours
    work.cleanup()
    return found, ours


def _auto(ours: nn.Module, dtype: str, batches: tuple[int, ...], compile: bool, threads: int | None,
          calibration: list[torch.Tensor] | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """``optimize(backend="auto")`` for each batch size, called by the batch it is given."""
    chosen = {b: optimize(ours, dtype, batch_size=b, compile=None if compile else False, calibration=calibration,
                          threads=threads, spin=False, check=False) for b in batches}
    return lambda x: chosen[len(x)](x) if len(x) in chosen else chosen[max(chosen)](x)


@torch.no_grad()  # a variant given as a plain module builds no autograd graph while it is timed
def measure(found: list[Variant], input_size: tuple[int, int, int], batches: tuple[int, ...] = (1, 16), *,
            repeats: int = 7, macs: int | None = None, seed: int = 0,
            progress: Callable[[str], None] | None = None) -> list[Timing]:
    """Time every variant at every batch size: one warm-up call each, then ``repeats`` rounds in which
    every variant runs once in turn (so that a slow spell of the machine hits all alike); medians.
    The warm-up's logits are compared with the variant's fp32 reference, where it has one: a fast
    variant that computes something else shows here."""
    names = [v.name for v in found]
    if len(set(names)) < len(names):
        raise BadValue(f"variants need distinct names, got {sorted(n for n in set(names) if names.count(n) > 1)}")
    agreement = _agreements(found, input_size, max(batches), seed)
    generator = torch.Generator().manual_seed(seed)
    timings = []
    for batch in batches:
        x = torch.randn(batch, *input_size, generator=generator)
        expected: dict[int, torch.Tensor] = {}
        diffs: dict[str, float | None] = {}
        for variant in found:
            if progress:
                progress(f"warm-up: {variant.name}, batch {batch}")
            got = variant.forward(x)
            diffs[variant.name] = None
            if variant.reference is not None:
                key = id(variant.reference)
                if key not in expected:
                    with torch.inference_mode():
                        expected[key] = variant.reference.eval()(x).float()
                got = torch.as_tensor(got).float()
                diffs[variant.name] = float((got - expected[key]).abs().max() / expected[key].abs().max())
        seconds: dict[str, list[float]] = {v.name: [] for v in found}
        rounds = repeats if batch > 1 else repeats * 3
        for round_ in range(rounds):
            if progress:
                progress(f"batch {batch}: round {round_ + 1}/{rounds}")
            for variant in found:
                start = time.perf_counter()
                variant.forward(x)
                seconds[variant.name].append(time.perf_counter() - start)
        for variant in found:
            rate = batch / statistics.median(seconds[variant.name])
            gflops = 2 * macs * rate / 1e9 if macs else 0.0
            timings.append(Timing(variant.name, variant.family, variant.dtype, batch, rate, gflops,
                                  diffs[variant.name], agreement.get(variant.name)))
    return timings


AGREEMENT_IMAGES = 64


@torch.inference_mode()
def _agreements(found: list[Variant], input_size: tuple[int, int, int], batch: int, seed: int) -> dict[str, float]:
    """For each reduced-precision variant with a reference: the share of :data:`AGREEMENT_IMAGES` random
    images whose top-1 class is the fp32 reference's (run ``batch`` at a time)."""
    images = torch.randn(AGREEMENT_IMAGES, *input_size, generator=torch.Generator().manual_seed(seed + 1))
    expected: dict[int, torch.Tensor] = {}
    shares = {}
    for variant in found:
        if variant.dtype == "fp32" or variant.reference is None:
            continue
        key = id(variant.reference)
        if key not in expected:
            expected[key] = variant.reference.eval()(images).argmax(1)
        got = torch.cat([torch.as_tensor(variant.forward(chunk)).argmax(1) for chunk in images.split(batch)])
        shares[variant.name] = (got == expected[key]).float().mean().item()
    return shares


def multiply_adds(model: nn.Module) -> int:
    """Multiply-adds of one image through the network at its own input size."""
    return summary(model, tuple(model.pretrained_cfg["input_size"])).total_macs


def ratios(timings: list[Timing]) -> list[dict]:
    """For each batch and precision: our fastest variant against each peer variant of that precision
    (bf16 against fp32 peers too), as ``{"batch", "dtype", "ours", "peer", "ratio"}`` rows."""
    rows = []
    for batch in sorted({t.batch for t in timings}):
        for dtype in ("fp32", "int8", "bf16"):
            ours = [t for t in timings if t.batch == batch and t.family == "inceptionkit" and t.dtype == dtype]
            if not ours:
                continue
            best = max(ours, key=lambda t: t.images_per_s)
            for peer in (t for t in timings if t.batch == batch and t.family != "inceptionkit" and t.dtype == dtype):
                rows.append({"batch": batch, "dtype": dtype, "ours": best.variant, "peer": peer.variant,
                             "ratio": best.images_per_s / peer.images_per_s})
    return rows


def as_json(timings: list[Timing]) -> dict:
    """The figures, with the machine that measured them and the libraries' versions."""
    return {"hardware": hardware.current().to_dict(), "versions": hardware.versions(),
            "timings": [asdict(t) for t in timings], "ratios": ratios(timings)}
