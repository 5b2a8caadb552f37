"""The Ray engine of ``hrface detect --engine ray``: the records of a list of images, computed by an actor pool on
Ray Data (:func:`.analyze_dataset`), on this machine or a cluster, streamed into a sink as they come.

The driver (the calling process) loads the models once to report one that cannot be loaded before Ray starts
(:func:`check_models`), and writes the records: images are read and decoded in the workers.  Ray is joined or
started by :func:`.cluster.ray_session` (a wrong address fails within seconds; a local instance does not outlive
the driver).  Sinks (:func:`open_sink`): JSON lines through :class:`~hrface.io.records.RecordSink` (the local
engine's ``.partial`` file and resume), in input order; or Parquet shards in a folder
(:class:`.parquet.ShardWriter`).  Ray and pyarrow are imported only when the engine runs.
"""

from __future__ import annotations

import logging
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HrfaceError, WeightsNotFoundError, one_line


@dataclass(frozen=True)
class Job:
    """An image for a worker: the name to record (as given), and where to read it (absolute path or URI)."""

    image: str
    path: str


def model_path(model: str) -> str:
    """A model name as it is, a model file as an absolute path (the workers may run in another folder)."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_file() else model


def check_models(detector: str, landmarker: str | None, parquet: bool) -> dict[str, Any]:
    """Check that the models can be found (before Ray starts; ``landmarker`` None: detection only), and give
    their Parquet columns (names and weight hashes; empty for JSON lines)."""
    from ..models.registry import resolve_weights
    from .schema import model_columns

    resolve_weights(detector)
    if landmarker is not None:
        try:
            resolve_weights(landmarker)
        except WeightsNotFoundError as exc:
            raise WeightsNotFoundError(f"{exc}; or run detection only with --landmarker none") from None
    return model_columns(detector, landmarker) if parquet else {}


def open_sink(output: Path | None, resume: bool, models: dict[str, Any], parquet: bool) -> Any:
    """A :class:`~hrface.io.records.RecordSink` (JSON lines) or :class:`.parquet.ShardWriter` (Parquet, into
    the folder or URI ``output``) to use as a context manager."""
    if parquet:
        from .parquet import ShardWriter

        return ShardWriter(str(output), resume, models)
    from ..io.records import RecordSink

    return RecordSink(output, resume)


def write(sink: Any, records: list[dict[str, Any]], parquet: bool, counts: Counter) -> None:
    """Write records to the sink (one shard per call for Parquet) and count images, faces and errors."""
    if parquet:
        sink.write(records)
    else:
        for record in records:
            sink.write(record)
    counts["images"] += len(records)
    counts["faces"] += sum(len(record.get("faces") or ()) for record in records)
    counts["errors"] += sum("error" in record for record in records)


def run_jobs(
    jobs: Sequence[Job],
    sink: Any,
    counts: Counter,
    settings: Mapping[str, Any],
    *,
    threads: int | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    address: str | None = None,
    quiet: bool = False,
    parquet: bool = False,
) -> None:
    """Load the models here once (their errors come before Ray starts), start (or join, ``address``) Ray, and
    stream the records of ``jobs`` from an actor pool into ``sink`` as they come (in input order unless
    ``parquet``), counting them into ``counts``.

    ``settings``: the :class:`~hrface.FaceAnalyzer` settings (``detector``, ``landmarker``, ``threshold``,
    ``nms_iou``, ``max_size``, ``device``, ``backend``; model files as absolute paths, :func:`model_path`).
    ``workers`` actors (default: the cluster's CPUs / ``threads``), each on ``threads`` CPUs (default 1),
    ``batch_size`` images per call.  ``quiet``: no progress bars, no Ray Data notes.  A failed Ray run raises
    one :class:`~hrface.errors.HrfaceError` line (:func:`ray_failure`)."""
    import ray
    from ray.data import DataContext

    from .cluster import ray_session
    from .dataset import DEFAULT_BATCH_SIZE, analyze_dataset, images_dataset, load_models
    from .schema import to_record

    settings = dict(settings)
    load_models(settings)
    threads = threads or 1
    with ray_session(address, quiet):
        context = DataContext.get_current()
        saved = context.execution_options.preserve_order, context.enable_progress_bars
        context.execution_options.preserve_order = not parquet  # JSON lines in input order
        context.enable_progress_bars = not quiet and sys.stderr.isatty()
        data_log = logging.getLogger("ray.data")
        level = data_log.level
        if quiet:
            data_log.setLevel(logging.ERROR)  # no "Starting execution" notes, no "Progress bars disabled"
        try:
            pool = workers or max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
            ds = analyze_dataset(
                images_dataset([job.path for job in jobs], [job.image for job in jobs]),
                **settings,
                batch_size=batch_size or DEFAULT_BATCH_SIZE,
                workers=min(pool, len(jobs)),
                threads_per_worker=threads,
                num_gpus=0 if settings.get("device", "cpu") == "cpu" else 1,
                check_models=False,  # loaded above
            )
            for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                write(sink, [to_record(row) for row in batch.to_pylist()], parquet, counts)
        except ray.exceptions.RayError as exc:
            raise ray_failure(exc, sink.written) from None
        finally:
            context.execution_options.preserve_order, context.enable_progress_bars = saved
            data_log.setLevel(level)


def ray_failure(exc: BaseException, written: int) -> HrfaceError:
    """One line for a failed Ray run: the hrface error that a worker raised (a model that does not load), found
    in Ray's report of it, or Ray's own message; and what is kept of the output."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # Ray colours its reports
    found = re.findall(r"hrface\.errors\.\w+: ([^\n]+)", text)
    reason = found[-1] if found else f"the Ray run failed: {one_line(text, 300)}"
    kept = f"; {written} records are kept: continue with --resume" if written else ""
    return HrfaceError(f"{one_line(reason, 600)}{kept}")
