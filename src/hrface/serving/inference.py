"""One request's analysis (bytes → the per-image record, :mod:`hrface.io.records`), its caps and deadline, the pool.

**Concurrency.**  One :class:`~hrface.FaceAnalyzer` is shared by all requests: its ONNX Runtime sessions are
thread-safe for ``run()`` (and a PyTorch module in inference mode is read-only), and nothing else in it changes
after loading.  A request's own settings (threshold, max_size) go into a shallow copy of the detector that
shares its loaded model (:func:`request_detector`), so requests share no mutable state.  Decoding and inference
run in a :class:`~concurrent.futures.ThreadPoolExecutor` of ``workers`` threads: at most that many images are
decoded or analysed at once, the others wait in its queue; a request that times out while waiting is taken out.

**Bounded work.**  Whatever a request asks, the detector's input side is at most ``max_size_cap``, its score
threshold at least ``min_threshold``, and at most ``max_faces`` faces (the best by score) get landmarks and are
returned (:class:`~hrface.serving.options.Limits`); the record's ``capped`` says which caps applied.  The
analysis runs in stages (decoding, detection, landmarks ``batch_size`` faces at a time, pose and alignment) and
checks the request's :class:`Deadline` before each one: a request that has timed out (its 503 already sent)
stops at the next stage, so its worker is free again within one stage: one detector pass at the size cap or
one landmark batch (a stage itself cannot be interrupted: NumPy, OpenCV and ONNX Runtime do not stop midway).
"""

from __future__ import annotations

import asyncio
import copy
import io
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from ..errors import ImageLoadError, ImageTooLargeError
from ..geometry.align import DEFAULT_CROP_SIZES, arcface_template, ffhq_matrix, similarity_transform
from ..geometry.pose import face_pose
from ..io.image import decode_image_bytes, frame_count
from ..io.records import analyzed_record, matrix_value
from ..runtime import FaceAnalyzer
from ..runtime.detector import DEFAULT_MAX_SIZE, Detector
from ..runtime.faces import Face
from ..runtime.landmarker import Landmarker
from .memory import TRIM_PIXELS, trim
from .options import Limits

T = TypeVar("T")
KEEP = "keep"
"""A :class:`RequestOptions` value meaning "the server's default"."""


@dataclass(frozen=True)
class RequestOptions:
    """The query options of ``POST /v1/detect``; ``threshold`` None and ``max_size`` :data:`KEEP` keep the
    server's settings, ``max_size`` ``"auto"`` is the detector's own size and None the original size."""

    threshold: float | None = None
    landmarks: bool = True
    max_size: int | str | None = KEEP
    pose: bool = True
    align: str | None = None
    crop_size: int | None = None


class Expired(Exception):
    """A request's time ran out (or it was given up) before a stage of its analysis: the stage is not run."""


