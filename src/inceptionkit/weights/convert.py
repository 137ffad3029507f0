"""Convert torchvision's and timm's state_dicts to inceptionkit's key layout.

A layout (see :mod:`inceptionkit.weights.layouts`) pairs each of the foreign network's top-level
modules with ours, by key prefix. Inside a pair, tensors are matched in registration order, which
our blocks keep equal to the reference's; every pair is checked for count and shape, so a wrong
layout fails loudly instead of loading garbage.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch

from ..errors import BadValue
from ..models import build_model
from .layouts import LAYOUTS, Layout, registration_order


class ConversionError(BadValue):
    """A state_dict that does not fit the network: names the keys and shapes at fault."""


def _matches(key: str, prefix: str) -> bool:
    """``key`` lies under module ``prefix``; a prefix ending in ``*`` matches any key that starts with it."""
    if prefix.endswith("*"):
        return key.startswith(prefix[:-1])
    return key == prefix or key.startswith(prefix + ".")


def _under(keys: list[str], prefix: str | tuple[str, ...]) -> list[str]:
    prefixes = (prefix,) if isinstance(prefix, str) else prefix
    return [k for k in keys if any(_matches(k, p) for p in prefixes)]


def _layout(name: str, source: str) -> Layout:
    if (name, source) not in LAYOUTS:
        known = ", ".join(f"{n} from {s}" for n, s in sorted(LAYOUTS))
        raise ConversionError(f"no converter for {name!r} from {source!r}; known: {known}")
    return LAYOUTS[(name, source)]


def _template(layout: Layout, name: str, state_dict: Mapping[str, torch.Tensor], model_kwargs: dict):
    """Our network's state_dict (on the meta device) shaped like the foreign one."""
    kwargs = dict(layout.model_kwargs)
    kwargs["num_classes"] = state_dict[layout.classifier].shape[0] if layout.classifier in state_dict else 1000
    if layout.first_conv in state_dict:
        kwargs["in_chans"] = state_dict[layout.first_conv].shape[1]
    if layout.aux_prefixes:
        kwargs["aux_logits"] = any(_under(list(state_dict), p) for p in layout.aux_prefixes)
    kwargs.update(model_kwargs)
    with torch.device("meta"):
        return build_model(name, **kwargs).state_dict()


def convert(state_dict: Mapping[str, torch.Tensor], name: str, source: str, **model_kwargs) -> OrderedDict:
    """Return ``state_dict`` (torchvision's or timm's ``name``) with inceptionkit's keys.

    ``source`` is "torchvision" or "timm". The result loads with ``load_state_dict(strict=True)``
    into ``build_model(name, **kw)`` built with the same classes, input channels and aux heads
    (and, for googlenet from torchvision, ``variant="torchvision"``).
    """
    layout = _layout(name, source)
    theirs_all = [k for k in state_dict if not k.endswith("num_batches_tracked")]
    if layout.reorder:  # a file that stores keys sorted (safetensors) gets its registration order back
        theirs_all = registration_order(theirs_all)
    ours_sd = _template(layout, name, state_dict, model_kwargs)
    ours_all = [k for k in ours_sd if not k.endswith("num_batches_tracked")]
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    used, problems = set(), []
    for their_prefix, our_prefix in layout.prefixes:
        theirs, ours = _under(theirs_all, their_prefix), _under(ours_all, our_prefix)
        if not theirs and not ours:
            continue
        used.update(theirs)
        if len(theirs) != len(ours):
            problems.append(
                f"{their_prefix} -> {our_prefix}: {len(theirs)} tensors in the source, {len(ours)} expected"
                f" (source keys {theirs[:4]}..., ours {ours[:4]}...)"
            )
            continue
        for t, o in zip(theirs, ours):
            value, shape = state_dict[t], tuple(ours_sd[o].shape)
            if tuple(value.shape) == (1, *shape):  # old Caffe ports store BatchNorm vectors as 1 x C
                value = value.reshape(shape)
            if tuple(value.shape) != shape:
                problems.append(f"{t} has shape {tuple(value.shape)} but {o} needs {shape}")
            out[o] = value
    unexpected = [k for k in theirs_all if k not in used]
    missing = [k for k in ours_all if k not in out]
    if unexpected:
        more = " ..." if len(unexpected) > 10 else ""
        problems.append(f"unexpected keys in the source: {', '.join(unexpected[:10])}{more}")
    if missing:
        more = " ..." if len(missing) > 10 else ""
        problems.append(f"missing keys (not in the source): {', '.join(missing[:10])}{more}")
    if problems:
        raise ConversionError(f"cannot convert {source} {name} state_dict:\n  " + "\n  ".join(problems))
    for k in ours_sd:  # BN step counters carry no model behaviour: start them at zero
        if k.endswith("num_batches_tracked"):
            out[k] = torch.zeros((), dtype=torch.long)
    return out
