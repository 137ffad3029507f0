"""Transfer: predictions with a loaded network, and retraining its classifier on a folder of images."""

from .predict import Prediction, Predictions, predict
from .retrain import RetrainResult, retrain

__all__ = ["Prediction", "Predictions", "RetrainResult", "predict", "retrain"]
