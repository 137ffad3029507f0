"""ONNX export, checked in ONNX Runtime: the network in eval mode, any batch size, with its classes
and preprocessing in the file's metadata, and its output compared with PyTorch's before the file is
kept (a file that disagrees is never written).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import BadValue
from ..extras import require
from ..files import atomic_save, check_output
from ..probe import probing
from ..runs import META_KEY  # the metadata_props key of the network, classes and preprocessing (JSON)
from ..weights.preprocessing import preprocessing_of


class ExportMismatch(ValueError):
    """ONNX Runtime's output differs from PyTorch's beyond the tolerance: the network does not export faithfully."""


@dataclass
class OnnxExport:
    """Where the file went and how closely ONNX Runtime matched PyTorch on a check batch."""

    path: Path
    max_abs_diff: float
    max_rel_diff: float  # max |ONNX Runtime - PyTorch| / max |PyTorch|
    opset: int


def export_onnx(model: nn.Module, path: str | os.PathLike, *, rtol: float | None = 1e-4, check_batch: int = 3,
                seed: int = 0) -> OnnxExport:
    """Write ``model`` (eval mode; left as it was) to ``path`` as ONNX with a dynamic batch size, input
    ``image`` (N x C x H x W, preprocessed as ``preprocessing_of(model)`` says) and output ``logits``.
    ONNX Runtime then runs a random batch of ``check_batch`` images: the file is written only when its
    output is within ``rtol`` of PyTorch's (relative to the largest logit), else :class:`ExportMismatch`
    (``rtol=None``: measured and reported, not enforced)."""
    import onnx

    path = Path(path)
    if path.suffix != ".onnx":
        raise BadValue(f"ONNX files end in .onnx, got {path.name}")
    check_output(path)
    prep = preprocessing_of(model)
    example = torch.randn(2, *prep.input_size, generator=torch.Generator().manual_seed(seed))
    param = next(model.parameters())
    with probing(model):
        proto = onnx_proto(model, example.to(param.device, param.dtype))
        cfg = getattr(model, "pretrained_cfg", None) or {}
        config = getattr(model, "config", None)
        classes = cfg.get("classes") or [str(i) for i in range(getattr(model, "num_classes", 0))]
        meta = {"model": config.name if config else type(model).__name__, "classes": classes,
                "preprocessing": prep.to_dict()}
        proto.metadata_props.add(key=META_KEY, value=json.dumps(meta))
        data = proto.SerializeToString()
        check = torch.randn(check_batch, *prep.input_size, generator=torch.Generator().manual_seed(seed + 1))
        with torch.no_grad():
            expected = model(check.to(param.device, param.dtype)).float().cpu().numpy()
    got = session(data).run(None, {"image": check.numpy().astype(np.float32)})[0]
    diff = float(np.abs(got - expected).max())
    rel = diff / max(float(np.abs(expected).max()), 1e-12)
    if rtol is not None and not rel <= rtol:
        raise ExportMismatch(f"ONNX Runtime's logits differ from PyTorch's by {rel:.2e} of the largest logit "
                             f"(allowed {rtol:.0e}); {path} was not written")
    onnx.checker.check_model(proto)
    atomic_save(path, lambda tmp: Path(tmp).write_bytes(data))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxExport(path, diff, rel, opset)


def onnx_proto(model: nn.Module, example: torch.Tensor):
    """``torch.onnx.export`` (the torch.export-based exporter) of a module in its current mode, quietly:
    an ONNX ModelProto with input ``image`` (dynamic batch) and output ``logits``."""
    require("deploy", "ONNX export")
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on deprecated paths it does not take
        program = torch.onnx.export(model, (example,), None, dynamo=True, verbose=False, input_names=["image"],
                                    output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    return program.model_proto


def session(model: str | os.PathLike | bytes, threads: int | None = None, spin: bool = True):
    """An ONNX Runtime CPU inference session on a file (or its bytes), all graph optimizations on.
    ``spin=False`` keeps its idle threads from spinning (fair when other work shares the cores)."""
    require("deploy", "ONNX Runtime")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def read_onnx_meta(path: str | os.PathLike) -> dict:
    """The network, classes and preprocessing an inceptionkit ONNX file carries ({} for others)."""
    meta = session(path).get_modelmeta().custom_metadata_map
    return json.loads(meta[META_KEY]) if META_KEY in meta else {}
