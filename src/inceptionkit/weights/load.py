"""One way in for every kind of weights: a published source, a run folder, an exported file, or a
torchvision/timm state_dict, each giving a network that carries its classes and preprocessing.

Every loaded network has ``model.pretrained_cfg``: timm's keys (``input_size``, ``crop_pct``,
``interpolation``, ``mean``, ``std``, ``num_classes``) plus ``preprocessing`` (the full
:class:`~inceptionkit.weights.preprocessing.Preprocessing` as a dict), ``classes`` and ``source``.
Files are read with safetensors or ``torch.load(weights_only=True)``: never unpickled as code.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..errors import BadValue, MissingFile, RandomWeightsWarning
from ..files import check_output
from ..models import build_model, list_models
from ..runs import is_run, load_checkpoint, read_safetensors, write_safetensors
from .convert import ConversionError, convert
from .hub import cached_file
from .layouts import LAYOUTS
from .preprocessing import Preprocessing, default_preprocessing, in_chans_of, preprocessing_of
from .sources import WeightSource, get_source, list_sources


class WeightsError(BadValue):
    """A weights file that cannot be read or fits no network: says what was found."""


# --- reading files ---------------------------------------------------------------------------------


def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """``(tensors, meta)`` from a .safetensors file (meta from its header) or a torch file (meta {}).

    torch files load with ``weights_only=True``; a pickle holding code is refused, not run.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        return read_safetensors(path, error=WeightsError)
    try:
        with warnings.catch_warnings():  # torch's note on pickle protocols says nothing about the weights
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not (zipfile.is_zipfile(path) or path.read_bytes()[:1] == b"\x80"):  # neither torch.save's zip nor a pickle
            raise WeightsError(f"{path} is not a readable PyTorch weights file: truncated, damaged or another kind "
                               f"of file") from None
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip().startswith("Unsupported")), "")
        raise WeightsError(f"{path} holds Python objects other than tensors ({reason or 'refused by weights_only'}); "
                           f"it was not unpickled: checkpoints are never run as code") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable PyTorch weights file: truncated, damaged or another kind of "
                           f"file ({str(exc).splitlines()[0]})") from None
    return _tensors_of(data, path), {}


