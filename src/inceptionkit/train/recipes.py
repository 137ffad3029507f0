"""Training recipes: the papers' (v1, v3) and a fast modern default, as plain data.

- ``v1`` (GoogLeNet, section 6 of the paper; numbers the paper leaves out from Caffe's
  bvlc_googlenet solver): SGD momentum 0.9, lr 0.01 cut by 4% every 8 epochs, weight decay 2e-4,
  aux losses weighted 0.3 each.
- ``v3`` (Rethinking the Inception Architecture, section 8; TF-slim's trainer for what the paper
  leaves out): TensorFlow's RMSProp (decay 0.9, momentum 0.9, eps 1.0), lr 0.045 decayed by 0.94
  every 2 epochs, label smoothing 0.1, gradient norm clipped at 2.0, weight decay 4e-5, aux 0.4.
- ``fast`` (the default): SGD with Nesterov momentum, a one-cycle schedule peaking at lr 0.1,
  label smoothing 0.1, weight decay 5e-4, aux 0.3: trains the CIFAR-style networks in a few epochs.

Weight decay applies to weights only (conv and linear kernels), not to biases or BatchNorm, as in
Caffe's and TF-slim's recipes. Learning rates are the recipes' own, for their batch sizes; pass
``lr`` to override.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BadArgument, BadValue
from .optim import RMSpropTF


@dataclass(frozen=True)
class Recipe:
    name: str
    optimizer: str  # "sgd", "rmsprop_tf" or "adamw"
    lr: float
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    decay: float = 0.9  # RMSProp's moving-average decay (torch calls it alpha)
    eps: float = 1.0  # RMSProp's epsilon, inside the square root (TensorFlow)
    schedule: str = "step"  # "step" (lr * gamma ** (epoch // step_epochs)), "onecycle", "cosine" or "constant"
    step_epochs: int = 1
    step_gamma: float = 1.0
    label_smoothing: float = 0.0
    clip_grad_norm: float | None = None
    aux_weight: float = 0.0  # weight of each auxiliary head's loss
    epochs: int = 10
    batch_size: int = 64
    summary: str = ""


RECIPES: dict[str, Recipe] = {
    "v1": Recipe(
        "v1", "sgd", lr=0.01, momentum=0.9, weight_decay=2e-4, schedule="step", step_epochs=8, step_gamma=0.96,
        aux_weight=0.3, epochs=60, batch_size=32,
        summary="GoogLeNet paper: SGD momentum 0.9, lr 0.01 -4% every 8 epochs, aux 0.3",
    ),
    "v3": Recipe(
        "v3", "rmsprop_tf", lr=0.045, momentum=0.9, decay=0.9, eps=1.0, weight_decay=4e-5, schedule="step",
        step_epochs=2, step_gamma=0.94, label_smoothing=0.1, clip_grad_norm=2.0, aux_weight=0.4, epochs=100,
        batch_size=32,
        summary="Inception-v3 paper: RMSProp (TF) decay 0.9 eps 1.0, lr 0.045 x0.94 every 2 epochs, smoothing 0.1, "
                "clip 2.0",
    ),
    "fast": Recipe(
        "fast", "sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, schedule="onecycle",
        label_smoothing=0.1, aux_weight=0.3, epochs=10, batch_size=64,
        summary="SGD Nesterov, one-cycle to lr 0.1, smoothing 0.1, weight decay 5e-4",
    ),
}


def get_recipe(name: str, **overrides) -> Recipe:
    """A recipe by name, with fields overridden (``get_recipe("v3", lr=0.01)``); None values are ignored."""
    if name not in RECIPES:
        raise BadValue(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    known = {f.name for f in fields(Recipe)}
    unknown = set(overrides) - known
    if unknown:
        raise BadArgument(f"Recipe has no field(s) {', '.join(sorted(unknown))}")
    recipe = replace(RECIPES[name], **{k: v for k, v in overrides.items() if v is not None})
    if recipe.lr <= 0 or recipe.epochs <= 0 or recipe.batch_size <= 0:
        raise BadValue(f"lr, epochs and batch size must be positive, got {recipe.lr}, {recipe.epochs}, "
                         f"{recipe.batch_size}")
    return recipe


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on kernels (dim > 1) only; biases and BatchNorm parameters go undecayed."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() > 1 else no_decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]


def build_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    groups = parameter_groups(model, recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
    if recipe.optimizer == "rmsprop_tf":
        return RMSpropTF(groups, lr=recipe.lr, decay=recipe.decay, momentum=recipe.momentum, eps=recipe.eps)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    raise BadValue(f"unknown optimizer {recipe.optimizer!r}: sgd, rmsprop_tf or adamw")


def lr_factor(recipe: Recipe, step: int, steps_per_epoch: int, epochs: int) -> float:
    """The multiplier of the base lr at optimizer step ``step`` (0-based) of a run of ``epochs``."""
    total = max(1, steps_per_epoch * epochs)
    if recipe.schedule == "step":
        return recipe.step_gamma ** ((step // steps_per_epoch) // recipe.step_epochs)
    if recipe.schedule == "constant":
        return 1.0
    if recipe.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    if recipe.schedule == "onecycle":  # linear warm-up from lr/25 over 25% of the run, cosine down to ~0
        warm = max(1, int(0.25 * total))
        if step < warm:
            return 0.04 + 0.96 * step / warm
        return 0.5 * (1 + math.cos(math.pi * min(step - warm, total - warm) / max(1, total - warm))) * (1 - 1e-4) + 1e-4
    raise BadValue(f"unknown schedule {recipe.schedule!r}: step, onecycle, cosine or constant")


def build_scheduler(recipe: Recipe, optimizer, steps_per_epoch: int, epochs: int):
    """A LambdaLR stepped once per optimizer step, following ``lr_factor``."""
    if steps_per_epoch <= 0:
        raise BadValue(f"steps_per_epoch must be at least 1, got {steps_per_epoch}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(recipe, step, steps_per_epoch, epochs)
    )


def logits_of(output) -> torch.Tensor:
    """Main logits of a model output: a tensor, or InceptionOutputs / a (logits, ...) tuple in train mode."""
    if isinstance(output, torch.Tensor):
        return output
    return output[0]


def compute_loss(recipe: Recipe, output, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(total, main): total = CE(main) + aux_weight * sum(CE(aux_i)), label smoothing on every term."""
    smoothing = recipe.label_smoothing
    main = F.cross_entropy(logits_of(output).float(), target, label_smoothing=smoothing)
    total = main
    aux = getattr(output, "aux", None)
    if aux is None and isinstance(output, (tuple, list)) and len(output) > 1:
        aux = output[1:] if isinstance(output[1], torch.Tensor) else output[1]
    for head in aux or ():
        total = total + recipe.aux_weight * F.cross_entropy(head.float(), target, label_smoothing=smoothing)
    return total, main
