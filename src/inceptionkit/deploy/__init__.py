"""Running a network outside training: inference rewrites and runtimes (:func:`optimize`), int8,
ONNX export checked in ONNX Runtime, and the speed benchmark against the peers."""

from .onnx import ExportMismatch, OnnxExport, export_onnx, read_onnx_meta, session
from .optimize import InferenceModel, Optimization, optimize
from .quantize import export_onnx_int8, load_calibration

__all__ = [
    "ExportMismatch", "InferenceModel", "OnnxExport", "Optimization", "export_onnx", "export_onnx_int8",
    "load_calibration", "optimize", "read_onnx_meta", "session",
]
