"""int8 by static post-training quantization, calibrated on a few batches of the user's images, in
the two runtimes that have fast int8 kernels on x86: PyTorch (torchao's X86InductorQuantizer on a
``torch.export`` graph, compiled ahead of time by Inductor into oneDNN's int8 kernels) and ONNX Runtime (its
quantizer, QDQ format). Weights are int8 per output channel, activations uint8 per tensor.

On an x86 CPU without VNNI the int8 kernels multiply uint8 by int8 and add pairs of products in 16
bits, which saturate (2 x 255 x 127 > 32767); there one side gets 7 bits (:func:`int8_scheme`).
The PyTorch path leans on torchao's and Inductor's internals, so it is bound to the releases it is
tested with (:data:`TESTED`); outside them torchao's quantizer runs as it is.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from .. import hardware
from ..data import load_data
from ..data.folder import IMG_EXTENSIONS, open_image
from ..errors import BadValue, MissingFile
from ..extras import require
from ..files import atomic_write_bytes
from ..probe import probing
from .onnx import export_onnx, session
from .workarounds import (
    FastestWeightPacking,
    floor_mode_max_pools,
    forget_dead_torchscript_builtins,
    rename_frozen_constants,
)

#: the releases (from, below) of the libraries whose internals the int8 PyTorch path uses: torchao's
#: quantizer annotations (:func:`_quantizer`) and Inductor's oneDNN operations (:class:`FastestWeightPacking`)
TESTED = {"torch": ((2, 14), (2, 15)), "torchao": ((0, 18), (0, 19))}


def int8_scheme(runtime: str, machine: hardware.Hardware | None = None) -> str:
    """How int8 is laid out for ``runtime`` ("torch" or "onnxruntime") on ``machine`` (default: this
    one): "u8s8" (uint8 activations x int8 weights) where the CPU has VNNI or is not x86; without VNNI
    "u8s8, 7-bit weights": weights in [-64, 64], so that no pair of products saturates whatever the
    activations (ONNX Runtime's ``reduce_range``, as its documentation advises for U8S8 on such CPUs;
    the same weight range in torchao's configuration)."""
    machine = machine or hardware.current()
    if machine.vnni or not machine.x86:
        return "u8s8"
    return "u8s8, 7-bit weights"


def within_tested_versions() -> bool:
    """Whether the installed torch and torchao are releases in :data:`TESTED`."""
    for package, (low, high) in TESTED.items():
        version = hardware.versions().get(package)
        if version is None:
            return False
        release = tuple(int(part) for part in version.split("+")[0].split(".")[:2] if part.isdigit())
        if not low <= release < high:
            return False
    return True


def int8_passes() -> dict:
    """Inductor's passes for a quantized graph (:class:`.aot.AheadOfTime`'s ``passes``): the weight
    packing chosen by timing, within the tested releases; none outside them."""
    return {"post_grad_custom_pre_pass": FastestWeightPacking()} if within_tested_versions() else {}


def calibration_batches(calibration: Iterable | torch.Tensor) -> list[torch.Tensor]:
    """A batch, or an iterable of batches or of (batch, labels) pairs, as a list of float batches."""
    if isinstance(calibration, torch.Tensor):
        return [calibration.float()]
    batches = [(b[0] if isinstance(b, (tuple, list)) else b).float() for b in calibration]
    if not batches:
        raise BadValue("calibration holds no images: give a few batches of your own preprocessed images")
    return batches


def torch_int8(net: nn.Module, batches: list[torch.Tensor], scheme: str | None = None) -> torch.fx.GraphModule:
    """A copy of the network (eval, fp32, on CPU; ceil-mode max pools rewritten in floor mode,
    :func:`.workarounds.floor_mode_max_pools`) quantized by torchao's x86 quantizer after calibration
    on ``batches``: a graph of quantize/dequantize and fp32 ops that Inductor lowers to int8 kernels
    when it compiles it (:class:`.aot.AheadOfTime`, one library per batch size: static shapes run
    8-40% faster here than one dynamic graph). ``scheme``: :func:`int8_scheme`'s, default this
    machine's. The network itself is left as it was."""
    require("deploy", "int8 with torchao")
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError as exc:
        raise BadValue("int8 with backend='torch' needs torchao (pip install torchao); or use "
                         "backend='onnxruntime'") from exc
    net = copy.deepcopy(net).float().cpu().eval()
    floor_mode_max_pools(net)
    graph = torch.export.export(net, (batches[0][:2],), dynamic_shapes=({0: torch.export.Dim("batch")},)).module()
    scheme = scheme or int8_scheme("torch")
    if within_tested_versions():
        quantizer = _quantizer(x86)
    else:
        versions = ", ".join(f"{k} {v}" for k, v in hardware.versions().items() if k in TESTED)
        warnings.warn(f"int8 in PyTorch is tested with torch 2.14 and torchao 0.18; with {versions} torchao's "
                      f"quantizer runs as it is: Inception modules' copies stay fp32 (slower, as accurate)",
                      stacklevel=2)
        quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(_quantization_config(x86, scheme))
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for batch in batches:
            prepared(batch.cpu())
    quantized = convert_pt2e(prepared)
    rename_frozen_constants(quantized)
    forget_dead_torchscript_builtins()  # torchao's import and quantization replace operator objects
    return quantized


def _quantization_config(x86, scheme: str):
    """torchao's default x86 configuration (uint8 activations, int8 weights per output channel), with
    the weights in [-64, 64] for the 7-bit scheme, as ONNX Runtime's ``reduce_range``. (torchao's
    own ``reduce_range`` narrows the activations instead, but Inductor's int8 kernels do not clamp
    their outputs to that range, so an intermediate activation can still exceed 127 and saturate
    the next convolution.)"""
    config = x86.get_default_x86_inductor_quantization_config()
    if "7-bit weights" not in scheme:
        return config
    weight = dataclasses.replace(config.weight, quant_min=-64, quant_max=64)
    return dataclasses.replace(config, weight=weight)


def _quantizer(x86):
    """torchao's x86 quantizer, also keeping int8 through the copies inside an Inception module: a
    part of the merged 1x1 convolution's output (:mod:`.fuse`, narrowed) and the edge padding of a
    ceil-mode pool (:mod:`.workarounds`). Annotated like a max pool (output sharing its input's
    scale), a branch reaches the concatenation in int8 and the concatenation stays int8; left
    unannotated, each such copy made the convolution before it write fp32 and the concatenation
    (or the pool) run in fp32 (googlenet int8: 1.3x the time). A convolution writing uint8 may then
    want its weights blocked otherwise than packed: :func:`int8_passes` packs them again."""
    aten = torch.ops.aten

    def copies_values(node) -> bool:  # no value outside the input's range
        if node.op != "call_function":
            return False
        if node.target in (aten.narrow.default, aten.slice.Tensor):
            return True
        if node.target is aten.pad.default:
            return node.kwargs.get("mode", node.args[2] if len(node.args) > 2 else "constant") == "replicate"
        return node.target is aten.replication_pad2d.default

    class InceptionQuantizer(x86.X86InductorQuantizer):
        def _annotate_propagation_quantizable_pattern(self, node, quantization_config, filter_fn):
            if (copies_values(node) and quantization_config is not None and not x86._is_any_annotated([node])
                    and x86._is_quantized_op_pt2e(node.args[0])):
                node.meta[x86.QUANT_ANNOTATION_KEY] = x86._X86InductorQuantizationAnnotation(
                    input_qspec_map={node.args[0]: x86.get_input_act_qspec(quantization_config)},
                    _annotated=True, _is_output_of_quantized_pattern=True)
                return
            super()._annotate_propagation_quantizable_pattern(node, quantization_config, filter_fn)

        def _annotate_output_for_int8_in_int8_out_pattern(self, node):
            if copies_values(node) and x86._is_any_annotated([node]):
                self._annotate_output_share_observer_as_input(node.args[0], node)
                return
            super()._annotate_output_for_int8_in_int8_out_pattern(node)

    return InceptionQuantizer()


def quantize_onnx(path: str | os.PathLike, batches: list[torch.Tensor], out: str | os.PathLike,
                  scheme: str | None = None) -> Path:
    """ONNX Runtime's static quantization of an fp32 ONNX file into ``out``: QDQ format, calibrated
    (min-max) on ``batches``, in :func:`int8_scheme`'s ``scheme`` (default: this machine's); the fp32
    file's metadata (network, classes, preprocessing) is kept."""
    require("deploy", "int8 ONNX")
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"image": b.float().cpu().numpy()} for b in batches])

        def get_next(self):
            return next(self.items, None)

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="inceptionkit-int8-") as work:
        prepared, quantized = Path(work) / "pre.onnx", Path(work) / "int8.onnx"
        quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        reduce_range="7-bit weights" in (scheme or int8_scheme("onnxruntime")))
        model = onnx.load(str(quantized))
    source = onnx.load(str(path), load_external_data=False)
    del model.metadata_props[:]
    for prop in source.metadata_props:
        model.metadata_props.add(key=prop.key, value=prop.value)
    return atomic_write_bytes(out, model.SerializeToString())


