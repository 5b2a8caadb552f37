"""Corpus-scale runs on Ray Data (the ``hrface[ray]`` extra): the pipeline as an actor pool over a Dataset.

>>> import ray
>>> from hrface.distributed import analyze_dataset, to_record
>>> ds = ray.data.read_binary_files("photos/", include_paths=True)
>>> for row in analyze_dataset(ds, workers=2).iter_rows():
...     print(to_record(row))  # the record ``hrface detect`` writes for that image

Importing this package does not import Ray or pyarrow; the functions that need them do.
"""

from __future__ import annotations

from .dataset import DEFAULT_BATCH_SIZE, analyze_dataset, images_dataset
from .schema import MODEL_COLUMNS, RECORD_COLUMNS, model_columns, record_schema, to_record

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "MODEL_COLUMNS",
    "RECORD_COLUMNS",
    "analyze_dataset",
    "images_dataset",
    "model_columns",
    "record_schema",
    "to_record",
]
