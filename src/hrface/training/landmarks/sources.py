"""Training / validation samples of a config: annotation sources, photo split and detector boxes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ...data.landmarks import (
    export_cofw,
    read_300w_folder,
    read_hrnet_csv,
    read_wflw_list,
)
from ...data.landmarks.detector_boxes import DetectorBoxReport, attach_detector_boxes, detections_of
from ...data.landmarks.samples import LandmarkSample
from ...data.landmarks.split import load_split, save_split, split_by_photo
from ...errors import ConfigError
from ...geometry.pose import face_pose
from ...io.files import atomic_write_text
from ...io.image import image_size
from ...landmarks.layouts import get_layout
from .config import DataConfig, LandmarkTrainConfig, SourceSpec

SampleReader = Callable[[SourceSpec], list[LandmarkSample]]


def _image_root(spec: SourceSpec) -> str:
    return spec.image_root or str(Path(spec.path).parent)


SAMPLE_READERS: dict[str, SampleReader] = {
    "300w": lambda spec: read_300w_folder(spec.path, **spec.options),
    "csv": lambda spec: read_hrnet_csv(spec.path, _image_root(spec), **spec.options),
    "wflw": lambda spec: read_wflw_list(spec.path, _image_root(spec), **spec.options),
    "cofw": lambda spec: export_cofw(spec.path, **spec.options),
}
"""Source ``format`` → reader. ``options`` of the source are passed to the reader as keywords
(e.g. ``{one_based: true}``; COFW needs ``{split: train, out_dir: …}``)."""


def read_source(spec: SourceSpec) -> list[LandmarkSample]:
    """The samples of one source; :class:`ConfigError` for an unknown format or bad options."""
    try:
        reader = SAMPLE_READERS[spec.format]
    except KeyError:
        known = ", ".join(sorted(SAMPLE_READERS))
        raise ConfigError(f"unknown source format {spec.format!r}; known formats: {known}") from None
    try:
        return reader(spec)
    except TypeError as exc:
        raise ConfigError(f"source {spec.path}: bad options {spec.options} ({exc})") from None


def build_samples(config: LandmarkTrainConfig) -> tuple[list[LandmarkSample], list[LandmarkSample]]:
    """``(train, val)`` samples of ``config.data`` (see :class:`~.config.DataConfig` for the rules), or of
    the face pack ``config.pack`` when set (:mod:`.pack`: its faces, crop boxes and split)."""
    if config.pack:
        from .pack import read_pack

        return read_pack(config.pack)
    data = config.data
    if not data.train:
        raise ConfigError("data.train lists no sample sources")
    train = [s for spec in data.train for s in read_source(spec)]
    if data.val:
        val = [s for spec in data.val for s in read_source(spec)]
    elif data.split_file and Path(data.split_file).is_file():
        train, val = load_split(data.split_file).apply(train)
    else:
        train, val = split_by_photo(train, data.val_fraction, data.split_seed)
        if data.split_file:
            save_split(data.split_file, train, val)
    if data.detector:
        train, val = with_detector_boxes(train, val, data.detector, data.detector_threshold, data.box_cache)
    return train, val


def oversample(samples: list[LandmarkSample], data: DataConfig) -> list[LandmarkSample]:
    """The training faces of one epoch: ``samples`` repeated by subset (``data.repeat``) and by head yaw
    (``data.yaw_repeat``: ``{degrees: count}``, a face whose annotated ``|yaw|`` is at least ``degrees`` is
    listed ``count`` times, the largest such threshold counting; multiplied with the subset's repeat)."""
    repeated = repeat_subsets(samples, data.repeat)
    if not data.yaw_repeat:
        return repeated
    for degrees, count in data.yaw_repeat.items():
        if not isinstance(count, int) or isinstance(count, bool) or count < 1 or not 0 <= float(degrees) <= 90:
            raise ConfigError(f"data.yaw_repeat: {degrees}: {count!r} must be degrees in [0, 90]: a positive integer")
    steps = sorted((float(d), c) for d, c in data.yaw_repeat.items())
    out: list[LandmarkSample] = []
    yaws: dict[str, float] = {}
    for sample in repeated:
        key = _key(sample)
        if key not in yaws:
            layout = get_layout(len(sample.points))
            pose = face_pose(sample.points, layout.five_points(sample.points), image_size(sample.image))
            yaws[key] = abs(pose.yaw) if pose is not None else 0.0
        count = max([c for d, c in steps if yaws[key] >= d], default=1)
        out.extend([sample] * count)
    return out


def repeat_subsets(samples: list[LandmarkSample], repeat: dict[str, int]) -> list[LandmarkSample]:
    """``samples`` with each face of subset ``name`` listed ``repeat[name]`` times (oversampling for
    training); :class:`ConfigError` for a subset no sample has or a count that is not a positive integer."""
    present = {s.subset for s in samples}
    for name, count in repeat.items():
        if name not in present:
            raise ConfigError(f"data.repeat: no training face has subset {name!r}; subsets: {sorted(present)}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigError(f"data.repeat.{name} must be a positive integer, got {count!r}")
    return [s for s in samples for _ in range(repeat.get(s.subset, 1))]


def _key(sample: LandmarkSample) -> str:
    # A face is identified by its image and its annotated points (several faces share an image).
    return f"{sample.image}|{np.round(sample.points[:3], 2).ravel().tolist()}"


def with_detector_boxes(
    train: list[LandmarkSample],
    val: list[LandmarkSample],
    detector: str,
    threshold: float = 0.3,
    cache: str | None = None,
) -> tuple[list[LandmarkSample], list[LandmarkSample]]:
    """Replace each sample's box by its matched detector box (fallback box for misses), reading and
    writing the ``cache`` JSON so that the detector runs only once per data set and detector."""
    samples = [*train, *val]
    cached: dict[str, list[float]] = {}
    if cache and Path(cache).is_file():
        stored = json.loads(Path(cache).read_text())
        if stored.get("detector") == detector:
            cached = stored["boxes"]
    if all(_key(s) in cached for s in samples):
        boxed = [s.with_box(np.asarray(cached[_key(s)])) for s in samples]
    else:
        from ...runtime.detector import Detector

        boxed, report = attach_detector_boxes(samples, detections_of(Detector(detector, threshold=threshold)))
        print(f"detector boxes: {describe(report)}")
        if cache:
            boxes = {_key(s): s.box.tolist() for s in boxed}
            atomic_write_text(cache, json.dumps({"detector": detector, "boxes": boxes, **report_dict(report)}))
    return boxed[: len(train)], boxed[len(train) :]


def report_dict(report: DetectorBoxReport) -> dict[str, object]:
    return {"faces": report.faces, "matched": report.matched, "fallback": vars(report.fallback)}


def describe(report: DetectorBoxReport) -> str:
    f = report.fallback
    return (
        f"{report.matched}/{report.faces} faces matched a detection; {report.missed} use the fallback box "
        f"(centre +{f.dx:.3f}w, {f.dy:+.3f}h; size {f.sx:.3f}w × {f.sy:.3f}h of the landmark box)"
    )
