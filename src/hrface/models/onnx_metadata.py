"""The ``hrface.*`` metadata of hrface's ONNX files: written by :mod:`hrface.export`, read by the runtime.

Keys (``metadata_props``, strings): ``hrface.kind`` ('retinaface' | 'hrnet'), ``hrface.options`` (JSON of
the architecture options), ``hrface.input_size`` and ``hrface.num_landmarks`` (HRNet), ``hrface.max_size``
(a RetinaFace trained for a given image size), ``hrface.train_size`` (its training input side),
``hrface.score_threshold`` (its recommended minimum score), ``hrface.point_calibration`` (``"a,b"``: a
landmark model's heatmap-peak → point-score mapping, :mod:`hrface.landmarks.confidence`),
``hrface.precision`` ('fp32' | 'int8'),
``hrface.weights_sha256`` and ``hrface.format``; ``hrface.weights`` = ``'state_dict'`` marks a compact
export (the shipped form) whose initializers are the model's state_dict under its own key names (float16
ones with :data:`HALF_SUFFIX`), so that the PyTorch side can read its weights back.  Reading the metadata
needs neither torch nor onnx.
"""

from __future__ import annotations

import math

EXPORT_FORMAT = "1"  # bump when the graph interface or the export recipe changes (re-exports cached files)
META_PREFIX = "hrface."
STATE_DICT_WEIGHTS = "state_dict"  # value of hrface.weights in a compact export
HALF_SUFFIX = "::float16"  # name suffix of an initializer stored in float16 (cast back to float32 in the graph)


def hrface_metadata(props: dict[str, str]) -> dict[str, str]:
    """The ``hrface.*`` entries of an ONNX model's metadata map, without the prefix."""
    return {k[len(META_PREFIX) :]: v for k, v in props.items() if k.startswith(META_PREFIX)}


def parse_point_calibration(text: str) -> tuple[float, float]:
    """``"a,b"`` (the ``point_calibration`` metadata of a landmark model) → ``(a, b)``, two finite floats;
    ValueError otherwise."""
    a, b = (float(part) for part in str(text).split(","))
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"point_calibration {text!r} is not two finite numbers")
    return a, b
