"""``hrface export``: a detector or landmark model as an ONNX file, optionally quantised to INT8."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from ..errors import ConfigError, OutputError
from ..extras import require
from ..io.files import atomic_write_bytes, check_writable_file
from ..runtime.detector import DEFAULT_DETECTOR

MAX_INT8_POINT_SHIFT = 0.005
"""Largest mean point shift of an INT8 landmark model, as a fraction of the crop side.  The inter-ocular
distance is about 0.28 of the crop side (1.25 × box), so 0.5 % of the side is 1.8 % of it.  INT8 rounding
moves points independently of the model's own error, so a shift ``s`` turns an error ``e`` into about
``sqrt(e² + s²)``: at ``e`` = 5 % that is 0.3 NME points.  Measured: ``hrface_w18_300w_v2_128`` moves by
0.24 px on 128 px crops and its validation NME changes by 0.01 points; ``hrface_w18_300w_128`` (v1) moved
by 28 px (NME 134 %)."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export",
        help="export a detector or landmark model to ONNX (fp32, or INT8 with --int8)",
        description="Write MODEL (registry name or checkpoint) as ONNX: BatchNorm folded, dynamic batch (and "
        "height/width for the detector), hrface metadata for the runtime (kind, options, crop size). "
        "Decoding (priors, NMS, heatmaps) stays outside the graph. Run it with backend 'onnxruntime'.",
    )
    parser.add_argument("model", help="detector or landmark model: registry name or checkpoint path")
    parser.add_argument("output", type=Path, help="output .onnx file (written atomically)")
    parser.add_argument("--int8", action="store_true", help="static INT8 quantisation (QDQ, per-channel weights)")
    parser.add_argument(
        "--compact",
        action="store_true",
        help="the form shipped in the package: BatchNorm kept and weights stored in float16 where that is exact "
        "(half the file, the same values; ONNX Runtime folds them on load)",
    )
    parser.add_argument("--calibration", type=Path, metavar="DIR", help="folder of photos with faces for --int8")
    parser.add_argument("--calibration-images", type=int, default=32, help="at most this many photos (default 32)")
    parser.add_argument(
        "--calibration-split",
        type=Path,
        metavar="FILE",
        help="split file (e.g. configs/splits/300w_val10.json): --calibration is a 300W-style folder and only its "
        "training photos are used, so that calibration sees no validation face",
    )
    parser.add_argument(
        "--detector",
        default=DEFAULT_DETECTOR,
        help="detector that finds the faces to crop when calibrating a landmark model",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() != ".onnx":
        raise ConfigError(f"{args.output}: the output file must end in .onnx")
    if args.int8 and args.compact:
        raise ConfigError("--compact and --int8 are different forms; choose one")
    if args.int8 and args.calibration is None:
        raise ConfigError("--int8 needs --calibration DIR (a folder of photos with faces)")
    if args.calibration_split is not None and not args.int8:
        raise ConfigError("--calibration-split is for --int8")
    check_output(args.output)
    require("torch", "torch", "hrface export")
    require("onnx", "torch", "hrface export")
    from ..export import export_onnx, quantize_int8
    from ..export.onnx_export import model_kind
    from ..export.quantize import calibration_images
    from ..models.registry import create_model
    from ..runtime.calibration import detector_batches, int8_output_error, landmark_batches

    model = create_model(args.model)
    if not args.int8:
        export_onnx(model, args.output, compact=args.compact)
        print(f"wrote {args.output}{' (compact)' if args.compact else ''}")
        return 0
    images = calibration_images(args.calibration, args.calibration_images, args.calibration_split)
    if model_kind(model) == "retinaface":
        batches = list(detector_batches(model, images))
    else:
        batches = list(landmark_batches(model, args.detector, images))
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx")
        int8 = quantize_int8(fp32, Path(tmp) / "int8.onnx", batches)
        if model_kind(model) == "hrnet":
            check_landmark_int8(fp32, int8, batches, args.model)
        error = int8_output_error(fp32, int8, batches)
        atomic_write_bytes(args.output, int8.read_bytes())  # only a model that passed the checks is written
    print(f"wrote {args.output} (INT8, calibrated on {len(images)} images)")
    print(
        f"INT8 vs fp32 on the calibration inputs: largest output difference {100 * error:.1f} % of the fp32 range"
        + ("; check its accuracy before use (benchmarks/accuracy.py in the source repository)" if error > 0.1 else "")
    )
    return 0


def check_output(path: Path) -> None:
    """Refuse an output file that cannot be written before the (slow) work that makes it starts."""
    try:
        check_writable_file(path)
    except OSError as exc:
        raise OutputError.cannot_write(path, exc) from None


def check_landmark_int8(fp32: Path, int8: Path, batches: list, model_name: str) -> None:
    """Refuse (:class:`ConfigError`) an INT8 landmark model whose points move by more than
    :data:`MAX_INT8_POINT_SHIFT` of the crop side on the calibration faces, with the measured shift."""
    import numpy as np

    from ..runtime.calibration import point_shift

    batch = np.concatenate(batches)
    shift = float(point_shift(fp32, int8, batch).mean())
    side = batch.shape[-1]
    if shift > MAX_INT8_POINT_SHIFT * side:
        raise ConfigError(
            f"INT8 refused for this landmark model: on the calibration faces its points move by {shift:.2f} px "
            f"on average on {side} px crops ({100 * shift / side:.2f} % of the crop, limit "
            f"{100 * MAX_INT8_POINT_SHIFT:.1f} %); use the fp32 ONNX model (per-layer errors: python "
            f"benchmarks/int8_layers.py {model_name} --calibration DIR, in the source repository)"
        )
