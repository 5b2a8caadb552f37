"""``hrface detect``: run the pipeline over image files, videos, folders and a camera, one JSON line per image
(or per analysed video frame, :mod:`.detect_video`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io.draw import draw_faces
from ..io.files import FolderIssue
from ..io.image import frame_count, max_pixels_limit, read_image, write_image
from ..io.records import RecordSink, analyzed_record, error_record, error_text
from ..runtime import FaceAnalyzer
from ..runtime.backends import BACKENDS
from ..runtime.detector import DEFAULT_DETECTOR, MaxSize, parse_max_size
from ..runtime.landmarker import DEFAULT_LANDMARKER
from ..runtime.parallel import ordered_map
from ..video.reader import is_video
from .analyzers import Analyzers, image_workers
from .crops import CropWriter, add_crop_arguments
from .detect_ray import add_ray_arguments, ray_engine, run_ray
from .detect_video import add_video_arguments, check_video_arguments, process_video
from .inputs import collect_images, expand_lists
from .outputs import (
    Source,
    camera_source,
    check_outputs,
    drawing_path,
    image_crops,
    prepare_folder,
    summary,
    video_crops,
)

log = logging.getLogger("hrface")


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "detect",
        help="detect faces (and landmarks) in images, videos, folders and a camera",
        description="Detect faces and landmarks. Writes one JSON line per image (per analysed frame for a video "
        "or camera, with track ids); an image or video that cannot be processed gets an 'error' line and the run "
        "goes on. Inputs are never overwritten: an output or "
        "drawing that would replace one is refused before the run starts. Exit status: 0 all images "
        "processed, 1 some images or videos (or their drawings) failed or frames of a video could not be read, 2 "
        "usage, model or output error, 130 interrupted.",
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="image and video files and/or folders (searched recursively), or @LIST.txt (one path a line)",
    )
    add_model_arguments(parser)
    parser.add_argument("--output", "-o", type=Path, help="write JSON lines to this file (default: standard output)")
    parser.add_argument(
        "--draw", type=Path, metavar="DIR", help="write annotated images (and videos, as .mp4) into this folder"
    )
    add_crop_arguments(parser)
    parser.add_argument(
        "--resume",
        action="store_true",
        help="with --output: keep the records already in FILE (or in the FILE.partial an interrupted run "
        "left) and process only the images not recorded yet",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="local engine: images analysed at once, each model session with --threads intra-op threads "
        "(default: the usable cores, one thread each; with --threads T, cores / T; videos and cameras go one "
        "frame at a time); --engine ray: worker processes, each loading the models once and running on --threads "
        "CPUs (default: the cluster's CPUs / --threads)",
    )
    add_video_arguments(parser)
    add_ray_arguments(parser)
    parser.set_defaults(run=run)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The models and how they run: ``--detector``, ``--landmarker``, ``--threshold``, ``--nms-iou``,
    ``--min-face``, ``--max-size``, ``--device``, ``--backend``, ``--threads`` (shared by detect and serve; see
    :func:`build_analyzer`)."""
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="detector name or checkpoint path")
    parser.add_argument(
        "--landmarker", default=DEFAULT_LANDMARKER, help="landmark model name or checkpoint path, or 'none'"
    )
    parser.add_argument(
        "--threshold",
        type=parse_threshold,
        default="auto",
        metavar="SCORE|auto",
        help="minimum face score (default auto: the model's own threshold (score_threshold metadata), else 0.5)",
    )
    parser.add_argument("--nms-iou", type=float, default=0.4, help="NMS IoU threshold (default 0.4)")
    parser.add_argument(
        "--min-face",
        type=float,
        default=0.0,
        metavar="PX",
        help="drop faces whose box is narrower or shorter than PX pixels of the original image (default 0: keep all)",
    )
    add_max_size_argument(parser, "auto")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    add_backend_arguments(parser)


def add_max_size_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """``--max-size PX | auto | none``: the longer image side above which photos are downscaled."""
    parser.add_argument(
        "--max-size",
        type=max_size_option,
        default=parse_max_size(default),
        metavar="PX|auto|none",
        help="downscale images whose longer side exceeds PX pixels for detection; 'auto': the size the "
        f"detector was trained for if its weights record one, else 1920; 'none': original size (default {default})",
    )