def _tensors_of(data, path: Path) -> dict[str, torch.Tensor]:
    """The state_dict inside what torch.load gave: the dict itself, or under 'state_dict'/'model'."""
    if isinstance(data, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(data.get(key), Mapping):
                data = data[key]
                break
        tensors = {k.removeprefix("module."): v for k, v in data.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors
    raise WeightsError(f"{path} holds no state_dict (found a {type(data).__name__})")


# --- fitting tensors into a network ------------------------------------------------------------------


def _aux_names(model: nn.Module) -> list[str]:
    return list(getattr(model, "aux_taps", {}).values())


def _under(key: str, prefixes) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def fit_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> list[str]:
    """Load ``state`` (our key layout) into ``model``; aux-head and classifier tensors may be absent or extra.

    Aux heads the state lacks stay freshly initialised (a warning says so); aux tensors the model has no
    heads for are dropped. Returns the names of modules left freshly initialised. Anything else that
    does not fit raises a WeightsError naming the keys and shapes.
    """
    own = model.state_dict()
    aux = _aux_names(model)
    state = {k: v for k, v in state.items() if k in own or not k.startswith("aux")}  # heads the model lacks
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    fresh = sorted({next(p for p in aux if _under(k, [p])) for k in missing if _under(k, aux)})
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: file {tuple(v.shape)}, network {tuple(own[k].shape)}"
             for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    real_missing = [k for k in missing if not _under(k, aux)]
    if unexpected or wrong or real_missing:
        parts = []
        if wrong:
            parts.append("shapes differ: " + "; ".join(wrong[:6]) + (" ..." if len(wrong) > 6 else ""))
        if real_missing:
            parts.append("missing: " + ", ".join(real_missing[:8]) + (" ..." if len(real_missing) > 8 else ""))
        if unexpected:
            parts.append("unexpected: " + ", ".join(unexpected[:8]) + (" ..." if len(unexpected) > 8 else ""))
        raise WeightsError(f"{what} does not fit {type(model).__name__}: " + "\n  ".join(parts))
    model.load_state_dict(state, strict=False)
    if fresh:
        warnings.warn(f"{what} has no weights for {', '.join(fresh)}: those aux heads are freshly initialised "
                      f"(train them before relying on their outputs, or build with aux_logits=False)", stacklevel=3)
    return fresh


def attach(model: nn.Module, preprocessing: Preprocessing, classes: list[str], source: str) -> nn.Module:
    """Give ``model`` its ``pretrained_cfg``: what input it expects and which classes it predicts."""
    c, h, w = preprocessing.input_size
    model.pretrained_cfg = {
        **(getattr(model, "pretrained_cfg", None) or {}),  # the architecture's keys (first_conv, pool_size ...)
        "input_size": preprocessing.input_size, "crop_pct": preprocessing.crop_pct,
        "interpolation": preprocessing.interpolation, "mean": preprocessing.mean, "std": preprocessing.std,
        "num_classes": len(classes), "classes": list(classes), "source": source, "tag": source.partition(":")[2],
        "preprocessing": preprocessing.to_dict(),
    }
    return model


def preprocess(model: nn.Module):
    """The transform from a PIL image to ``model``'s input tensor, built from what the model carries."""
    return preprocessing_of(model).transform()


# --- no weights at all ------------------------------------------------------------------------------

RANDOM_WEIGHTS = ("random", "none")  # what a user types for no weights at all


def asks_for_no_weights(weights) -> bool:
    """``weights`` is "random" or "none" (any case): an untrained baseline, not a source of weights."""
    return weights is not None and str(weights).strip().lower() in RANDOM_WEIGHTS


def warn_random_weights(name: str, stacklevel: int = 2) -> None:
    warnings.warn(f"{name} with random weights: a baseline to compare trained weights against",
                  RandomWeightsWarning, stacklevel=stacklevel + 1)


# --- published sources -------------------------------------------------------------------------------


def load_source(name: str, weights: str, *, progress: bool = True, **kwargs) -> nn.Module:
    """``build_model(name, weights=...)``: a published source's network, its aux heads as asked.

    ``weights``: a tag ("torchvision", "timm", "DEFAULT") or a path to a file. ``num_classes`` other
    than the file's keeps every tensor but the classifiers', which start fresh (for retraining).
    """
    if _looks_like_path(weights):
        return load(weights, model=name, **kwargs)
    source = get_source(name, weights)
    path = cached_file(source.url, source.file_name, source.sha256, progress=progress)
    tensors, _ = read_state_dict(path)
    return build_from_source(source, tensors, **kwargs)


def _looks_like_path(weights: str | os.PathLike) -> bool:
    text = os.fspath(weights)
    return os.sep in text or text.endswith((".pth", ".pt", ".bin", ".safetensors")) or Path(text).exists()


def build_from_source(source: WeightSource, tensors: Mapping[str, torch.Tensor], **kwargs) -> nn.Module:
    """Our network with ``source``'s tensors (in the source's key layout) loaded."""
    wanted_classes = kwargs.pop("num_classes", source.num_classes)
    state = tensors if source.layout == "inceptionkit" else convert(tensors, source.model, source.layout)
    state = dict(state)
    kwargs.setdefault("aux_logits", any(k.startswith("aux") for k in state))  # unless asked: what the file holds
    model = build_model(source.model, **{**source.model_kwargs, **kwargs, "num_classes": wanted_classes})
    state = adapt_first_conv(model, state)
    classes = source.class_names()
    if wanted_classes != source.num_classes:  # a new classifier: keep everything else
        heads = _classifier_keys(model)
        state = {k: v for k, v in state.items() if k not in heads}
        model.load_state_dict({**model.state_dict(), **{k: v for k, v in state.items() if k in model.state_dict()}})
        classes = [str(i) for i in range(wanted_classes)]
    else:
        fit_state_dict(model, state, f"weights {source.key}")
    return attach(model, source.preprocessing.for_channels(in_chans_of(model)), classes, source.key)


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """A first convolution's weight (out x C x kH x kW) for ``in_chans`` input channels, by timm's rule:
    summed over the C channels for one channel; else the C channels repeated in turn up to ``in_chans``
    and scaled by C / ``in_chans``, so that an image with every channel alike gives the same response."""
    have = weight.shape[1]
    if in_chans == have:
        return weight
    adapted = weight.float()
    if in_chans == 1:
        adapted = adapted.sum(dim=1, keepdim=True)
    else:
        adapted = adapted.repeat(1, math.ceil(in_chans / have), 1, 1)[:, :in_chans] * (have / in_chans)
    return adapted.to(weight.dtype)


def adapt_first_conv(model: nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with its first convolution adapted to ``model``'s input channels where they differ (the
    convolution ``pretrained_cfg["first_conv"]`` names)."""
    first = (getattr(model, "pretrained_cfg", None) or {}).get("first_conv")
    key = f"{first}.weight" if isinstance(first, str) and first else None
    own = model.state_dict().get(key) if key else None
    if own is None or key not in state or state[key].shape[1] == own.shape[1]:
        return dict(state)
    return {**state, key: adapt_input_conv(state[key], own.shape[1])}


def _classifier_keys(model: nn.Module) -> set[str]:
    """Keys of the final classifier and the aux heads' classifiers (their last Linear layers)."""
    keys = {f"fc.{p}" for p, _ in model.fc.named_parameters()} if hasattr(model, "fc") else set()
    for head in _aux_names(model):
        linears = [n for n, m in getattr(model, head).named_modules() if isinstance(m, nn.Linear)]
        if linears:
            keys |= {f"{head}.{linears[-1]}.{p}" for p in ("weight", "bias")}
    return keys


# --- any file ---------------------------------------------------------------------------------------


def recognise_layout(tensors: Mapping[str, torch.Tensor]) -> tuple[str, str]:
    """``(network, layout)`` of a torchvision or timm state_dict, from its keys and shapes."""
    tried = []
    for (name, layout), spec in LAYOUTS.items():
        if spec.first_conv not in tensors or spec.classifier not in tensors:
            continue
        try:
            convert(tensors, name, layout)
        except ConversionError as exc:
            tried.append(f"{name} ({layout}): {str(exc).splitlines()[1].strip()}")
            continue
        return name, layout
    found = ", ".join(list(tensors)[:5])
    detail = ("; closest: " + " | ".join(tried)) if tried else ""
    known = ", ".join(f"{layout} {name}" for name, layout in LAYOUTS)
    raise WeightsError(f"the file's {len(tensors)} tensors fit no known network layout ({known}); "
                       f"first keys: {found}{detail}")


def load(path: str | os.PathLike, *, model: str | None = None, tag: str = "best", **kwargs) -> nn.Module:
    """The network in ``path``, with its weights, classes and preprocessing.

    ``path``: a run folder (its ``tag`` checkpoint, best by default), a ``.safetensors`` written by
    inceptionkit (its header names the network), or a torchvision/timm state_dict file (layout
    recognised from its keys). ``model`` names the network for a bare file of our own layout.
    """
    path = Path(path)
    if is_run(path):
        ckpt = load_checkpoint(path, tag, load_state=False)
        return _from_meta(ckpt.weights, ckpt.meta, str(path), model, kwargs)
    tensors, meta = read_state_dict(path)
    if meta.get("model") or model and _ours(tensors):
        return _from_meta(tensors, meta, str(path), model, kwargs)
    name, layout = recognise_layout(tensors)
    if model is not None and model != name:
        raise WeightsError(f"{path} holds {layout}'s {name}, not {model}")
    source = _foreign_source(name, layout, tensors)
    return build_from_source(source, tensors, **kwargs)


def _ours(tensors: Mapping[str, torch.Tensor]) -> bool:
    return not any(spec.first_conv in tensors for spec in LAYOUTS.values())


def _from_meta(tensors, meta: dict, where: str, model: str | None, kwargs: dict) -> nn.Module:
    name = model or meta.get("model")
    if not name:
        raise WeightsError(f"{where} does not say which network it holds: pass model=NAME (--model NAME)")
    if model and meta.get("model") and model != meta["model"]:
        raise WeightsError(f"{where} holds {meta['model']}, not {model}")
    build = dict(meta.get("model_kwargs", {}))
    if "num_classes" not in build and "fc.weight" in tensors:
        build["num_classes"] = tensors["fc.weight"].shape[0]
    build.update(kwargs)
    net = build_model(name, **build)
    tensors = adapt_first_conv(net, tensors)
    fit_state_dict(net, tensors, where)
    classes = meta.get("classes") or [str(i) for i in range(build.get("num_classes", 1000))]
    if "preprocessing" in meta:
        prep = Preprocessing.from_dict(meta["preprocessing"]).for_channels(in_chans_of(net))
    else:  # a file that does not record it: the architecture's defaults at the run's size
        size = (meta.get("config") or {}).get("input_size")
        prep = default_preprocessing(name, in_chans=in_chans_of(net), input_size=tuple(size) if size else None)
    return attach(net, prep, classes, meta.get("source", where))


def _foreign_source(name: str, layout: str, tensors) -> WeightSource:
    """A WeightSource describing a foreign file: the published source's preprocessing when one matches."""
    spec = LAYOUTS[(name, layout)]
    classes = tensors[spec.classifier].shape[0]
    published = [s for s in list_sources(name) if s.layout == layout]
    if published:
        base = published[0]
    else:
        base = WeightSource(model=name, tag=layout, url="", file_name="", sha256=None, layout=layout,
                            num_classes=classes, classes="", preprocessing=default_preprocessing(name),
                            model_kwargs=dict(spec.model_kwargs))
    return replace(base, num_classes=classes, classes=base.classes if classes == base.num_classes else "",
                   model_kwargs={**base.model_kwargs, **spec.model_kwargs})


# --- writing ---------------------------------------------------------------------------------------


def export(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``model``'s weights to a self-describing ``.safetensors``: network, constructor arguments,
    classes and preprocessing in its header, so :func:`load` rebuilds it from the file alone."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise BadValue(f"export writes .safetensors files, got {path.name}")
    check_output(path)
    config = getattr(model, "config", None)
    if config is None:
        raise BadValue(f"{type(model).__name__} is not an inceptionkit network (build it with create_model)")
    cfg = getattr(model, "pretrained_cfg", None) or {}
    meta = {
        "model": config.name,
        # the classes it has now: reset_classifier (retraining) may have changed them since it was built
        "model_kwargs": {**getattr(model, "init_kwargs", {}), "num_classes": _num_classes(model)},
        "classes": cfg.get("classes") or [str(i) for i in range(_num_classes(model))],
        "preprocessing": preprocessing_of(model).to_dict(),
        "source": cfg.get("source", ""),
    }
    return write_safetensors(path, model.state_dict(), meta)


def _num_classes(model: nn.Module) -> int:
    fc = getattr(model, "fc", None)
    return fc.out_features if isinstance(fc, nn.Linear) else getattr(model, "num_classes", 0)


def open_weights(spec: str | os.PathLike, **kwargs) -> nn.Module:
    """A network with weights from what a user types: a run folder or file, ``NAME:SOURCE``
    (``inception_v3:torchvision``), or a network name alone for its default weights."""
    text = os.fspath(spec)
    if Path(text).exists():
        return load(text, **kwargs)
    name, _, tag = text.partition(":")
    if name in list_models() and asks_for_no_weights(tag):
        warn_random_weights(name)
        return build_model(name, **kwargs)
    if name in list_models():
        return load_source(name, tag or "DEFAULT", **kwargs)
    if _looks_like_path(text):
        raise MissingFile(f"{text}: no such run folder or weights file")
    raise BadValue(f"{text!r} is neither a file, a run folder nor NAME[:SOURCE] of a registered network "
                     f"(e.g. inception_v3:torchvision)")