def compare_logits(got: torch.Tensor, expected: torch.Tensor) -> tuple[float, float]:
    """How far ``got`` moved from ``expected`` (logits, one row per image): the largest difference
    relative to the largest expected logit, and the share of rows whose top-1 class is kept."""
    worst = float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-12))
    return worst, float((got.argmax(1) == expected.argmax(1)).float().mean())


def export_onnx_int8(model: nn.Module, path: str | os.PathLike, calibration) -> dict:
    """``model`` as an int8 ONNX file (exported and checked in fp32 first, then quantized), and how
    it compares with PyTorch in fp32 on the calibration images: top-1 agreement and the largest
    difference relative to the largest logit."""
    batches = calibration_batches(calibration)
    with tempfile.TemporaryDirectory(prefix="inceptionkit-onnx-") as work:
        fp32 = export_onnx(model, Path(work) / "fp32.onnx")
        scheme = int8_scheme("onnxruntime")
        quantize_onnx(fp32.path, batches, path, scheme)
    runtime = session(path)
    param = next(model.parameters())
    with probing(model), torch.no_grad():
        expected = torch.cat([model(b.to(param.device, param.dtype)).float().cpu() for b in batches])
    got = torch.cat([torch.from_numpy(runtime.run(None, {"image": b.numpy()})[0]) for b in batches])
    worst, agreement = compare_logits(got, expected)
    return {"file": str(path), "scheme": scheme, "top1_agreement": agreement, "images": len(got), "max_rel_diff": worst,
            "metadata": json.loads(runtime.get_modelmeta().custom_metadata_map.get("inceptionkit", "{}"))}


