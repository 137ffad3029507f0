"""inceptionkit: the Inception family of CNNs, built faithfully, counted, trained and opened up.

The names below are imported on first use (PEP 562), so ``import inceptionkit`` and the command
line's ``--help`` do not wait for torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "InceptionOutputs": "models", "build_model": "models", "list_models": "models", "model_config": "models",
    "create_model": "factory",
    "compare_modules": "cost", "draw": "cost", "layer_graph": "cost", "summary": "cost", "table1": "cost",
    "load": "weights", "preprocess": "weights", "export": "weights",
}
__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'inceptionkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
