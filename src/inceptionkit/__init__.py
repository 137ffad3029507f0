"""inceptionkit: the Inception family of CNNs, built faithfully, counted, trained and opened up."""

from .models import InceptionOutputs, create_model, list_models, model_config

__version__ = "0.1.0"
__all__ = ["InceptionOutputs", "create_model", "list_models", "model_config", "__version__"]
