"""Transfer: predictions with a loaded network (retrain and the bottleneck cache come next)."""

from .predict import Prediction, Predictions, predict

__all__ = ["Prediction", "Predictions", "predict"]
