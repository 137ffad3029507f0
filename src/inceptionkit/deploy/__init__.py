"""Running a network outside training: ONNX export checked in ONNX Runtime."""

from .onnx import ExportMismatch, OnnxExport, export_onnx, read_onnx_meta, session

__all__ = ["ExportMismatch", "OnnxExport", "export_onnx", "read_onnx_meta", "session"]
