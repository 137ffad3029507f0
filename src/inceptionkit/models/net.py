"""The model contract every inceptionkit network shares.

A network is an ordered trunk of named stages (``conv1`` ... ``inception5b``), optional auxiliary
heads that tap named stages in training, and a head (global pool, dropout, linear ``fc``). It offers
timm's contract (``forward_features``, ``forward_head(pre_logits=...)``, ``reset_classifier(n,
global_pool)``, ``get_classifier``, ``feature_info``, ``num_features``, ``head_hidden_size``,
``pretrained_cfg``, ``set_grad_checkpointing``, ``group_matcher``, ``no_weight_decay``,
``forward_intermediates``, ``prune_intermediate_layers``) and scripts,
traces (``torch.jit``, ``torch.fx``) and exports (``torch.export``, ``torch.compile(fullgraph=True)``)
like torchvision's models: the forward pass reads no sizes as Python numbers except in an eager-only
input check.

Output types are the same everywhere: eval mode returns logits; train mode with aux heads returns
``InceptionOutputs``, the flat tuple ``(logits, aux_1, ..., aux_n)`` with ``.logits`` and ``.aux`` (the
aux logits in tap order, lowest first); compiled by TorchScript, ``ScriptedOutputs(logits, aux)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Dict, List, NamedTuple

import torch
from torch import nn
from torch.utils._pytree import register_pytree_node
from torch.utils.checkpoint import checkpoint

from ..errors import BadValue
from ..probe import locating
from .blocks import running_eagerly
from .features import feature_take_indices
from .head import GlobalPool, check_pool
from .sizes import SizeRule, check_input


def refuse_aux(network: str, aux_logits: bool, why: str = "") -> None:
    """Networks without auxiliary heads still take ``aux_logits`` (the common builder arguments) but only False."""
    if aux_logits:
        raise BadValue(f"aux_logits=True: {network} has no auxiliary heads{why}; aux_logits must be False")


class InceptionOutputs(tuple):
    """Train-mode output of a network with aux heads: the tuple ``(logits, aux_1, ..., aux_n)`` of tensors,
    with ``logits`` and ``aux`` (the aux logits in tap order, lowest first) by name. A flat tuple, as
    torchvision's and timm's: ``torch.cat(out)`` stacks every head's logits (timm's backward test does).
    ``InceptionOutputs(logits, aux)`` also takes the aux logits as one sequence."""

    _fields = ("logits", "aux")  # torch.fx rebuilds a tuple with _fields as InceptionOutputs(*elements)

    def __new__(cls, logits: torch.Tensor, *aux: torch.Tensor | Sequence[torch.Tensor]):
        if len(aux) == 1 and isinstance(aux[0], (list, tuple)):
            aux = tuple(aux[0])
        return super().__new__(cls, (logits, *aux))

    def __getnewargs__(self) -> tuple:  # copy and pickle
        return tuple(self)

    @property
    def logits(self) -> torch.Tensor:
        return self[0]

    @property
    def aux(self) -> list[torch.Tensor]:
        return list(self[1:])

    def __repr__(self) -> str:
        return f"InceptionOutputs(logits={self.logits!r}, aux={self.aux!r})"


# DistributedDataParallel, torch.export and torch.compile take outputs apart and rebuild them as pytrees
register_pytree_node(InceptionOutputs, lambda out: (list(out), None), lambda values, _: InceptionOutputs(*values),
                     serialized_type_name="inceptionkit.models.net.InceptionOutputs")


class ScriptedOutputs(NamedTuple):
    """What a TorchScript-compiled network returns in train mode (TorchScript has no tuple of varying
    length): the same ``logits`` and ``aux``, the aux logits as a list."""

    logits: torch.Tensor
    aux: List[torch.Tensor]  # typing.List: TorchScript reads this annotation


STAGE, TAP = "stage", "tap"  # roles of trunk stages; an aux head's role is the name of the stage it taps


class InceptionNet(nn.Module):
    """Base class: subclasses add their stages in forward order, then call ``_build_head`` and ``_set_trunk``."""

    __jit_unused_properties__ = ["has_aux", "default_cfg"]

    def __init__(self):
        super().__init__()
        self.trunk: list[str] = []
        self.stem: list[str] = []
        self.aux_taps: dict[str, str] = {}
        self.roles: dict[str, str] = {}  # child name -> STAGE, TAP or (aux heads) the stage it taps
        self.feature_info: list[dict] = []
        self.num_features = 0  # channels of forward_features
        self.head_hidden_size = 0  # width of forward_head(x, pre_logits=True)
        self.num_classes = 0
        self.drop_rate = 0.0
        self.in_chans = 0  # channels of the first stage's first conv (found by _set_trunk)
        self.size_rule = SizeRule()  # input sides the trunk takes, in train and eval mode alike
        self.grad_checkpointing = False
        self.frozen: list[str] = []  # stages (and aux heads) that do not learn: see freeze()
        self.pretrained_cfg: dict = {}  # timm's keys; create_model fills it, weights add their own

    # --- construction helpers -------------------------------------------------------------
    def _set_trunk(self, names: list[str], aux_taps: dict[str, str] | None = None, stem: int = 0,
                   min_input: int = 1, size_rule: SizeRule | None = None) -> None:
        """Declare the stages in forward order, which stage feeds which aux head, how many stages make
        the stem, and the input sides the trunk takes (``min_input``, or a full ``size_rule``)."""
        order = [name for name, _ in self.named_children()]
        for name in names:
            if name not in order:
                raise AttributeError(f"trunk stage {name!r} is not a module of {type(self).__name__}")
        if [order.index(n) for n in names] != sorted(order.index(n) for n in names):
            raise BadValue(f"{type(self).__name__}: stages must be registered in forward order {names}")
        taps = {tap: aux for tap, aux in (aux_taps or {}).items() if aux in order}
        if [order.index(a) for a in taps.values()] != sorted(order.index(a) for a in taps.values()) or any(
                order.index(aux) < order.index(tap) for tap, aux in taps.items()):
            raise BadValue(f"{type(self).__name__}: aux heads must be registered after their stages, in tap order")
        self.trunk, self.stem, self.aux_taps = list(names), list(names[:stem]), taps
        self.roles = {name: TAP if name in taps else STAGE for name in names}
        self.roles.update({aux: tap for tap, aux in taps.items()})
        first = next((m for m in getattr(self, names[0]).modules() if isinstance(m, nn.Conv2d)), None)
        self.in_chans = first.in_channels if first is not None else 0
        self.size_rule = size_rule or SizeRule(minimum=min_input)

    def _build_head(self, num_features: int, num_classes: int, drop_rate: float, global_pool: str = "avg") -> None:
        if not 0.0 <= drop_rate < 1.0:
            raise BadValue(f"drop_rate must be in [0, 1), got {drop_rate!r}")
        if num_classes < 0:
            raise BadValue(f"num_classes must be >= 0 (0 removes the classifier), got {num_classes!r}")
        check_pool(global_pool, num_classes)
        self.num_features = self.head_hidden_size = num_features
        self.num_classes, self.drop_rate = num_classes, drop_rate
        self.global_pool = GlobalPool(global_pool)
        self.head_drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(num_features, num_classes) if num_classes > 0 else nn.Identity()

    @property
    def has_aux(self) -> bool:
        """True when the network was built with auxiliary heads."""
        return bool(self.aux_taps)

    @property
    def default_cfg(self) -> dict:
        """timm's older name for ``pretrained_cfg``."""
        return self.pretrained_cfg

    # --- forward --------------------------------------------------------------------------
    @torch.jit.unused
    def check_input(self, x: torch.Tensor, head: bool = True) -> None:
        """Refuse an input of the wrong channels or size before any layer runs, naming the stages and
        the sizes they take (``head``: the whole forward pass, not only the trunk). Inside
        :func:`inceptionkit.probe.locate_failure` the forward pass runs unchecked instead, so that the
        probe names the exact layer that fails. Eager only: scripted, traced and compiled graphs skip it."""
        if running_eagerly(x) and not locating():
            check_input(x, type(self).__name__, self.trunk[0], self.trunk[-1], self.in_chans, self.size_rule)

    def _forward_trunk(self, x: torch.Tensor, with_aux: bool, head: bool) -> tuple[torch.Tensor, List[torch.Tensor]]:
        if not torch.jit.is_scripting():
            self.check_input(x, head)
        taps: Dict[str, torch.Tensor] = {}
        aux: List[torch.Tensor] = []
        checkpointing = self.grad_checkpointing and self.training
        for name, module in self.named_children():  # unrolled by TorchScript; stages are in forward order
            role = self.roles.get(name, "")
            if role == "stage" or role == "tap":  # literals: TorchScript reads no str globals
                if checkpointing and not torch.jit.is_scripting():
                    x = checkpoint(module, x, use_reentrant=False)
                else:
                    x = module(x)
                if with_aux and role == "tap":
                    taps[name] = x
            elif with_aux and role != "":
                aux.append(module(taps[role]))
        return x, aux

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, before global pooling."""
        return self._forward_trunk(x, False, False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, dropout and classify a feature map; ``pre_logits=True`` stops before ``fc``."""
        x = self.head_drop(self.global_pool(x))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | ScriptedOutputs:  # TorchScript's; eager: InceptionOutputs
        with_aux = self.training and len(self.roles) > len(self.trunk)
        features, aux = self._forward_trunk(x, with_aux, True)
        logits = self.forward_head(features)
        if with_aux:
            if torch.jit.is_scripting():
                return ScriptedOutputs(logits, aux)
            else:
                return InceptionOutputs(logits, *aux)
        return logits

    # --- timm's intermediate features ----------------------------------------------------
    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> List[torch.Tensor] | tuple[torch.Tensor, List[torch.Tensor]]:
        """timm's ``forward_intermediates``: the maps of the ``feature_info`` levels ``indices`` (an int n:
        the last n; a sequence: those levels, negative from the last; None: all), in forward order, after
        the final feature map (``forward_features``'; with ``stop_early``, the deepest level's) unless
        ``intermediates_only``. The aux heads do not run; ``norm`` changes nothing (no final norm)."""
        if output_fmt != "NCHW":
            raise BadValue(f"output_fmt must be 'NCHW' (these networks have no other layout), got {output_fmt!r}")
        levels, deepest = feature_take_indices(len(self.feature_info), indices)
        taps = {self.feature_info[i]["module"] for i in levels}
        last = self.feature_info[deepest]["module"]
        self.check_input(x, False)
        checkpointing = self.grad_checkpointing and self.training
        intermediates = []
        for name in self.trunk:
            module = getattr(self, name)
            x = checkpoint(module, x, use_reentrant=False) if checkpointing else module(x)
            if name in taps:
                intermediates.append(x)
            if stop_early and name == last:
                break
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """timm's ``prune_intermediate_layers``: the stages after the deepest of the ``feature_info`` levels
        ``indices`` become ``nn.Identity`` (every level keeps its index); with ``prune_head``, or when
        stages went, the aux heads go and the classifier and pooling too (``forward`` returns the last
        kept map, ``num_features`` wide). ``prune_norm`` changes nothing (no final norm). Returns the
        levels, as :func:`~inceptionkit.models.features.feature_take_indices` gives them."""
        levels, deepest = feature_take_indices(len(self.feature_info), indices)
        end = self.trunk.index(self.feature_info[deepest]["module"]) + 1
        for name in self.trunk[end:]:
            setattr(self, name, nn.Identity())
        pruned = end < len(self.trunk)
        if pruned:
            self.num_features = self.head_hidden_size = self.feature_info[deepest]["num_chs"]
        if prune_head or pruned:
            heads = list(self.aux_taps.values())
            for aux in heads:
                setattr(self, aux, None)
            self.aux_taps, self.roles = {}, {name: STAGE for name in self.trunk}
            self.frozen = [name for name in self.frozen if name not in heads]
            self.reset_classifier(0, "")
        return levels

    # --- classifier -----------------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.fc

    def set_global_pool(self, global_pool: str) -> None:
        """Change the head's pooling ('avg', 'max', 'avgmax'; '' without a classifier), keeping ``fc``."""
        check_pool(global_pool, self.num_classes)
        self.global_pool = GlobalPool(global_pool)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the classifier (and every aux head's classifier) with fresh ones for ``num_classes``
        (0: none, the head returns pre-logits); ``global_pool`` ('avg', 'max', 'avgmax', '') changes the
        pooling too ('' needs ``num_classes=0`` and leaves the feature map unpooled)."""
        if num_classes < 0:
            raise BadValue(f"num_classes must be >= 0, got {num_classes!r}")
        if global_pool is not None:
            check_pool(global_pool, num_classes)
            self.global_pool = GlobalPool(global_pool)
        else:
            check_pool(self.global_pool.pool_type, num_classes)
        self.num_classes = num_classes
        self.fc = nn.Linear(self.head_hidden_size, num_classes) if num_classes > 0 else nn.Identity()
        for aux_name in self.aux_taps.values():
            getattr(self, aux_name).reset_classifier(num_classes)

    # --- timm's training hooks ------------------------------------------------------------
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each stage's activations in the backward pass instead of storing them (train mode)."""
        self.grad_checkpointing = bool(enable)

    def group_matcher(self, coarse: bool = False) -> dict:
        """Parameter groups for layer-wise learning rates (timm's ``param_groups_layer_decay``): the stem,
        then one group per stage (``coarse``: per feature level); aux heads join the stage they tap and
        the classifier falls in the last group."""
        levels = [info["module"] for info in self.feature_info]
        blocks, level = [], 0
        for index, name in enumerate(self.trunk[len(self.stem):], 1):
            group = (level + 1,) if coarse else (index,)
            blocks.append((rf"^{name}\.", group))
            blocks += [(rf"^{aux}\.", group) for tap, aux in self.aux_taps.items() if tap == name]
            level += name in levels
        return {"stem": "|".join(rf"^{name}\." for name in self.stem) or None, "blocks": blocks}

    def freeze(self, train_stages: int | None) -> list[str]:
        """Let only the last ``train_stages`` trunk stages with weights learn (pooling stages between
        them too), with the aux heads that tap them and the classifier (fine-tuning); ``None`` lets
        everything learn again. Frozen stages stop requiring gradients and keep their BatchNorm
        statistics: they stay in eval mode under ``train()``. Returns the names of the stages that learn."""
        weighted = [name for name in self.trunk if any(True for _ in getattr(self, name).parameters())]
        if train_stages is not None and not 0 <= train_stages <= len(weighted):
            raise BadValue(f"train_stages must be between 0 and the {len(weighted)} stages with weights of "
                             f"{type(self).__name__}, got {train_stages}")
        if train_stages is None:
            learning = list(self.trunk)
        else:
            learning = self.trunk[self.trunk.index(weighted[-train_stages]):] if train_stages else []
        self.frozen = [name for name in self.trunk if name not in learning]
        self.frozen += [aux for tap, aux in self.aux_taps.items() if tap in self.frozen]
        for name, module in self.named_children():
            module.requires_grad_(name not in self.frozen)
        self.train(self.training)
        return list(learning)

    def train(self, mode: bool = True) -> InceptionNet:
        """``nn.Module.train``, leaving frozen stages (see :meth:`freeze`) in eval mode."""
        super().train(mode)
        for name in self.frozen:
            getattr(self, name).eval()
        return self

    def no_weight_decay(self) -> set[str]:
        """Parameter names to keep out of weight decay beyond 1-d ones (biases, BatchNorm), which
        timm's optimizer factory already excludes: none in these networks."""
        return set()