def load_calibration(data: str | os.PathLike, preprocessing, count: int = 256, batch_size: int = 32
                     ) -> list[torch.Tensor]:
    """Up to ``count`` images preprocessed for a network, in batches: ``"digits"`` (the embedded
    digits' training split) or a folder of images (searched recursively, spread evenly over its files)."""
    if count < 1:
        raise BadValue(f"count must be at least 1, got {count}")
    if os.fspath(data).strip().lower() == "digits":
        p = preprocessing
        if p.value_range != (0.0, 1.0) or p.colour == "BGR":
            raise BadValue(f"the embedded digits come as RGB in [0, 1]; this network expects {p.describe()}: "
                             f"calibrate on a folder of images instead")
        split = load_data("digits", p.input_size, mean=p.mean, std=p.std, augment=False).train
        images = [split[i][0] for i in range(min(count, len(split)))]
    else:
        root = Path(data).expanduser()
        if not root.is_dir():
            raise MissingFile(f"calibration data {data}: not 'digits' and not a folder")
        files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS and p.is_file())
        if not files:
            raise BadValue(f"{root} holds no image files ({', '.join(IMG_EXTENSIONS)})")
        chosen = files[:: max(1, len(files) // count)][:count]
        transform, mode = preprocessing.transform(), "L" if preprocessing.colour == "L" else "RGB"
        images = [transform(open_image(path, mode)) for path in chosen]
    return list(torch.stack(images).split(batch_size))
