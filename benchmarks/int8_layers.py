"""Per-layer comparison of an fp32 ONNX model and its static INT8 (QDQ) version.

Every float tensor that a node of the fp32 graph produces is made a graph output of both models (the
QDQ graph keeps the fp32 tensor names; its QuantizeLinear / DequantizeLinear pairs are skipped), both run
on the same inputs, and each tensor's largest absolute difference is reported relative to its fp32 range.
For a landmark model the decoded points of the two models are compared as well, in crop pixels
(:func:`hrface.runtime.calibration.point_shift`, the check of ``hrface export --int8``).

This is how the INT8 failure of HRNet was found (see the README): ``python benchmarks/int8_layers.py
hrface_w18_300w_v3 --calibration ../shared/data/300w/helen_train``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hrface.export.onnx_export import import_onnx
from hrface.runtime.calibration import landmark_batches, point_shift

SKIPPED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


@dataclass(frozen=True)
class LayerError:
    """One tensor: its producing node's name and op, the fp32 tensor's largest |value| and the INT8
    model's largest absolute difference from it divided by that value."""

    tensor: str
    node: str
    op: str
    fp32_max: float
    relative_error: float


def _with_all_outputs(path: str | os.PathLike[str], out: Path) -> list[tuple[str, str, str]]:
    """Copy of the model with every float node output as a graph output; ``(tensor, node, op)`` added."""
    onnx = import_onnx()
    model = onnx.load(os.fspath(path))
    types = {v.name: v.type.tensor_type.elem_type for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
    present = {o.name for o in model.graph.output}
    added = []
    for node in model.graph.node:
        if node.op_type in SKIPPED_OPS:
            continue
        for name in node.output:
            if name not in present and types.get(name) == onnx.TensorProto.FLOAT:
                model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
                added.append((name, node.name, node.op_type))
    onnx.save(model, os.fspath(out))
    return added


def _run_all(path: Path, batch: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"input": batch}), strict=True))


def layer_errors(
    fp32_model: str | os.PathLike[str], int8_model: str | os.PathLike[str], batch: np.ndarray
) -> list[LayerError]:
    """The error of every fp32 tensor that the INT8 model also computes, in graph order (module doc)."""
    with tempfile.TemporaryDirectory() as tmp:
        tensors = _with_all_outputs(fp32_model, Path(tmp) / "fp32.onnx")
        _with_all_outputs(int8_model, Path(tmp) / "int8.onnx")
        ref = _run_all(Path(tmp) / "fp32.onnx", batch)
        test = _run_all(Path(tmp) / "int8.onnx", batch)
    rows = []
    for name, node, op in tensors:
        if name in test and test[name].shape == ref[name].shape:
            peak = float(np.abs(ref[name]).max())
            error = float(np.abs(ref[name] - test[name]).max()) / (peak or 1.0)
            rows.append(LayerError(name, node, op, peak, error))
    return rows


def main(argv: list[str] | None = None) -> int:
    from hrface.export import export_onnx, quantize_int8
    from hrface.export.quantize import calibration_images
    from hrface.models.registry import create_model
    from hrface.runtime.detector import DEFAULT_DETECTOR

    parser = argparse.ArgumentParser(prog="python benchmarks/int8_layers.py", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="landmark model: registry name or checkpoint")
    parser.add_argument("--calibration", required=True, type=Path, help="folder of photos with faces")
    parser.add_argument("--images", type=int, default=16, help="calibration photos (default 16)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR)
    parser.add_argument("--top", type=int, default=12, help="largest-range tensors to list (default 12)")
    args = parser.parse_args(argv)

    model = create_model(args.model)
    batches = list(landmark_batches(model, args.detector, calibration_images(args.calibration, args.images)))
    batch = np.concatenate(batches)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx")
        int8 = quantize_int8(fp32, Path(tmp) / "int8.onnx", batches)
        rows = layer_errors(fp32, int8, batch)
        shift = point_shift(fp32, int8, batch)
    print(f"{len(batch)} face crops, {len(rows)} tensors compared")
    print(f"points: mean shift {shift.mean():.2f} crop px, 90th percentile {np.percentile(shift, 90):.2f}")
    print("\n| tensor | op | fp32 max | max error / fp32 max |\n|---|---|---:|---:|")
    for row in sorted(rows, key=lambda r: r.fp32_max, reverse=True)[: args.top]:
        print(f"| {row.tensor} | {row.op} | {row.fp32_max:.1f} | {100 * row.relative_error:.1f} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
