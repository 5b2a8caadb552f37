"""The ``hrface.*`` metadata of hrface's ONNX files: written by :mod:`hrface.export`, read by the runtime.

Keys (``metadata_props``, strings): ``hrface.kind`` ('retinaface' | 'hrnet'), ``hrface.options`` (JSON of
the architecture options), ``hrface.input_size`` and ``hrface.num_landmarks`` (HRNet), ``hrface.max_size``
(a RetinaFace trained for a given image size), ``hrface.precision`` ('fp32' | 'int8'),
``hrface.weights_sha256`` and ``hrface.format``.  Reading it needs neither torch nor onnx.
"""

from __future__ import annotations

EXPORT_FORMAT = "1"  # bump when the graph interface or the export recipe changes (re-exports cached files)
META_PREFIX = "hrface."


def hrface_metadata(props: dict[str, str]) -> dict[str, str]:
    """The ``hrface.*`` entries of an ONNX model's metadata map, without the prefix."""
    return {k[len(META_PREFIX) :]: v for k, v in props.items() if k.startswith(META_PREFIX)}
