"""The Arrow form of ``hrface detect`` records, and the model columns of the Parquet output.

A record of the local engine (``{"image", "width", "height", "faces"}`` or ``{"image", "error"}``, see the
README's *Output schema*) is one row of :func:`record_schema`; the keys a record lacks are null, and
:func:`to_record` turns a row back into the record, key for key.  Coordinates are pixels of the original
image (rounded to 0.01 px), scores in [0, 1], pose angles in degrees.  pyarrow is imported inside the functions.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ..io.records import error_record, image_record

RECORD_COLUMNS = ("image", "width", "height", "faces", "error", "warning")
"""The columns of :func:`analyze_dataset`'s records, in order."""

MODEL_COLUMNS = ("detector", "detector_sha256", "landmarker", "landmarker_sha256")
"""The columns the Parquet output adds: model names (or paths) as given, and SHA-256 of their weights."""


def face_type() -> Any:
    """``struct<box, score, keypoints, five_points, landmarks, landmark_scores, pose>``: one face as
    ``Face.to_dict`` gives it."""
    import pyarrow as pa

    f64 = pa.float64()
    points = pa.list_(pa.list_(f64))  # (N, 2) [x, y] pairs
    pose = pa.struct([("yaw", f64), ("pitch", f64), ("roll", f64)])
    fields = [("box", pa.list_(f64)), ("score", f64), ("keypoints", points), ("five_points", points)]
    return pa.struct([*fields, ("landmarks", points), ("landmark_scores", pa.list_(f64)), ("pose", pose)])


def record_schema(models: bool = False) -> Any:
    """The ``pyarrow.Schema`` of a record row (:data:`RECORD_COLUMNS`), with :data:`MODEL_COLUMNS` when
    ``models``: ``image`` string, ``width`` / ``height`` int32 pixels, ``faces`` list of :func:`face_type`,
    ``error`` / ``warning`` string; null where the record has no such key."""
    import pyarrow as pa

    fields = [
        ("image", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("faces", pa.list_(face_type())),
        ("error", pa.string()),
        ("warning", pa.string()),
    ]
    if models:
        fields += [(name, pa.string()) for name in MODEL_COLUMNS]
    return pa.schema(fields)


def records_table(records: list[dict[str, Any]], models: dict[str, str | None] | None = None) -> Any:
    """A ``pyarrow.Table`` of ``records`` (local-engine dicts), with the constant ``models`` columns if given."""
    import pyarrow as pa

    if models is None:
        return pa.Table.from_pylist(records, schema=record_schema())
    return pa.Table.from_pylist([{**record, **models} for record in records], schema=record_schema(True))


def to_record(row: dict[str, Any]) -> dict[str, Any]:
    """The local engine's JSON record of one row: ``{"image", "error"}`` for a failed image, else
    ``{"image", "width", "height", "faces"}`` and ``warning`` when there is one."""
    if row.get("error") is not None:
        return error_record(row["image"], row["error"])
    return image_record(row["image"], row["width"], row["height"], row["faces"], row.get("warning"))


def model_columns(detector: str | os.PathLike[str], landmarker: str | os.PathLike[str] | None) -> dict[str, Any]:
    """:data:`MODEL_COLUMNS` for a run: each model's name or path as given, and the SHA-256 of its weights
    (the registry's for a named model that records one, else that of the file); raises the one-line error
    of a model that cannot be found."""
    columns: dict[str, Any] = {}
    for kind, model in (("detector", detector), ("landmarker", landmarker)):
        columns[kind] = None if model is None else os.fspath(model)
        columns[f"{kind}_sha256"] = None if model is None else weights_sha256(model)
    return columns


def weights_sha256(model: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a model's weights: the registry's value for a named model, else hashed from the file."""
    from ..models.registry import resolve_weights

    path, info = resolve_weights(model)
    if info is not None and info.sha256:
        return info.sha256
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
