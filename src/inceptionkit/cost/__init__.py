"""Cost: parameters, multiply-adds, memory, depth, comparisons, GoogLeNet's Table 1 and diagrams of any nn.Module."""

from ..probe import LayerInputError, locate_failure
from .compare import (
    Comparison,
    CostRow,
    NetworkRow,
    compare_modules,
    conv_stack,
    five_vs_two_3x3,
    naive_vs_reduced,
    network_table,
    parse_stack,
    square_vs_asymmetric,
)
from .counting import module_macs
from .diagram import draw
from .graph import LayerGraph, Node, layer_depth, layer_graph
from .summary import Row, Summary, memory_estimate, summary
from .table1 import Table1, Table1Row, table1

__all__ = [
    "Comparison", "CostRow", "LayerGraph", "LayerInputError", "NetworkRow", "Node", "Row", "Summary", "Table1",
    "Table1Row", "compare_modules", "conv_stack", "draw", "five_vs_two_3x3", "layer_depth", "layer_graph",
    "locate_failure",
    "memory_estimate", "module_macs", "naive_vs_reduced", "network_table", "parse_stack", "square_vs_asymmetric",
    "summary", "table1",
]