def parse_threshold(text: str) -> float | str:
    """'auto' → 'auto', else a score in [0, 1]."""
    if text.lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a score in [0, 1] or 'auto', got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def max_size_option(text: str) -> MaxSize:
    """:func:`~hrface.runtime.detector.parse_max_size` as an argparse type: its message is the usage error."""
    try:
        return parse_max_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--threads``, shared by the commands that run the models."""
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="forward pass on 'torch', 'onnxruntime' (exported to ONNX once, cached) or 'auto' "
        "(onnxruntime on the CPU when it is installed, else torch); default auto",
    )
    parser.add_argument("--threads", type=int, help="intra-op threads of the backend (default: the backend's own)")


def run(args: argparse.Namespace) -> int:
    """Everything that can be checked is checked before the models load and the first image is read:
    the environment, the inputs, that no output replaces an input, that the outputs can be written."""
    if ray_engine(args):
        return run_ray(args)
    max_pixels_limit()  # a bad HRFACE_MAX_PIXELS is one usage error, not an error record per image
    check_video_arguments(args)
    workers = image_workers(args)
    inputs = expand_lists(args.inputs)  # @LIST.txt: one path per line
    if not inputs and args.camera is None:
        raise ConfigError("nothing to analyse: pass images, videos or folders, or --camera N")
    items = collect_images(inputs) if inputs else []
    check_outputs(items, inputs, args.output, args.draw, args.crops, args.camera)
    with RecordSink(args.output, args.resume, keep_frames=args.draw is not None) as sink:
        for folder, option in ((args.draw, "--draw"), (args.crops, "--crops")):
            if folder is not None:
                prepare_folder(folder, option)
        todo = [item for item in items if not sink.has(item.path)]
        analyzers = Analyzers(args, workers if todo else 1)  # a camera alone: one analyzer, frame by frame
        # A bar on stderr only when a person watches: stderr is a terminal and the JSON lines are not piped.
        output_piped = args.output is None and not sys.stdout.isatty()
        watched = not args.quiet and sys.stderr.isatty() and not output_piped
        crops = CropWriter(args.crops, args.crop_template, args.crop_size) if args.crops is not None else None
        counts = process(analyzers, todo, sink, args, crops, watched)
        if args.camera is not None:
            camera = camera_source(args.camera)
            drawing = drawing_path(args.draw, camera, True) if args.draw is not None else None
            counts += process_video(
                analyzers.video(), args.camera, args, sink, drawing, crops, video_crops(camera), False
            )
    if not args.quiet:
        print(summary(counts, len(items) - len(todo), args.output), file=sys.stderr)
    failed = counts["errors"] + counts["drawing errors"] + counts["damaged videos"] + sum(sink.done.values())
    return 1 if failed else 0


def process(
    analyzers: Analyzers,
    items: list[Source | FolderIssue],
    sink: RecordSink,
    args: argparse.Namespace,
    crops: CropWriter | None = None,
    watched: bool = False,
) -> Counter:
    """Analyse ``items``, one record each in input order (one per analysed frame for a video), images
    ``analyzers.workers`` at a time; counts of images, frames, faces, errors and drawing errors."""
    analyzer = analyzers.images
    counts: Counter = Counter()
    draw = args.draw

    def analyze(item: Source | FolderIssue) -> tuple[Any, list] | None:
        if not isinstance(item, Source) or is_video(item.path):
            return None  # written in turn by this thread
        image = read_image(item.path)
        return image, analyzer.analyze(image)

    done = ordered_map(analyze, items, analyzers.workers)
    for item, analyzed in progress_bar(done, watched and len(items) > 1, len(items)):
        if isinstance(item, Source) and is_video(item.path):
            drawing = drawing_path(draw, item, True) if draw is not None else None
            counts += process_video(
                analyzers.video(), item.path, args, sink, drawing, crops, video_crops(item), watched
            )
            counts["videos"] += 1
            continue
        record = record_for(analyzer, item, draw, crops, analyzed)
        sink.write(record)
        counts["images"] += 1
        counts["faces"] += len(record.get("faces", []))
        counts["errors"] += "error" in record
        counts["drawing errors"] += "draw_error" in record
    return counts


def record_for(
    analyzer: FaceAnalyzer,
    item: Source | FolderIssue,
    draw: Path | None = None,
    crops: CropWriter | None = None,
    analyzed: tuple[Any, list] | Exception | None = None,
) -> dict[str, Any]:
    """The output record of one item of :func:`collect_images`: a folder that could not be searched gets an
    error record; an image is analysed (:func:`analyze_file`; ``analyzed``: already, as ``(image, faces)`` or
    the exception that stopped it), drawn into ``draw`` and cropped (``crops``)."""
    if isinstance(item, FolderIssue):
        return error_record(str(item.path), item.message)
    drawing = drawing_path(draw, item, False) if draw is not None else None
    if crops is None:
        return analyze_file(analyzer, item.path, drawing, analyzed=analyzed)
    group, name = image_crops(item)
    return analyze_file(
        analyzer,
        item.path,
        drawing,
        lambda image, faces, records: crops.write_faces(image, faces, records, group, name),
        analyzed,
    )


def analyze_file(
    analyzer: FaceAnalyzer,
    path: Path,
    drawing: Path | None,
    crop: Any = None,
    analyzed: tuple[Any, list] | Exception | None = None,
) -> dict[str, Any]:
    """One output record: ``{image, width, height, faces}``, or ``{image, error}`` when the image cannot be
    read or analysed (the batch goes on).  With ``drawing``, the annotated image is written there; if that
    fails the record keeps its faces and gets a ``draw_error``.  A ``warning`` says when only the first
    frame of a multi-frame file (GIF, TIFF) was analysed.  ``analyzed``: the image and its faces when they
    were found already (or the exception that stopped that)."""
    try:
        if isinstance(analyzed, Exception):
            raise analyzed
        if analyzed is None:
            image = read_image(path)
            analyzed = image, analyzer.analyze(image)
        image, faces = analyzed
    except Exception as exc:  # a bad image, a bug or a resource problem on one image must not end the batch
        return error_record(str(path), exc)
    record = analyzed_record(str(path), image, faces, frame_count(path))
    if crop is not None:
        crop(image, faces, record["faces"])
    if drawing is not None:
        try:
            write_image(drawing, draw_faces(image, faces))
        except Exception as exc:  # the detections are kept whatever happens to the drawing
            record["draw_error"] = error_text(exc)
    return record


def progress_bar(items: Iterable[Any], enabled: bool, total: int | None = None) -> Any:
    """``items`` wrapped in a tqdm bar on stderr when ``enabled`` (``total``: their number, for an iterator),
    else as they are."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, unit="img", file=sys.stderr, dynamic_ncols=True)