class Deadline:
    """When a request's analysis must stop: ``seconds`` from now, or as soon as :meth:`cancel` is called."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def check(self, stage: str) -> None:
        """Raise :class:`Expired` (naming ``stage``, the one not run) if the time is up."""
        if self.cancelled or time.monotonic() >= self.end:
            raise Expired(f"the request's time ran out before {stage}")


def request_detector(shared: Detector, options: RequestOptions, limits: Limits) -> tuple[Detector, dict[str, Any]]:
    """The detector with this request's threshold and max_size, within ``limits`` (a copy sharing the loaded
    model when a setting differs; ``shared`` is not changed), and the caps that applied:
    ``{"threshold" | "max_size": {"asked": ..., "used": ...}}``."""
    threshold = shared.threshold if options.threshold is None else float(options.threshold)
    if options.max_size == KEEP:
        max_size = shared.max_size
    elif options.max_size == "auto":
        max_size = shared.runner.info.max_size or DEFAULT_MAX_SIZE
    else:
        max_size = options.max_size  # type: ignore[assignment]
    capped: dict[str, Any] = {}
    if threshold < limits.min_threshold:
        capped["threshold"] = {"asked": threshold, "used": limits.min_threshold}
        threshold = limits.min_threshold
    if max_size is None or max_size > limits.max_size_cap:
        asked = "auto" if options.max_size == "auto" else "none" if max_size is None else max_size
        capped["max_size"] = {"asked": asked, "used": limits.max_size_cap}
        max_size = limits.max_size_cap
    if threshold == shared.threshold and max_size == shared.max_size:
        return shared, capped
    detector = copy.copy(shared)
    detector.threshold, detector.max_size = threshold, max_size
    return detector, capped


def best_faces(faces: list[Face], count: int) -> list[Face]:
    """The ``count`` faces of highest score, in their order."""
    if len(faces) <= count:
        return faces
    keep = np.sort(np.argsort([-face.score for face in faces], kind="stable")[:count])
    return [faces[i] for i in keep]


def add_landmarks(image: np.ndarray, faces: list[Face], landmarker: Landmarker, deadline: Deadline) -> None:
    """Landmarks and their scores of ``faces``, ``landmarker.batch_size`` faces per stage (the deadline is
    checked before each; the batches are those of :meth:`FaceAnalyzer.analyze`, so the values are the same)."""
    step = landmarker.batch_size
    for start in range(0, len(faces), step):
        deadline.check("landmarks")
        batch = faces[start : start + step]
        boxes = np.stack([face.box for face in batch])
        points, scores = landmarker.predict(image, boxes, np.stack([face.keypoints for face in batch]))
        for face, face_points, face_scores in zip(batch, points, scores, strict=True):
            face.landmarks, face.landmark_scores = face_points, face_scores


def align_matrix(face: Face, template: str, size: int) -> list[list[float]]:
    """The (2, 3) image → crop matrix of :meth:`Face.align` (without cutting the crop)."""
    points = face.five_points
    if template == "arcface":
        matrix = similarity_transform(points, arcface_template(size))
    else:
        matrix = ffhq_matrix(points, size)
    return matrix_value(matrix)


def safe_name(filename: str | None) -> str | None:
    """An uploaded file's name as it is echoed back: the last path component, control characters removed,
    at most 200 characters; None when there is none."""
    if not filename:
        return None
    name = re.sub(r"[\x00-\x1f\x7f]", "", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:200] or None


def analyze_upload(
    shared: FaceAnalyzer,
    data: bytes,
    name: str | None,
    options: RequestOptions,
    limits: Limits,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """The record of ``hrface detect`` for one uploaded image: ``{"image", "width", "height", "faces"}``, with
    ``warning`` for a multi-frame file and ``capped`` when a cap of ``limits`` applied; with ``align``, each
    face gets its ``align_matrix`` (image → crop).  After a large image the freed memory is handed back
    (:func:`~hrface.serving.memory.trim`).

    Raises :class:`~hrface.errors.ImageLoadError` (one line; ``ImageTooLargeError`` over the pixel cap) and
    :class:`Expired` when ``deadline`` passes between two stages."""
    try:
        image = decode_image_bytes(data, name or "upload", max_pixels=limits.max_pixels)
    except ImageTooLargeError:  # refused from its header: nothing was decoded
        raise
    except ImageLoadError:  # a corrupt or truncated file may have been decoded in part
        trim()
        raise
    pixels = image.shape[0] * image.shape[1]
    try:
        return analyze_image(shared, image, data, name, options, limits, deadline or Deadline(limits.timeout_s))
    finally:
        del image
        if pixels >= TRIM_PIXELS:
            trim()


def analyze_image(
    shared: FaceAnalyzer,
    image: np.ndarray,
    data: bytes,
    name: str | None,
    options: RequestOptions,
    limits: Limits,
    deadline: Deadline,
) -> dict[str, Any]:
    """:func:`analyze_upload` after decoding: ``image`` (BGR) decoded from the file ``data``."""
    detector, capped = request_detector(shared.detector, options, limits)
    deadline.check("detection")
    faces = detector.detect(image).to_faces()
    if len(faces) > limits.max_faces:
        capped["faces"] = {"found": len(faces), "kept": limits.max_faces}
        faces = best_faces(faces, limits.max_faces)
    if options.landmarks and shared.landmarker is not None and faces:
        add_landmarks(image, faces, shared.landmarker, deadline)
    deadline.check("pose and alignment")
    if options.pose:
        height, width = image.shape[:2]
        for face in faces:
            face.pose = face_pose(face.landmarks, face.keypoints, (width, height))
    result = analyzed_record(name, image, faces, frame_count(io.BytesIO(data)))
    if options.align is not None:
        size = options.crop_size or DEFAULT_CROP_SIZES[options.align]
        for face, record in zip(faces, result["faces"], strict=True):
            record["align_matrix"] = align_matrix(face, options.align, size)
    if capped:
        result["capped"] = capped
    return result


class InferencePool:
    """``workers`` threads that decode and analyse; :meth:`run` awaits one job; :attr:`running` counts the jobs
    running now (a timed-out request's job counts until it stops at its next stage)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hrface-infer")
        self.running = 0
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a pool thread.  Cancelling the caller (a timeout) drops the job if it has not
        started; a started one runs until it returns (give it a :class:`Deadline` to make that soon)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._counted, fn, args)

    def _counted(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        with self._lock:
            self.running += 1
        try:
            return fn(*args)
        finally:
            with self._lock:
                self.running -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
