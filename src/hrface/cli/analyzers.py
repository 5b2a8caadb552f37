"""The analyzers that ``hrface detect`` builds from its model options, and how many images it analyses at once."""

from __future__ import annotations

import argparse

from ..errors import ConfigError, WeightsNotFoundError
from ..runtime import FaceAnalyzer
from ..runtime.detector import Detector
from ..runtime.landmarker import Landmarker
from ..runtime.parallel import usable_cores


def build_analyzer(args: argparse.Namespace, threads: int | None = None) -> FaceAnalyzer:
    """The analyzer of the model options; ``threads`` (None: ``--threads``) intra-op threads per session."""
    run = {"device": args.device, "backend": args.backend, "threads": threads or args.threads}
    options = {
        "threshold": args.threshold,
        "nms_iou": args.nms_iou,
        "max_size": args.max_size,
        "min_face": args.min_face,
    }
    detector = Detector(args.detector, **options, **run)
    landmarker = None
    if args.landmarker.lower() != "none":
        try:
            landmarker = Landmarker(args.landmarker, **run)
        except WeightsNotFoundError as exc:
            raise WeightsNotFoundError(f"{exc}; or run detection only with --landmarker none") from None
    return FaceAnalyzer(detector, landmarker)


def image_workers(args: argparse.Namespace) -> int:
    """Images analysed at once (``--workers``; see its help)."""
    if args.workers is not None:
        if args.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {args.workers}")
        return args.workers
    if args.device != "cpu":
        return 1
    return max(1, usable_cores() // (args.threads or 1))


class Analyzers:
    """The analyzers of one run: for images, sessions of one intra-op thread when several images are analysed
    at once (:mod:`hrface.runtime.parallel`); for videos and cameras, made when the first one comes, sessions
    with ``--threads`` (frames depend on the one before, so they go one at a time)."""

    def __init__(self, args: argparse.Namespace, workers: int) -> None:
        self.args, self.workers = args, workers
        self.images = build_analyzer(args, 1 if workers > 1 and args.threads is None else None)
        self._video = self.images if workers == 1 else None

    def video(self) -> FaceAnalyzer:
        if self._video is None:
            self._video = build_analyzer(self.args)
        return self._video
