"""Cost: parameters, multiply-adds and per-layer summaries of any nn.Module."""

from .summary import Row, Summary, module_macs, summary

__all__ = ["Row", "Summary", "module_macs", "summary"]
