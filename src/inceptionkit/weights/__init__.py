"""Weights: converters from torchvision's and timm's key layouts to ours."""

from .convert import ConversionError, convert

__all__ = ["ConversionError", "convert"]
