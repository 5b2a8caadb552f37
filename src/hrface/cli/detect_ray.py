"""``hrface detect --engine ray``: its options, and the run on the Ray engine (:mod:`hrface.distributed.engine`),
which gives the same records as the local engine, computed by an actor pool on Ray Data, on this machine or a
cluster (``--address``).

This process lists the inputs (folders searched as by the local engine, URIs as they are), checks the options
and the outputs, and hands the images to the engine, which writes their records: JSON lines through
:class:`~hrface.io.records.RecordSink` (the local engine's ``.partial`` file and ``--resume``), in input order;
or, with ``--format parquet``, Parquet shards in a folder (:mod:`hrface.distributed.parquet`).  Ray and pyarrow
are imported only when the engine runs; ``--quiet`` keeps Ray's lines off stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter
from typing import Any

from ..errors import ConfigError
from .inputs import collect_images, expand_lists
from .outputs import check_output_folder, check_outputs, summary

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


def run_ray(args: argparse.Namespace) -> int:
    """Run ``hrface detect --engine ray``; the exit status of the local engine (0, 1 some images failed)."""
    from ..distributed.cluster import check_address
    from ..distributed.engine import check_models, model_path, open_sink, run_jobs, write
    from ..distributed.worker import is_uri
    from ..extras import require
    from ..io.image import max_pixels_limit
    from ..io.records import error_record

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
    landmarker = None if args.landmarker.lower() == "none" else args.landmarker
    models = check_models(args.detector, landmarker, parquet)
    counts: Counter = Counter()
    with open_sink(args.output, args.resume, models, parquet) as sink:
        todo = [job for job in jobs if not sink.has(job.image)]
        skipped = len(jobs) - len(todo) + sum(sink.has(str(issue.path)) for issue in issues)
        for issue in issues:  # folders that could not be listed: recorded first
            if not sink.has(str(issue.path)):
                write(sink, [error_record(str(issue.path), issue.message)], parquet, counts)
        if todo:
            settings = {
                "detector": model_path(args.detector),
                "landmarker": None if landmarker is None else model_path(landmarker),
                "threshold": args.threshold,
                "nms_iou": args.nms_iou,
                "min_face": args.min_face,
                "max_size": args.max_size,
                "device": args.device,
                "backend": args.backend,
            }
            run_jobs(
                todo,
                sink,
                counts,
                settings,
                threads=args.threads,
                workers=args.workers,
                batch_size=args.batch_size,
                address=args.address,
                quiet=args.quiet,
                parquet=parquet,
            )
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


def collect_jobs(inputs: list[str]) -> tuple[list[Any], list[Any], list[Any]]:
    """The images to analyse, in input order: runs of local inputs through :func:`~.inputs.collect_images`
    (folders searched recursively), URIs as they are.  Also the folders that could not be listed
    (:class:`FolderIssue`) and the local items found (for the output checks).  Videos are skipped, with a warning."""
    from ..distributed.engine import Job
    from ..distributed.worker import is_uri
    from ..io.files import FolderIssue
    from ..video.reader import VIDEO_EXTENSIONS

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
