"""The Python API of the Ray engine: map a Ray Dataset of images to a Dataset of ``hrface detect`` records."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError
from ..extras import require
from ..io.image import max_pixels_limit
from ..runtime.detector import DEFAULT_DETECTOR, MaxSize, Threshold
from ..runtime.landmarker import DEFAULT_LANDMARKER

DEFAULT_BATCH_SIZE = 16
"""Images per ``map_batches`` call (and per Parquet shard of ``hrface detect --engine ray``)."""


def analyze_dataset(
    ds: Any,
    *,
    detector: str | os.PathLike[str] = DEFAULT_DETECTOR,
    landmarker: str | os.PathLike[str] | None = DEFAULT_LANDMARKER,
    threshold: Threshold = "auto",
    nms_iou: float = 0.4,
    max_size: MaxSize = "auto",
    min_face: float = 0.0,
    device: str = "cpu",
    backend: str = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    workers: int | tuple[int, int] | None = None,
    threads_per_worker: int = 1,
    num_gpus: float = 0,
    max_pixels: int | None = None,
    check_models: bool = True,
) -> Any:
    """Records of the faces in each image of ``ds``, as a lazy ``ray.data.Dataset`` (one row per image).

    >>> ds = ray.data.read_binary_files("s3://bucket/photos/", include_paths=True)
    >>> analyze_dataset(ds, workers=8).write_parquet("s3://bucket/faces/")

    ``ds`` has a ``path`` column (a local path or a URI) and optionally ``bytes`` (the file's contents, as
    ``read_binary_files(..., include_paths=True)`` gives; without it each worker reads ``path`` itself) and
    ``image`` (the name recorded; default ``path``).  Rows of the result follow :func:`.record_schema`:
    ``image``, ``width``, ``height``, ``faces`` (box, score, keypoints, landmarks, pose, as the local engine),
    ``error``, ``warning``; :func:`.to_record` gives the local engine's JSON record of a row.  An image
    that cannot be read or analysed gives an ``error`` row, never a failed job.

    ``threshold``, ``nms_iou``, ``max_size`` and ``min_face`` are :class:`~hrface.FaceAnalyzer`'s.
    The models (names or paths, as for :class:`~hrface.FaceAnalyzer`; a path must exist on every node) are
    loaded once per worker: an actor pool of ``workers`` actors (default: the cluster's CPUs less one, divided
    by ``threads_per_worker``; a ``(min, max)`` pair lets Ray scale it), each reserving ``threads_per_worker``
    CPUs (and ``num_gpus``) and running its models and OpenCV on that many threads.  Leave CPUs for the tasks
    upstream of the pool (``read_binary_files`` reads with one CPU per task): Ray does not take CPUs back from
    actors, so a pool that holds every CPU waits for its input forever.  A Dataset of paths only
    (:func:`images_dataset`) has no such tasks: its workers may take every CPU.  ``batch_size`` images go
    to a worker at a time.  A worker that dies is restarted and its batches retried by Ray (Ray Data's
    actor pools default to ``max_restarts=-1`` and ``max_task_retries=-1``).  ``max_pixels``: the pixel cap
    of :func:`~hrface.io.image.read_image`, resolved here (default ``$HRFACE_MAX_PIXELS`` of the driver).
    Row order follows ``ds`` when ``DataContext.get_current().execution_options.preserve_order`` is set.
    With ``check_models`` (the default) the models are first loaded here, once (:func:`load_models`), so that a
    model that cannot be loaded is one error at this call rather than a failure in every worker.
    """
    ray = require("ray", "ray", "hrface.distributed")
    require("pyarrow", "ray", "hrface.distributed")
    from ray.data import ActorPoolStrategy

    from .worker import FaceWorker

    if threads_per_worker < 1 or batch_size < 1:
        got = f"got {threads_per_worker} and {batch_size}"
        raise ConfigError(f"threads_per_worker and batch_size must be at least 1, {got}")
    if workers is None:
        cpus = ray.cluster_resources().get("CPU", 1) if ray.is_initialized() else os.cpu_count() or 1
        workers = max(1, int((cpus - 1) // threads_per_worker))  # a CPU left for the reads upstream
    if isinstance(workers, int):
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        pool = ActorPoolStrategy(size=workers)
    else:
        pool = ActorPoolStrategy(min_size=workers[0], max_size=workers[1])
    if isinstance(landmarker, str) and landmarker.lower() == "none":
        landmarker = None
    settings = {
        "detector": os.fspath(detector),
        "landmarker": None if landmarker is None else os.fspath(landmarker),
        "threshold": threshold,
        "nms_iou": nms_iou,
        "min_face": min_face,
        "max_size": max_size,
        "device": device,
        "backend": backend,
    }
    if check_models:
        load_models(settings)
    return ds.map_batches(
        FaceWorker,
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=pool,
        num_cpus=threads_per_worker,
        num_gpus=num_gpus or None,
        fn_constructor_kwargs={
            "settings": settings,
            "threads": threads_per_worker,
            "max_pixels": max_pixels_limit(max_pixels),
        },
    )


def load_models(settings: dict[str, Any]) -> None:
    """Load the models of a worker's ``settings`` (:class:`~hrface.runtime.FaceAnalyzer` arguments) once in this
    process, the driver, on its CPU with one thread, and drop them: a model that cannot be loaded (a missing,
    damaged or contradictory file, an ONNX export that cannot be written to ``$HRFACE_HOME``, a missing extra)
    raises its one-line error here, before any worker starts.  About a second for the default models."""
    from ..runtime import FaceAnalyzer

    FaceAnalyzer(**{**settings, "device": "cpu"}, threads=1)


def images_dataset(paths: Sequence[str], images: Sequence[str] | None = None) -> Any:
    """A Dataset of ``path`` (where each worker reads the image: an absolute local path, or a URI) and
    ``image`` (the name to record; default ``path``) rows, for :func:`analyze_dataset`.  Only names travel:
    the files are read in the workers."""
    require("ray", "ray", "hrface.distributed")
    import ray.data

    names = paths if images is None else images
    if len(names) != len(paths):
        raise ConfigError(f"{len(paths)} paths but {len(names)} image names")
    return ray.data.from_items([{"path": p, "image": n} for p, n in zip(paths, names, strict=True)])
