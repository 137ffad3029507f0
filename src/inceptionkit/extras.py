"""Optional parts of inceptionkit and the packages each needs, checked where they are used.

``pip install inceptionkit`` builds, counts, trains, loads weights, looks inside networks and runs the
tour; ``pip install "inceptionkit[deploy]"`` adds what :mod:`inceptionkit.deploy` runs on (ONNX export
and ONNX Runtime, int8 with torchao). A call that needs a missing extra says which one to install.
"""

from __future__ import annotations

import importlib.util

from .errors import UserError

EXTRAS = {"deploy": ("onnx", "onnxscript", "onnxruntime", "torchao")}


class MissingExtra(UserError, ImportError):
    """A feature whose optional packages are not installed: names the extra that brings them."""


def missing(extra: str) -> list[str]:
    """The packages of ``extra`` that cannot be imported here."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` when a package ``feature`` needs is not installed."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(f"{feature} needs inceptionkit's {extra} extra, which is not installed (missing: "
                           f"{', '.join(absent)}): pip install \"inceptionkit[{extra}]\"")
