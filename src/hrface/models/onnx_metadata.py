"""The ``hrface.*`` metadata of hrface's ONNX files: written by :mod:`hrface.export`, read by the runtime.

Keys (``metadata_props``, strings): the model's configuration (:meth:`hrface.models.config.ModelConfig.metadata`
with ``onnx=True``: ``hrface.kind`` 'retinaface' | 'hrnet', ``hrface.options``, ``hrface.input_size``,
``hrface.sigma``, ``hrface.max_size``, ``hrface.score_threshold``, …), then what the export adds:
``hrface.precision`` ('fp32' | 'int8'), ``hrface.weights_sha256`` and ``hrface.format``; ``hrface.weights`` =
``'state_dict'`` marks a compact export (the shipped form) whose initializers are the model's state_dict under
its own key names (float16 ones with :data:`HALF_SUFFIX`), so that the PyTorch side can read its weights back.
Reading the metadata needs neither torch nor onnx.
"""

from __future__ import annotations

EXPORT_FORMAT = "1"  # bump when the graph interface or the export recipe changes (re-exports cached files)
META_PREFIX = "hrface."
STATE_DICT_WEIGHTS = "state_dict"  # value of hrface.weights in a compact export
HALF_SUFFIX = "::float16"  # name suffix of an initializer stored in float16 (cast back to float32 in the graph)


def hrface_metadata(props: dict[str, str]) -> dict[str, str]:
    """The ``hrface.*`` entries of an ONNX model's metadata map, without the prefix."""
    return {k[len(META_PREFIX) :]: v for k, v in props.items() if k.startswith(META_PREFIX)}
