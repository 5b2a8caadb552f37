"""``hrface detect --engine ray``: the same records as the local engine, computed by an actor pool on Ray Data
(:mod:`hrface.distributed`), on this machine or a cluster (``--address``).

The driver (this process) lists the inputs, loads the models once to report one that cannot be loaded before
Ray starts, and writes the records: images are read and decoded in the workers.  Ray is joined or started by
:func:`hrface.distributed.cluster.ray_session` (a wrong ``--address`` fails within seconds; a local instance
does not outlive the driver; ``--quiet`` keeps Ray's lines off stderr).  Output: JSON lines through
:class:`~.records.RecordSink` (the local engine's ``.partial`` file and ``--resume``), in input order; or,
with ``--format parquet``, Parquet shards in a folder (:mod:`hrface.distributed.parquet`).  Ray and pyarrow
are imported only when the engine runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, HrfaceError, WeightsNotFoundError, one_line

log = logging.getLogger("hrface")
RAY_ONLY = {"address": "--address", "batch_size": "--batch-size", "format": "--format"}


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """``--engine``, and the options of the Ray engine."""
    group = parser.add_argument_group("Ray engine (the hrface[ray] extra; images only)")
    group.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="'local': this process (default); 'ray': an actor pool on Ray Data, on this machine or a cluster; "
        "INPUT may then also be a URI (s3://, gs://, file://), also in @LIST.txt files",
    )
    group.add_argument("--address", help="Ray cluster to join (e.g. 10.0.0.1:6379; default: a local Ray instance)")
    group.add_argument("--batch-size", type=int, metavar="B", help="images per worker call and per Parquet shard (16)")
    group.add_argument(
        "--format",
        choices=("jsonl", "parquet"),
        help="jsonl (default): JSON lines in input order; parquet: --output is a folder of Parquet shards",
    )


def ray_engine(args: argparse.Namespace) -> bool:
    """Whether ``--engine ray`` was chosen; the Ray-only options without it are a usage error."""
    if args.engine == "ray":
        return True
    used = [option for name, option in RAY_ONLY.items() if getattr(args, name, None) is not None]
    if used:
        options = ", ".join(used)
        raise ConfigError(f"{options}: only with --engine ray; add --engine ray, or leave out {options}")
    return False


@dataclass(frozen=True)
class Job:
    """An image for a worker: the name to record (as given), and where to read it (absolute path or URI)."""

    image: str
    path: str


def run_ray(args: argparse.Namespace) -> int:
    """Run ``hrface detect --engine ray``; the exit status of the local engine (0, 1 some images failed)."""
    from ..distributed.cluster import check_address
    from ..distributed.worker import is_uri
    from ..extras import require
    from ..io.image import max_pixels_limit
    from .detect import summary
    from .outputs import check_output_folder, check_outputs

    check_options(args)
    inputs = expand_lists(args.inputs)
    parquet = args.format == "parquet"
    if parquet and not is_uri(str(args.output)):  # shards never among the photos, as --draw and --crops
        check_output_folder(args.output, [item for item in inputs if not is_uri(item)], "--output")
    require("ray", "ray", "--engine ray")
    require("pyarrow", "ray", "--engine ray")
    max_pixels_limit()  # a bad HRFACE_MAX_PIXELS is one usage error
    check_address(args.address)  # within seconds: Ray itself retries a wrong address for minutes
    jobs, issues, local = collect_jobs(inputs)
    if not parquet:
        check_outputs(local, [], args.output)
    models = check_models(args, parquet)
    counts: Counter = Counter()
    with open_sink(args, models) as sink:
        todo = [job for job in jobs if not sink.has(job.image)]
        skipped = len(jobs) - len(todo) + sum(sink.has(str(issue.path)) for issue in issues)
        for issue in issues:  # folders that could not be listed: recorded first
            if not sink.has(str(issue.path)):
                write(sink, [{"image": str(issue.path), "error": issue.message}], parquet, counts)
        if todo:
            process(args, models, todo, sink, parquet, counts)
    if not args.quiet:
        print(summary(counts, skipped, args.output), file=sys.stderr)
    return 1 if counts["errors"] + sum(sink.done.values()) else 0


def check_options(args: argparse.Namespace) -> None:
    """Refuse what the Ray engine does not do, before anything starts."""
    for name, option in (("draw", "--draw"), ("crops", "--crops"), ("camera", "--camera")):
        if getattr(args, name, None) is not None:
            raise ConfigError(f"{option} is not available with --engine ray; run it with the local engine")
    if not args.inputs:
        raise ConfigError("nothing to analyse: pass images, folders, URIs or @LIST.txt files")
    if args.format == "parquet" and args.output is None:
        raise ConfigError("--format parquet needs --output DIR, the folder of the Parquet shards")
    for name in ("workers", "batch_size", "threads"):
        if getattr(args, name, None) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")


def expand_lists(inputs: list[str]) -> list[str]:
    """``inputs`` with each ``@LIST.txt`` replaced by its lines (paths or URIs; blank lines and ``#`` comments
    skipped; relative paths are relative to the current folder, as on the command line).  A list without any
    path is a usage error."""
    expanded: list[str] = []
    for item in inputs:
        if not item.startswith("@"):
            expanded.append(item)
            continue
        try:
            lines = Path(item[1:]).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{item[1:]}: cannot read the list of images ({one_line(exc, 200)})") from None
        listed = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not listed:
            raise ConfigError(
                f"{item[1:]}: the list file is empty (no path or URI in it, only blank lines or # comments); "
                "put one image path or URI per line"
            )
        expanded += listed
    return expanded


def collect_jobs(inputs: list[str]) -> tuple[list[Job], list[Any], list[Any]]:
    """The images to analyse, in input order: runs of local inputs through :func:`~.detect.collect_images`
    (folders searched recursively), URIs as they are.  Also the folders that could not be listed
    (:class:`FolderIssue`) and the local items found (for the output checks).  Videos are skipped, with a warning."""
    from ..distributed.worker import is_uri
    from ..io.files import FolderIssue
    from ..video.reader import VIDEO_EXTENSIONS
    from .detect import collect_images

    jobs: list[Job] = []
    issues: list[FolderIssue] = []
    local: list[Any] = []
    videos = 0
    segments: list[list[str]] = []
    for item in inputs:
        if is_uri(item):
            segments.append([item])
        elif segments and not is_uri(segments[-1][0]):
            segments[-1].append(item)
        else:
            segments.append([item])
    for segment in segments:
        if is_uri(segment[0]):
            jobs.append(Job(segment[0], segment[0]))
            continue
        try:
            found = collect_images(segment)
        except ConfigError as exc:  # a run of folders without images, between URIs
            log.warning(str(exc))
            continue
        local += found
        for source in found:
            if isinstance(source, FolderIssue):
                issues.append(source)
            elif source.path.suffix.lower() in VIDEO_EXTENSIONS:
                videos += 1
            else:
                jobs.append(Job(str(source.path), os.path.abspath(source.path)))
    if videos:
        log.warning(f"{videos} videos skipped: --engine ray analyses images; run videos with the local engine")
    if not jobs and not issues:
        raise ConfigError(f"no images in {', '.join(inputs[:3])}{' …' if len(inputs) > 3 else ''}; pass images")
    return jobs, issues, local


def check_models(args: argparse.Namespace, parquet: bool) -> dict[str, Any]:
    """Check that the models can be found (before Ray starts), and give their Parquet columns (names and
    weight hashes; empty for JSON lines)."""
    from ..distributed.schema import model_columns
    from ..models.registry import resolve_weights

    landmarker = None if args.landmarker.lower() == "none" else args.landmarker
    resolve_weights(args.detector)
    if landmarker is not None:
        try:
            resolve_weights(landmarker)
        except WeightsNotFoundError as exc:
            raise WeightsNotFoundError(f"{exc}; or run detection only with --landmarker none") from None
    return model_columns(args.detector, landmarker) if parquet else {}


def open_sink(args: argparse.Namespace, models: dict[str, Any]) -> Any:
    """A :class:`RecordSink` (JSON lines) or :class:`ShardWriter` (Parquet) for ``--output``."""
    if args.format == "parquet":
        from ..distributed.parquet import ShardWriter

        return ShardWriter(str(args.output), args.resume, models)
    from .records import RecordSink

    return RecordSink(args.output, args.resume)


def write(sink: Any, records: list[dict[str, Any]], parquet: bool, counts: Counter) -> None:
    """Write records to the sink (one shard per call for Parquet) and count them."""
    if parquet:
        sink.write(records)
    else:
        for record in records:
            sink.write(record)
    counts["images"] += len(records)
    counts["faces"] += sum(len(record.get("faces") or ()) for record in records)
    counts["errors"] += sum("error" in record for record in records)


def process(
    args: argparse.Namespace, models: dict[str, Any], jobs: list[Job], sink: Any, parquet: bool, counts: Counter
) -> None:
    """Load the models here once (their errors come before Ray starts), start (or join) Ray, and stream the
    records of ``jobs`` from the actor pool into ``sink`` as they come."""
    import ray
    from ray.data import DataContext

    from ..distributed import analyze_dataset, images_dataset, to_record
    from ..distributed.cluster import ray_session
    from ..distributed.dataset import DEFAULT_BATCH_SIZE, load_models

    landmarker = None if args.landmarker.lower() == "none" else model_path(args.landmarker)
    settings = {
        "detector": model_path(args.detector),
        "landmarker": landmarker,
        "threshold": args.threshold,
        "nms_iou": args.nms_iou,
        "max_size": args.max_size,
        "device": args.device,
        "backend": args.backend,
    }
    load_models(settings)
    threads = args.threads or 1
    with ray_session(args.address, args.quiet):
        context = DataContext.get_current()
        saved = context.execution_options.preserve_order, context.enable_progress_bars
        context.execution_options.preserve_order = not parquet  # JSON lines in input order
        context.enable_progress_bars = not args.quiet and sys.stderr.isatty()
        data_log = logging.getLogger("ray.data")
        level = data_log.level
        if args.quiet:
            data_log.setLevel(logging.ERROR)  # no "Starting execution" notes, no "Progress bars disabled"
        try:
            workers = args.workers or max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
            ds = analyze_dataset(
                images_dataset([job.path for job in jobs], [job.image for job in jobs]),
                **settings,
                batch_size=args.batch_size or DEFAULT_BATCH_SIZE,
                workers=min(workers, len(jobs)),
                threads_per_worker=threads,
                num_gpus=0 if args.device == "cpu" else 1,
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


def model_path(model: str) -> str:
    """A model name as it is, a model file as an absolute path (the workers may run in another folder)."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_file() else model
