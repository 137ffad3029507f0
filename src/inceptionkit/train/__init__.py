"""Training: data in, the papers' recipes or a fast default, checkpoints that survive, DDP under torchrun."""

from .config import TrainConfig
from .evaluate import evaluate
from .loop import Progress, Resumed, TrainingDiverged, fit
from .recipes import RECIPES, Recipe, compute_loss, get_recipe

__all__ = ["RECIPES", "Progress", "Recipe", "Resumed", "TrainConfig", "TrainingDiverged", "compute_loss", "evaluate",
           "fit", "get_recipe"]
