"""The outputs of named modules for some input, by dotted name (``inception4c``, ``mixed_5b.branch4``).

Built on :func:`inceptionkit.probe.probing`, so the hooks are gone afterwards, also when the
forward pass raises. The forward pass stops once every requested layer has run.
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Iterator, Sequence

import torch
from PIL import Image
from torch import nn

from ..data.folder import open_image, warn_if_small
from ..errors import BadValue
from ..probe import probing
from ..weights.preprocessing import preprocessing_of


class _Enough(Exception):
    """Raised by a hook to stop a forward pass once every requested layer has run."""


def find_layers(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """``{name: module}``; an unknown name is an error listing the closest names the model has."""
    modules = dict(model.named_modules())
    found = {}
    for name in names:
        if name not in modules or not name:
            close = difflib.get_close_matches(name, [n for n in modules if n], n=4, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            tops = ", ".join(n for n, _ in model.named_children())
            raise BadValue(f"{type(model).__name__} has no layer {name!r}{hint} (its stages: {tops}; "
                             f"`inceptionkit summary NAME --depth 3` prints every name)")
        found[name] = modules[name]
    return found


def _output(output) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


@contextlib.contextmanager
def watching(model: nn.Module, layers: Sequence[str], stop: bool = True,
             training: bool | None = False) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, each forward pass of ``model`` fills the yielded dict with the requested
    layers' outputs (gradients flow through them). With ``stop``, the pass ends as soon as all have
    run: call the model through :func:`run`, which absorbs that early exit."""
    modules = find_layers(model, layers)
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str):
        def hook(module, inputs, output):
            seen[name] = _output(output)
            if stop and len(seen) == len(modules):
                raise _Enough
        return hook

    with probing(model, forward=[(module, keep(name)) for name, module in modules.items()], training=training):
        yield seen


def run(model: nn.Module, x: torch.Tensor, seen: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One forward pass inside :func:`watching`; returns the captured outputs."""
    seen.clear()
    try:
        model(x)
    except _Enough:
        pass
    return dict(seen)


def load_images(images, preprocessing) -> torch.Tensor:
    """A batch from PIL images or paths, through ``preprocessing``'s transform; a tensor passes as it is."""
    if isinstance(images, torch.Tensor):
        return images if images.dim() == 4 else images.unsqueeze(0)


    if isinstance(images, (str, os.PathLike, Image.Image)):
        images = [images]
    transform, mode = preprocessing.transform(), "L" if preprocessing.colour == "L" else "RGB"
    batch = [transform(warn_if_small(item.convert(mode)) if isinstance(item, Image.Image)
                       else warn_if_small(open_image(item, mode), item)) for item in images]
    return torch.stack(batch)


@torch.no_grad()
def activations(model: nn.Module, images, layers: str | Sequence[str]) -> dict[str, torch.Tensor]:
    """``{layer: output}`` for ``images``: a tensor already in the model's input form, or PIL images /
    paths, which go through the model's own preprocessing (:func:`inceptionkit.preprocess`)."""
    names = [layers] if isinstance(layers, str) else list(layers)
    x = images if isinstance(images, torch.Tensor) else load_images(images, preprocessing_of(model))
    device = next(model.parameters()).device
    with watching(model, names) as seen:
        out = run(model, load_images(x, None).to(device), seen)
    idle = [name for name in names if name not in out]
    if idle:
        mode = "train" if model.training else "eval"
        raise BadValue(f"{', '.join(idle)} did not run in the forward pass ({mode} mode): an auxiliary head, "
                         "or a module the forward does not call")
    return {name: out[name].detach() for name in names}
