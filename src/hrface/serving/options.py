"""What the server runs (models and their settings) and its limits; no web framework needed here."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io.image import max_pixels_limit
from ..models.registry import MODELS, list_models, weights_path
from ..runtime import FaceAnalyzer
from ..runtime.detector import DEFAULT_DETECTOR
from ..runtime.landmarker import DEFAULT_LANDMARKER

DEFAULT_MAX_SIZE_CAP = 1920
"""The largest detector input side (px) a request may ask for: twice the shipped detector's 960 px (past which
the detector warns that false faces are likely); a 12000-px square at full size took 9 GB."""
DEFAULT_MIN_THRESHOLD = 0.3
"""The lowest face score a request may ask for: at 0 every prior is a face (735 on breakingbad.jpg)."""
DEFAULT_MAX_FACES = 100
"""Faces per image that get landmarks and are returned (the best by score)."""


@dataclass(frozen=True)
class ServeOptions:
    """The models the server loads once at startup, with the defaults of every request.

    ``landmarker`` None: detection only.  The other fields are those of :class:`~hrface.FaceAnalyzer`.
    """

    detector: str = DEFAULT_DETECTOR
    landmarker: str | None = DEFAULT_LANDMARKER
    threshold: float | str = "auto"
    nms_iou: float = 0.4
    max_size: int | str | None = "auto"
    device: str = "cpu"
    backend: str = "auto"
    threads: int | None = None
    min_face: float = 0.0

    def build(self) -> FaceAnalyzer:
        """Load the models (one-line :class:`~hrface.errors.HrfaceError` when they cannot be)."""
        return FaceAnalyzer(
            self.detector,
            self.landmarker,
            threshold=self.threshold,
            nms_iou=self.nms_iou,
            max_size=self.max_size,
            min_face=self.min_face,
            device=self.device,
            backend=self.backend,
            threads=self.threads,
        )

    def model_names(self) -> dict[str, str | None]:
        return {"detector": self.detector, "landmarker": self.landmarker}


@dataclass(frozen=True)
class Limits:
    """Per-server limits.

    Attributes:
        max_upload_mb: the largest accepted upload (MiB; the request body of a raw upload, the ``image`` part
            of a multipart one).
        timeout_s: every ``/v1/detect`` request is answered within this time (503 past it).
        workers: inference threads (requests analysed at once); more wait in a queue.
        max_queue: requests accepted at once (analysed or waiting); more are answered 503 at once.
        max_pixels: the pixel cap of a decoded image (None: ``$HRFACE_MAX_PIXELS`` or the default).
        max_size_cap: the largest detector input side (px): a request's ``max_size`` (``none``, ``auto`` or
            pixels) above it is lowered to it, as is the server's own.
        min_threshold: the lowest face score: a request's ``threshold`` below it is raised to it.
        max_faces: at most this many faces per image (the best by score) get landmarks and are returned.
        A request that hits one of these says so in its record (``capped``).
    """

    max_upload_mb: float = 20.0
    timeout_s: float = 30.0
    workers: int = 1
    max_queue: int = 32
    max_pixels: int | None = None
    max_size_cap: int = DEFAULT_MAX_SIZE_CAP
    min_threshold: float = DEFAULT_MIN_THRESHOLD
    max_faces: int = DEFAULT_MAX_FACES

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0:
            raise ConfigError(f"max_upload_mb must be positive, got {self.max_upload_mb}")
        if not self.timeout_s > 0:
            raise ConfigError(f"timeout_s must be positive, got {self.timeout_s}")
        if not _whole(self.workers, 1):
            raise ConfigError(f"workers must be a whole number of at least 1, got {self.workers!r}")
        if self.max_queue < self.workers:
            raise ConfigError(f"max_queue ({self.max_queue}) must be at least workers ({self.workers})")
        if not _whole(self.max_size_cap, 32):
            raise ConfigError(f"max_size_cap must be a whole number of at least 32 pixels, got {self.max_size_cap!r}")
        if not (isinstance(self.min_threshold, (int, float)) and 0.0 <= self.min_threshold <= 1.0):
            raise ConfigError(f"min_threshold must be in [0, 1], got {self.min_threshold!r}")
        if not _whole(self.max_faces, 1):
            raise ConfigError(f"max_faces must be a whole number of at least 1, got {self.max_faces!r}")
        object.__setattr__(self, "max_pixels", max_pixels_limit(self.max_pixels))  # a bad env var fails here

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _whole(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def default_threads(workers: int, threads: int | None) -> int | None:
    """Intra-op threads per model run: as given, else the cores shared out between ``workers`` threads
    (None, the backend's default, for one worker), so that N concurrent runs do not oversubscribe the CPU."""
    if threads is not None or workers <= 1:
        return threads
    return max(1, (os.cpu_count() or 1) // workers)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_loaded(model: Any, name: str | None) -> dict[str, Any] | None:
    """What ``/v1/models`` says of a loaded Detector or Landmarker: its name (a registry name or the path it was
    loaded from, None when unknown), its sha256 (the registry's, or the file's) and its settings."""
    if model is None:
        return None
    info: dict[str, Any] = {"name": name, "sha256": None, "backend": model.backend, "device": str(model.device)}
    if name in MODELS:
        info["sha256"] = MODELS[name].sha256
    elif name is not None and Path(name).is_file():
        info["sha256"] = _sha256(Path(name))
    for key in ("threshold", "nms_iou", "min_face", "max_size", "num_landmarks", "input_size"):
        if hasattr(model, key):
            info[key] = getattr(model, key)
    return info


def registry_models() -> list[dict[str, Any]]:
    """The known model names (:data:`hrface.models.registry.MODELS`) with their hashes and whether present."""
    return [
        {
            "name": m.name,
            "task": m.task,
            "file": m.filename,
            "sha256": m.sha256,
            "packaged": m.packaged,
            "present": weights_path(m).is_file(),
            "description": m.description,
        }
        for m in list_models()
    ]
