"""One request's analysis (bytes → the CLI's per-image record) and the bounded pool that runs it.

**Concurrency.**  One :class:`~hrface.FaceAnalyzer` is shared by all requests: its ONNX Runtime sessions are
thread-safe for ``run()`` (and a PyTorch module in inference mode is read-only), and nothing else in it changes
after loading.  A request's own settings (threshold, max_size, with or without landmarks) go into a shallow copy
of the detector and a new :class:`FaceAnalyzer` around the shared models (:func:`request_analyzer`), so requests
share no mutable state.  Decoding and inference run in a :class:`~concurrent.futures.ThreadPoolExecutor` of
``workers`` threads: at most that many images are decoded or analysed at once, the others wait in its queue.
A request that times out while waiting is taken out of the queue; one that is already running finishes in
its thread (NumPy, OpenCV and ONNX Runtime cannot be interrupted) but its answer, a 503, has already gone.
"""

from __future__ import annotations

import asyncio
import copy
import io
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ..cli.crops import DEFAULT_CROP_SIZES
from ..io.image import decode_image_bytes, frame_count
from ..runtime import FaceAnalyzer
from ..runtime.detector import DEFAULT_MAX_SIZE

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


def request_analyzer(shared: FaceAnalyzer, options: RequestOptions) -> FaceAnalyzer:
    """A :class:`FaceAnalyzer` over the shared models with this request's settings; the shared one is not
    changed (the detector is copied when a setting differs; the copy shares its loaded model)."""
    detector = shared.detector
    if options.threshold is not None or options.max_size != KEEP:
        detector = copy.copy(detector)
        if options.threshold is not None:
            detector.threshold = options.threshold
        if options.max_size == "auto":
            detector.max_size = detector.runner.info.max_size or DEFAULT_MAX_SIZE
        elif options.max_size != KEEP:
            detector.max_size = options.max_size  # type: ignore[assignment]
    return FaceAnalyzer(detector, shared.landmarker if options.landmarks else None)


def safe_name(filename: str | None) -> str | None:
    """An uploaded file's name as it is echoed back: the last path component, control characters removed,
    at most 200 characters; None when there is none."""
    if not filename:
        return None
    name = re.sub(r"[\x00-\x1f\x7f]", "", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:200] or None


def analyze_upload(
    shared: FaceAnalyzer, data: bytes, name: str | None, options: RequestOptions, max_pixels: int
) -> dict[str, Any]:
    """The record of ``hrface detect`` for one uploaded image: ``{"image", "width", "height", "faces"}`` (and
    ``warning`` for a multi-frame file); with ``align``, each face gets its ``align_matrix`` (image → crop).

    Raises :class:`~hrface.errors.ImageLoadError` (one line; ``ImageTooLargeError`` over ``max_pixels``)."""
    image = decode_image_bytes(data, name or "upload", max_pixels=max_pixels)
    faces = request_analyzer(shared, options).analyze(image)
    height, width = image.shape[:2]
    records = [face.to_dict() for face in faces]
    for face, record in zip(faces, records, strict=True):
        if not options.pose:
            record["pose"] = None
        if options.align is not None:
            size = options.crop_size or DEFAULT_CROP_SIZES[options.align]
            _, matrix = face.align(image, size=size, template=options.align)
            record["align_matrix"] = [[round(float(v), 6) for v in row] for row in matrix]
    record = {"image": name, "width": width, "height": height, "faces": records}
    frames = frame_count(io.BytesIO(data))
    if frames > 1:
        record["warning"] = f"the file holds {frames} frames or pages; only the first was analysed"
    return record


class InferencePool:
    """``workers`` threads that decode and analyse; :meth:`run` awaits one job with a deadline."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hrface-infer")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a pool thread.  Cancelling the caller (a timeout) drops the job if it has not
        started; a started one runs to its end in its thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
