"""inceptionkit: the Inception family of CNNs, built faithfully, counted, trained and opened up."""

from .cost import compare_modules, draw, layer_graph, summary, table1
from .models import InceptionOutputs, create_model, list_models, model_config

__version__ = "0.1.0"
__all__ = [
    "InceptionOutputs", "compare_modules", "create_model", "draw", "layer_graph", "list_models", "model_config",
    "summary",
    "table1", "__version__",
]
