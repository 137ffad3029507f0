"""Key layouts of foreign checkpoints, as data: which of their top-level modules is which of ours.

Each :class:`Layout` lists (their prefix, our prefix) pairs in any order; tensors under a pair are
matched in registration order by :func:`inceptionkit.weights.convert`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Layout:
    prefixes: tuple[tuple[str, str], ...]
    classifier: str  # their key whose first dim is the number of classes
    first_conv: str  # their key whose second dim is the number of input channels
    aux_prefixes: tuple[str, ...] = ()  # their prefixes of aux heads (present => build ours with aux)
    model_kwargs: dict = field(default_factory=dict)  # passed to create_model for the template


LAYOUTS: dict[tuple[str, str], Layout] = {}

# --- googlenet (torchvision) ----------------------------------------------------------------
# (filled by the googlenet family)

# --- inception_v3 (torchvision, timm) --------------------------------------------------------
# (filled by the inception_v3 family)

# --- inception_v4, inception_resnet_v2 (timm) ------------------------------------------------
# (filled by the inception_v4 / inception_resnet family)
