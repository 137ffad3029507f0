"""Weights: published sources with their preprocessing, the hub cache, one loader for every kind of
file, and converters from torchvision's and timm's key layouts to ours."""

from .convert import ConversionError, convert
from .hub import HashMismatch, WeightsUnavailable, cached_file, checkpoint_dir
from .load import (
    WeightsError,
    export,
    load,
    preprocess,
    read_state_dict,
    recognise_layout,
)
from .preprocessing import Preprocessing, network_identity, preprocessing_of
from .sources import SOURCES, WeightSource, get_source, list_sources

__all__ = [
    "SOURCES", "ConversionError", "HashMismatch", "Preprocessing", "WeightSource", "WeightsError",
    "WeightsUnavailable", "cached_file", "checkpoint_dir", "convert", "export", "get_source", "list_sources", "load",
    "network_identity", "preprocess", "preprocessing_of", "read_state_dict", "recognise_layout",
]
