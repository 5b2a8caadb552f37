"""Export to ONNX (BatchNorm folded, hrface metadata) and static INT8 quantisation."""

from .fold import count_batchnorms, fold_batchnorm
from .onnx_export import export_onnx, export_onnx_bytes, model_metadata
from .quantize import quantize_int8

__all__ = ["count_batchnorms", "export_onnx", "export_onnx_bytes", "fold_batchnorm", "model_metadata", "quantize_int8"]
