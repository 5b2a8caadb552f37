"""Training / validation images of a detector config: annotation sources and the photo split."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...data.detection import DetectionSample, detection_samples_from_landmarks, read_retinaface_labels
from ...errors import ConfigError
from ...io.files import walk_images
from ..landmarks import SAMPLE_READERS, build_samples, read_source
from ..landmarks.config import DataConfig, LandmarkTrainConfig
from ..yaml_config import SourceSpec
from .config import DetectionDataConfig, DetectionTrainConfig
from .teacher import with_teacher_targets

DetectionReader = Callable[[SourceSpec], list[DetectionSample]]

DETECTION_READERS: dict[str, DetectionReader] = {
    "retinaface": lambda spec: read_retinaface_labels(spec.path, spec.image_root, **spec.options),
}
"""Source ``format`` → reader of detection samples; the landmark formats of
:data:`~hrface.training.landmarks.SAMPLE_READERS` are read by those readers and converted."""


def read_detection_source(spec: SourceSpec) -> list[DetectionSample]:
    """The images of one source (one :class:`DetectionSample` per photo); :class:`ConfigError` for an
    unknown format or bad options."""
    _check_format(spec)
    if spec.format in DETECTION_READERS:
        try:
            return DETECTION_READERS[spec.format](spec)
        except TypeError as exc:
            raise ConfigError(f"source {spec.path}: bad options {spec.options} ({exc})") from None
    return detection_samples_from_landmarks(read_source(spec))


def _check_format(spec: SourceSpec) -> None:
    known = {*DETECTION_READERS, *SAMPLE_READERS}
    if spec.format not in known:
        raise ConfigError(f"unknown source format {spec.format!r}; known formats: {', '.join(sorted(known))}")


def build_detection_samples(config: DetectionTrainConfig) -> tuple[list[DetectionSample], list[DetectionSample]]:
    """``(train, val)`` images of ``config.data`` (rules in :class:`~.config.DetectionDataConfig`), the
    teacher's extra faces added to the training images when ``data.teacher`` is set."""
    train, val = annotated_samples(config.data)
    data = config.data
    if data.teacher:
        train, report = with_teacher_targets(
            train, data.teacher, data.teacher_threshold, data.teacher_match_iou, data.teacher_cache
        )
        print(report.describe())
    negatives = face_free_samples(data.negatives)
    if negatives:
        print(f"hard negatives: {len(negatives)} face-free images x {data.negative_repeat}")
    return train + negatives * data.negative_repeat, val


def face_free_samples(folders: list[str]) -> list[DetectionSample]:
    """One sample without faces per image file in ``folders`` (recursive, sorted); :class:`ConfigError` for a
    folder that is missing or holds no image."""
    samples = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise ConfigError(f"data.negatives: {folder} is not a folder; make it with 'hrface mine-negatives'")
        found = [DetectionSample(str(path), np.zeros((0, 4))) for path in walk_images(folder) if isinstance(path, Path)]
        if not found:
            raise ConfigError(f"data.negatives: {folder} holds no image")
        samples += found
    return samples


def annotated_samples(data: DetectionDataConfig) -> tuple[list[DetectionSample], list[DetectionSample]]:
    """``(train, val)`` images of ``data`` with their annotated faces only (no teacher faces, no negatives)."""
    if not data.train:
        raise ConfigError("data.train lists no sample sources")
    for spec in (*data.train, *data.val):
        _check_format(spec)
    if data.val:
        train = [s for spec in data.train for s in read_detection_source(spec)]
        return train, [s for spec in data.val for s in read_detection_source(spec)]
    landmark_specs = [spec for spec in data.train if spec.format not in DETECTION_READERS]
    train, val = _split_landmark_sources(landmark_specs, data) if landmark_specs else ([], [])
    for spec in data.train:
        if spec.format in DETECTION_READERS:
            train += read_detection_source(spec)
    return train, val


def _split_landmark_sources(
    specs: list[SourceSpec], data: DetectionDataConfig
) -> tuple[list[DetectionSample], list[DetectionSample]]:
    # The landmark trainer's own split (same split file, fraction and seed → same held-out photos).
    landmark_data = DataConfig(
        train=specs, split_file=data.split_file, val_fraction=data.val_fraction, split_seed=data.split_seed
    )
    train, val = build_samples(LandmarkTrainConfig(data=landmark_data))
    return detection_samples_from_landmarks(train), detection_samples_from_landmarks(val)
