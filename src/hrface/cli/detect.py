"""``hrface detect``: run the pipeline over image files and folders, one JSON line per image."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import HrfaceError, WeightsNotFoundError, one_line
from ..io.draw import draw_faces
from ..io.files import IMAGE_EXTENSIONS, iter_image_files
from ..io.image import read_image, write_image
from ..runtime import FaceAnalyzer
from ..runtime.backends import BACKENDS
from ..runtime.detector import DEFAULT_DETECTOR, Detector
from ..runtime.landmarker import DEFAULT_LANDMARKER, Landmarker


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "detect",
        help="detect faces (and landmarks) in images and folders",
        description="Detect faces and landmarks. Writes one JSON line per image; an image that cannot be "
        "processed gets an 'error' line and the run goes on. Exit status: 0 all images processed, "
        "1 some images failed, 2 usage or model error.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (searched recursively)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="detector name or checkpoint path")
    parser.add_argument(
        "--landmarker", default=DEFAULT_LANDMARKER, help="landmark model name or checkpoint path, or 'none'"
    )
    parser.add_argument("--threshold", type=float, default=0.5, help="minimum face score (default 0.5)")
    parser.add_argument("--nms-iou", type=float, default=0.4, help="NMS IoU threshold (default 0.4)")
    add_max_size_argument(parser, "auto")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    add_backend_arguments(parser)
    parser.add_argument("--output", "-o", type=Path, help="write JSON lines to this file (default: standard output)")
    parser.add_argument("--draw", type=Path, metavar="DIR", help="write annotated images into this folder")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar and no summary")
    parser.set_defaults(run=run)


def add_max_size_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """``--max-size PX | auto | none``: the longer image side above which photos are downscaled."""
    parser.add_argument(
        "--max-size",
        type=parse_max_size,
        default=parse_max_size(default),
        metavar="PX|auto|none",
        help="downscale images whose longer side exceeds PX pixels for detection; 'auto': the size the "
        f"detector was trained for if its weights record one, else 1920; 'none': original size (default {default})",
    )


def parse_max_size(text: str) -> int | str | None:
    """'auto' → 'auto', 'none' → None, else a whole number of pixels (at least 32)."""
    if text.lower() in ("auto", "none"):
        return None if text.lower() == "none" else "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels, 'auto' or 'none', got {text!r}") from None
    if value < 32:
        raise argparse.ArgumentTypeError(f"must be at least 32 pixels, got {value}")
    return value


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


def build_analyzer(args: argparse.Namespace) -> FaceAnalyzer:
    run = {"device": args.device, "backend": args.backend, "threads": args.threads}
    detector = Detector(args.detector, threshold=args.threshold, nms_iou=args.nms_iou, max_size=args.max_size, **run)
    landmarker = None
    if args.landmarker.lower() != "none":
        try:
            landmarker = Landmarker(args.landmarker, **run)
        except WeightsNotFoundError as exc:
            raise WeightsNotFoundError(f"{exc}; or run detection only with --landmarker none") from None
    return FaceAnalyzer(detector, landmarker)


def run(args: argparse.Namespace) -> int:
    analyzer = build_analyzer(args)
    sources = list(collect_images(args.inputs))
    # A bar on stderr only when a person watches: stderr is a terminal and the JSON lines are not piped.
    output_piped = args.output is None and not sys.stdout.isatty()
    show_progress = not args.quiet and len(sources) > 1 and sys.stderr.isatty() and not output_piped
    counts = {"images": 0, "faces": 0, "errors": 0}
    with _jsonl_sink(args.output) as sink:
        for path, root in progress_bar(sources, show_progress):
            record = analyze_file(analyzer, path, root, args.draw)
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            counts["images"] += 1
            counts["faces"] += len(record.get("faces", []))
            counts["errors"] += "error" in record
    if not args.quiet:
        where = f" -> {args.output}" if args.output else ""
        print(
            f"hrface: {counts['images']} images, {counts['faces']} faces, {counts['errors']} errors{where}",
            file=sys.stderr,
        )
    return 1 if counts["errors"] else 0


def collect_images(inputs: list[str]) -> Iterator[tuple[Path, Path | None]]:
    """(image path, folder it was found under or None for a file given directly)."""
    for item in inputs:
        folder = Path(item)
        if folder.is_dir():
            for path in iter_image_files([folder]):
                yield path, folder
        else:
            yield folder, None


def analyze_file(analyzer: FaceAnalyzer, path: Path, root: Path | None, draw_dir: Path | None) -> dict[str, Any]:
    """One output record: ``{image, width, height, faces}``, or ``{image, error}`` when the image cannot be
    read or analysed (the batch goes on). With ``draw_dir``, the annotated image is written there."""
    try:
        image = read_image(path)
        faces = analyzer.analyze(image)
        if draw_dir is not None:
            write_image(_drawing_path(draw_dir, path, root), draw_faces(image, faces))
    except HrfaceError as exc:
        return {"image": str(path), "error": str(exc)}
    except Exception as exc:  # a bug or resource problem on one image must not end the batch
        return {"image": str(path), "error": f"{type(exc).__name__}: {one_line(exc, 1000)}"}
    height, width = image.shape[:2]
    return {"image": str(path), "width": width, "height": height, "faces": [face.to_dict() for face in faces]}


def _drawing_path(draw_dir: Path, path: Path, root: Path | None) -> Path:
    """Annotated image path: the input's path relative to its folder (or its name), same format if writable."""
    relative = path.relative_to(root) if root is not None else Path(path.name)
    suffix = relative.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS or suffix in {".gif", ".pgm", ".pbm"}:
        relative = relative.with_suffix(relative.suffix + ".png")
    return draw_dir / relative


def progress_bar(items: list[tuple[Path, Path | None]], enabled: bool) -> Any:
    """``items`` wrapped in a tqdm bar on stderr when ``enabled``, else as they are."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, unit="img", file=sys.stderr, dynamic_ncols=True)


class _jsonl_sink:
    """Standard output, or a file written as ``NAME.partial`` and renamed into place when the run ends.

    Lines are flushed as they are written, so an interrupted run leaves its results in the ``.partial``
    file; the final name only ever holds a complete output.
    """

    def __init__(self, output: Path | None) -> None:
        self.output = output
        self._file: IO[str] | None = None
        self._tmp: str | None = None

    def __enter__(self) -> IO[str]:
        if self.output is None:
            return sys.stdout
        self.output.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=self.output.name + ".", suffix=".partial", dir=self.output.parent)
        self._file = os.fdopen(fd, "w", encoding="utf-8")
        return self._file

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if self._file is None or self._tmp is None:
            return
        self._file.close()
        if exc_type is None:
            os.replace(self._tmp, self.output)
