"""What runs in a Ray worker: one :class:`~hrface.runtime.FaceAnalyzer` per worker, built once, mapping
batches of images to batches of records.  Images are read (local path or URI) and decoded here, in the worker."""

from __future__ import annotations

import io
from typing import Any

from ..errors import ImageLoadError, one_line
from ..io.image import decode_image_bytes, frame_count, read_image
from ..io.records import analyzed_record, error_record
from ..runtime import FaceAnalyzer


def is_uri(path: str) -> bool:
    """Whether ``path`` names an object by URI (``s3://…``, ``gs://…``, ``file:///…``) rather than a local path."""
    return "://" in path


def read_uri(uri: str, where: str) -> bytes:
    """The bytes of the object at ``uri``, read through a pyarrow filesystem (S3, GCS, HDFS, local ``file://``;
    credentials from the environment as pyarrow finds them); a one-line :class:`ImageLoadError` otherwise."""
    from pyarrow import fs

    try:
        filesystem, inner = fs.FileSystem.from_uri(uri)
        with filesystem.open_input_file(inner) as file:
            return file.read()
    except Exception as exc:  # pyarrow raises OSError, ValueError or ArrowException subclasses
        raise ImageLoadError(f"{where}: cannot read ({one_line(exc, 200)}); check the URI and its access") from None


def analyze_source(
    analyzer: FaceAnalyzer, image: str, path: str, data: bytes | None, max_pixels: int | None = None
) -> dict[str, Any]:
    """The local engine's record of one image (:func:`hrface.io.records.analyzed_record`), named ``image``:
    decoded from ``data`` when given, else read from ``path`` (a local path or a URI).  Any failure becomes
    ``{"image", "error"}``; a multi-frame file gets the same ``warning`` as in the local engine."""
    try:
        if data is None and is_uri(path):
            data = read_uri(path, image)
        if data is None:
            array = read_image(path, max_pixels=max_pixels, where=image)
        else:
            array = decode_image_bytes(data, image, max_pixels=max_pixels)
        faces = analyzer.analyze(array)
    except Exception as exc:  # one bad image must not fail the batch, nor the job
        return error_record(image, exc)
    frames = frame_count(io.BytesIO(data)) if data is not None else frame_count(path)
    return analyzed_record(image, array, faces, frames)


class FaceWorker:
    """The callable class of ``map_batches``: Ray builds one per worker (an actor), which loads the models once.

    ``threads`` is the worker's share of CPUs (its ``num_cpus``): the intra-op threads of the models and of
    OpenCV, so that workers never oversubscribe their node.  A batch is a ``pyarrow.Table`` with ``path``
    (local path or URI, as ``read_binary_files(include_paths=True)`` gives) and optional ``bytes`` (the
    file's contents; read from ``path`` when absent) and ``image`` (the name to record; default ``path``).
    """

    def __init__(self, settings: dict[str, Any], threads: int, max_pixels: int | None) -> None:
        import cv2

        cv2.setNumThreads(threads)
        self.analyzer = FaceAnalyzer(**settings, threads=threads)
        self.max_pixels = max_pixels

    def __call__(self, batch: Any) -> Any:
        from .schema import records_table

        names = batch.column_names
        paths = [str(path) for path in batch.column("path").to_pylist()]
        images = batch.column("image").to_pylist() if "image" in names else paths
        contents = batch.column("bytes").to_pylist() if "bytes" in names else [None] * len(paths)
        records = [
            analyze_source(self.analyzer, image, path, data, self.max_pixels)
            for image, path, data in zip(images, paths, contents, strict=True)
        ]
        return records_table(records)
