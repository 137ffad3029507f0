"""Key layouts of foreign checkpoints, as data: which of their top-level modules is which of ours.

Each :class:`Layout` lists (their prefix, our prefix) pairs in any order; tensors under a pair are
matched in registration order by :func:`inceptionkit.weights.convert`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Layout:
    # (their module(s), our module): a name, a tuple of names, or "name_*" for every key starting so
    prefixes: tuple[tuple[str | tuple[str, ...], str], ...]
    classifier: str  # their key whose first dim is the number of classes
    first_conv: str  # their key whose second dim is the number of input channels
    aux_prefixes: tuple[str, ...] = ()  # their prefixes of aux heads (present => build ours with aux)
    model_kwargs: dict = field(default_factory=dict)  # passed to create_model for the template
    reorder: bool = True  # put keys back in registration order (False: trust the file's order)


LAYOUTS: dict[tuple[str, str], Layout] = {}

# --- googlenet (torchvision) ----------------------------------------------------------------
# torchvision's top-level names are ours; only variant="torchvision" has its 3x3 "5x5" branch and BN.
_GOOGLENET_STAGES = ("conv1", "conv2", "conv3") + tuple(
    f"inception{s}" for s in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
) + ("aux1", "aux2", "fc")
LAYOUTS[("googlenet", "torchvision")] = Layout(
    prefixes=tuple((name, name) for name in _GOOGLENET_STAGES),
    classifier="fc.weight",
    first_conv="conv1.conv.weight",
    aux_prefixes=("aux1", "aux2"),
    model_kwargs={"variant": "torchvision"},
)

# --- inception_v3 (torchvision, timm) --------------------------------------------------------
# torchvision and timm share TF-slim's scope names; their aux head (AuxLogits) exists only when
# built with aux_logits=True. transform_input is not part of the weights: see the model's deviations.
_INCEPTION_V3_PREFIXES = (
    ("Conv2d_1a_3x3", "conv2d_1a"),
    ("Conv2d_2a_3x3", "conv2d_2a"),
    ("Conv2d_2b_3x3", "conv2d_2b"),
    ("Conv2d_3b_1x1", "conv2d_3b"),
    ("Conv2d_4a_3x3", "conv2d_4a"),
    *((f"Mixed_{s}", f"mixed_{s}") for s in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c")),
    ("AuxLogits", "aux"),
    ("fc", "fc"),
)
for _source in ("torchvision", "timm"):
    LAYOUTS[("inception_v3", _source)] = Layout(
        prefixes=_INCEPTION_V3_PREFIXES,
        classifier="fc.weight",
        first_conv="Conv2d_1a_3x3.conv.weight",
        aux_prefixes=("AuxLogits",),
    )

# --- inception_v4, inception_resnet_v2 (timm) ------------------------------------------------
# timm's features.0..21 are our stages in order; IR-v2's repeat Sequentials (10 Block35, 20 Block17,
# 9 Block8) and its final block8 become our numbered blocks (Keras's names).
_V4_STAGES = (
    ["conv2d_1a", "conv2d_2a", "conv2d_2b", "mixed_3a", "mixed_4a", "mixed_5a"]
    + [f"inception_a{i}" for i in range(1, 5)] + ["reduction_a"]
    + [f"inception_b{i}" for i in range(1, 8)] + ["reduction_b"]
    + [f"inception_c{i}" for i in range(1, 4)]
)
LAYOUTS[("inception_v4", "timm")] = Layout(
    prefixes=tuple((f"features.{i}", ours) for i, ours in enumerate(_V4_STAGES)) + (("last_linear", "fc"),),
    classifier="last_linear.weight",
    first_conv="features.0.conv.weight",
)
LAYOUTS[("inception_resnet_v2", "timm")] = Layout(
    prefixes=(
        ("conv2d_1a", "conv2d_1a"), ("conv2d_2a", "conv2d_2a"), ("conv2d_2b", "conv2d_2b"),
        ("conv2d_3b", "conv2d_3b"), ("conv2d_4a", "conv2d_4a"), ("mixed_5b", "mixed_5b"),
        *((f"repeat.{i}", f"block35_{i + 1}") for i in range(10)),
        ("mixed_6a", "mixed_6a"),
        *((f"repeat_1.{i}", f"block17_{i + 1}") for i in range(20)),
        ("mixed_7a", "mixed_7a"),
        *((f"repeat_2.{i}", f"block8_{i + 1}") for i in range(9)),
        ("block8", "block8_10"),
        ("conv2d_7b", "conv_7b"),
        ("classif", "fc"),
    ),
    classifier="classif.weight",
    first_conv="conv2d_1a.conv.weight",
)


# --- bn_inception (Cadene's pretrainedmodels, a port of Xiong's Caffe model) ---------------------
# One flat module per layer (conv1_7x7_s2, conv1_7x7_s2_bn, inception_3a_1x1 ...), registered in
# our blocks' order; their names sort differently, so the file's (a .pth's) own order is kept.
_BN_INCEPTION_STAGES = ("3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
LAYOUTS[("bn_inception", "cadene")] = Layout(
    prefixes=(
        (("conv1_7x7_s2", "conv1_7x7_s2_bn"), "conv1"),
        (("conv2_3x3_reduce", "conv2_3x3_reduce_bn"), "conv2_reduce"),
        (("conv2_3x3", "conv2_3x3_bn"), "conv2"),
        *((f"inception_{s}_*", f"inception{s}") for s in _BN_INCEPTION_STAGES),
        ("last_linear", "fc"),
    ),
    classifier="last_linear.weight",
    first_conv="conv1_7x7_s2.weight",
    reorder=False,
)


# --- registration order ------------------------------------------------------------------------
# Tensors are matched in the order their modules were registered, which a .pth state_dict keeps
# but a safetensors file (sorted by name) loses. These ranks put any ordering of torchvision's and
# timm's keys back into registration order: a parameter's own order, conv before its BatchNorm,
# Inception-v3's branch names in the order its modules define them, numbers by value, else by name.
_PARAM_RANK = {name: i for i, name in enumerate(("weight", "bias", "running_mean", "running_var",
                                                 "num_batches_tracked"))}
_MODULE_RANK = {name: i for i, name in enumerate((
    "conv", "bn",
    "branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3", "branch3x3_1", "branch3x3_2", "branch3x3_2a",
    "branch3x3_2b", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3", "branch3x3dbl_3a", "branch3x3dbl_3b",
    "branch7x7_1", "branch7x7_2", "branch7x7_3", "branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3",
    "branch7x7dbl_4", "branch7x7dbl_5", "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4",
    "branch_pool",
))}


def _rank(part: str, leaf: bool) -> tuple:
    if leaf and part in _PARAM_RANK:
        return (0, _PARAM_RANK[part], "")
    if part.isdigit():
        return (1, int(part), "")
    if part in _MODULE_RANK:
        return (2, _MODULE_RANK[part], "")
    return (3, 0, re.sub(r"\d+", lambda m: m.group().zfill(6), part))


def registration_order(keys) -> list[str]:
    """``keys`` of a torchvision or timm Inception state_dict in the order the modules registered them."""
    def sort_key(key: str) -> tuple:
        parts = key.split(".")
        return tuple(_rank(p, i == len(parts) - 1) for i, p in enumerate(parts))

    return sorted(keys, key=sort_key)
