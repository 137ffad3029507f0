"""Looking inside a network: activation grids, feature visualization, dataset examples, DeepDream.

Lucid's split, kept: :mod:`objectives` (what to maximize), :mod:`param` (how the image is
parameterized), :mod:`transforms` (how it is jittered), and the loops that use them.
"""

from . import objectives, param, transforms
from .activations import activations
from .grid import grid, image_sheet
from .render import Rendering, render

__all__ = ["Rendering", "activations", "grid", "image_sheet", "objectives", "param", "render", "transforms"]
