"""Multiply-accumulate counts of an ONNX graph's convolutions for one input shape (needs the ``onnx`` package).

The same rule as :mod:`hrface.benchmark.flops` (which counts a PyTorch model): a convolution contributes
``output elements × (input channels / groups) × kernel area``; everything else is left out (under 1 % of the
work in RetinaFace and HRNet). Output shapes come from ONNX shape inference at the given input shape; weight
shapes from the initializers, followed through the ``Cast`` of a compact graph and the ``DequantizeLinear`` of an
INT8 (QDQ) graph, so the float and INT8 graphs of one model count the same.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import lru_cache

PASS_THROUGH = frozenset({"Cast", "DequantizeLinear", "Identity", "QuantizeLinear"})


def onnx_macs(path: str | os.PathLike[str], input_shape: Sequence[int]) -> int:
    """MACs of one forward pass of the ONNX model at ``path`` on an input of ``input_shape`` (N, C, H, W)."""
    return _macs(os.fspath(path), tuple(int(v) for v in input_shape))


@lru_cache(maxsize=64)
def _macs(path: str, input_shape: tuple[int, ...]) -> int:
    import onnx

    model = onnx.load(path)
    del model.graph.value_info[:]  # shapes recorded for another input size (a quantiser's) would stand
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, input_shape, strict=True):
        dim.Clear()
        dim.dim_value = value
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)  # sizes computed by Shape ops too
    shapes = {
        info.name: [d.dim_value for d in info.type.tensor_type.shape.dim]
        for info in [*inferred.graph.value_info, *inferred.graph.output]
    }
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}

    def weight_shape(name: str) -> list[int]:
        while name not in weights and name in producers and producers[name].op_type in PASS_THROUGH:
            name = producers[name].input[0]
        return weights.get(name, [])

    total = 0
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        out, kernel = shapes.get(node.output[0], []), weight_shape(node.input[1])
        if len(kernel) < 3 or not out or 0 in out:
            raise ValueError(f"{path}: cannot count the convolution {node.name!r} (shape inference gave {out})")
        total += math.prod(out) * math.prod(kernel[1:])  # kernel: (C_out, C_in / groups, kh, kw)
    return total
