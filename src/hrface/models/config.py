"""One configuration per model: everything hrface knows about a model besides its weights.

In the spirit of timm's ``PretrainedCfg``: a frozen :class:`ModelConfig` holds a model's architecture (kind and
options: backbone; width, number of points and their layout), its input convention (input size, mean / std,
crop enlargement), its output convention (heatmap size and Gaussian σ), the settings it was made for (training
size, default photo size, score threshold, point-score calibration), where its file comes from, its licence, its
provenance and its measured metrics, each with the date and the command that measured it.

A config travels with the weights as string metadata (:meth:`ModelConfig.metadata`): ``hrface.*`` entries of an
ONNX file (:mod:`hrface.export`), plain entries of a ``.safetensors`` file (the trainers, ``pack-weights``).  It
is read back with :meth:`ModelConfig.from_metadata` by :func:`hrface.models.registry.create_model`, by the
runtime's ONNX Runtime and OpenVINO runners and by the exporter.  The named models are a table of configs
(:data:`hrface.models.registry.MODELS`).

Metadata keys (values are strings):

================== ============ =======================================================================
key                models       value
================== ============ =======================================================================
kind / arch        all          'retinaface' or 'hrnet' (``kind`` in ONNX files, ``arch`` in checkpoints)
options            all          the architecture options as JSON (ONNX files; checkpoints have ``backbone``,
                                or ``width`` and ``num_landmarks``, as separate keys)
num_landmarks      hrnet        K, the number of points (ONNX files)
input_size         hrnet        crop side in pixels; the heatmaps are a quarter of it
sigma              hrnet        Gaussian σ of the training heatmaps, in heatmap pixels (DARK decoding uses it)
enlarge            hrnet        crop side as a multiple of the face box's longer side
point_calibration  hrnet        ``"a,b"``: heatmap peak → point score, :mod:`hrface.landmarks.confidence`
max_size           retinaface   the longer photo side (pixels) the detector is made for
train_size         retinaface   the side (pixels) of its square training inputs
score_threshold    retinaface   its recommended minimum face score, in (0, 1)
mean, std          all          ``"a,b,c"``: subtracted from / dividing the input channels (below)
name, description, licence, provenance, card, metrics (JSON)   what the model is and how it was made
================== ============ =======================================================================

Input conventions: a detector takes BGR pixels in 0–255 minus ``mean`` (``std`` 1); a landmark model takes RGB
in [0, 1], minus ``mean``, divided by ``std``.  A file written before a key existed reads as the architecture's
default for it (:data:`DETECTOR_MEAN`, :data:`LANDMARK_MEAN`, :func:`heatmap_sigma`, ``DEFAULT_ENLARGE``), which
is what the runtime used for every model then.  Nothing here needs torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import ConfigError
from ..landmarks.crop import DEFAULT_CROP_SIZE, DEFAULT_ENLARGE
from ..landmarks.layouts import LAYOUTS
from .arch import ArchSpec

DETECTOR_MEAN = (104.0, 117.0, 123.0)
"""Subtracted from the BGR pixels (0–255) a RetinaFace sees, as in the reference training."""
DETECTOR_STD = (1.0, 1.0, 1.0)
LANDMARK_MEAN = (0.485, 0.456, 0.406)
"""ImageNet statistics, applied to RGB in [0, 1] as in the reference HRNet face-landmark system."""
LANDMARK_STD = (0.229, 0.224, 0.225)

TASKS = {"retinaface": "detector", "hrnet": "landmarker"}


def heatmap_sigma(num_landmarks: int) -> float:
    """The Gaussian σ (heatmap pixels) of a landmark model that records none: 1.0 for 68 points, 1.5 for the
    other layouts (the reference recipes).  A trained model records its own (``sigma`` metadata)."""
    return 1.0 if num_landmarks == 68 else 1.5


@dataclass(frozen=True)
class Measurement:
    """A measured figure of a model: ``value`` ``unit`` of ``metric``, measured on ``date`` (ISO; empty for a
    figure its publisher reports) by ``command``, run from the repository root, where ``$HRFACE_SHARED`` is the
    project's data folder (``../shared`` beside a clone, as in ``scripts/compare_installs.sh``)."""

    metric: str
    value: float
    unit: str
    date: str
    command: str

    def __str__(self) -> str:
        when = self.date or "as published"
        return f"{self.metric}: {self.value:g} {self.unit} ({when}; {self.command})"


@dataclass(frozen=True)
class ModelConfig:
    """Everything hrface knows about one model besides its weights (module doc).

    Attributes:
        arch: the architecture (``kind`` and options: ``backbone``; ``width``, ``num_landmarks``).
        name: the registry name ('' for a checkpoint that has none); description: one line, what it is.
        input_size: a landmark model's crop side in pixels (default 256, the reference's); None for a detector.
        sigma: a landmark model's heatmap Gaussian σ in heatmap pixels (default :func:`heatmap_sigma`).
        enlarge: a landmark model's crop side as a multiple of the face box's longer side (default 1.25).
        mean, std: the input normalisation (module doc; default by kind).
        max_size, train_size, score_threshold: what a detector was made for (None: the runtime's defaults).
        point_calibration: a landmark model's ``(a, b)`` of ``sigmoid(a · peak + b)`` (None: the clipped peak).
        filename, sha256, packaged, source: its weight file, that file's hash, whether it ships in the package
            (else it is expected in ``$HRFACE_HOME``), and where to get it.
        float_model: for an INT8 graph, the name of its float32 original (which PyTorch runs).
        licence, provenance, card: the weights' terms of use, how they were made, their model card.
        metrics: measured figures, each with its date and command.
    """

    arch: ArchSpec
    name: str = ""
    description: str = ""
    input_size: int | None = None
    sigma: float | None = None
    enlarge: float | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    max_size: int | None = None
    train_size: int | None = None
    score_threshold: float | None = None
    point_calibration: tuple[float, float] | None = None
    filename: str = ""
    sha256: str | None = None
    packaged: bool = False
    source: str = ""
    float_model: str | None = None
    licence: str = ""
    provenance: str = ""
    card: str | None = None
    metrics: tuple[Measurement, ...] = field(default=())

    def __post_init__(self) -> None:
        kind = self.arch.kind
        if kind not in TASKS:
            raise ConfigError(f"unknown architecture kind {kind!r}; expected one of {', '.join(TASKS)}")
        landmarks = kind == "hrnet"
        defaults = {
            "mean": LANDMARK_MEAN if landmarks else DETECTOR_MEAN,
            "std": LANDMARK_STD if landmarks else DETECTOR_STD,
        }
        if landmarks:
            defaults |= {
                "input_size": DEFAULT_CROP_SIZE,
                "sigma": heatmap_sigma(int(self.arch.options.get("num_landmarks", 0))),
                "enlarge": DEFAULT_ENLARGE,
            }
        for key, value in defaults.items():
            if getattr(self, key) is None:
                object.__setattr__(self, key, value)

    @property
    def kind(self) -> str:
        """'retinaface' or 'hrnet'."""
        return self.arch.kind

    @property
    def task(self) -> str:
        """'detector' or 'landmarker'."""
        return TASKS[self.arch.kind]

    @property
    def options(self) -> dict[str, Any]:
        """The architecture options."""
        return self.arch.options

    @property
    def num_landmarks(self) -> int | None:
        """K, the number of points of a landmark model (None for a detector)."""
        k = self.arch.options.get("num_landmarks")
        return int(k) if k is not None else None

    @property
    def layout(self) -> str | None:
        """The name of a landmark model's point layout (:mod:`hrface.landmarks.layouts`), None when unknown."""
        layout = LAYOUTS.get(self.num_landmarks or 0)
        return layout.name if layout is not None else None

    @property
    def heatmap_size(self) -> int | None:
        """A landmark model's heatmap side (a quarter of the crop side); None for a detector."""
        return self.input_size // 4 if self.input_size is not None and self.kind == "hrnet" else None

    def metadata(self, onnx: bool = False) -> dict[str, str]:
        """The config as string metadata (module doc): for a ``.safetensors`` checkpoint, or with ``onnx`` for
        an ONNX file (without the ``hrface.`` prefix).  Where the file comes from (file name, hash, source) is
        not written: it is not a property of the weights."""
        if onnx:
            meta = {"kind": self.kind, "options": json.dumps(self.options)}
            if self.kind == "hrnet":
                meta["num_landmarks"] = str(self.num_landmarks)
        else:
            meta = {"arch": self.kind, **{key: str(value) for key, value in self.options.items()}}
        for key, (kinds, _, _, write) in _VALUES.items():
            value = getattr(self, key)
            if self.kind in kinds and value is not None:
                meta[key] = write(value)
        for key in _DESCRIPTIONS:
            if getattr(self, key):
                meta[key] = str(getattr(self, key))
        if self.metrics:
            meta["metrics"] = json.dumps([asdict(m) for m in self.metrics])
        return meta

    @classmethod
    def from_metadata(
        cls, meta: Mapping[str, str], arch: ArchSpec | None = None, base: ModelConfig | None = None
    ) -> ModelConfig:
        """The config that a file's metadata records (either form of :meth:`metadata`), on top of ``base`` (a
        registry entry; else the architecture's defaults).  ``arch``: the architecture read from the weights,
        which wins over the metadata's; without it the metadata must name one.  Keys of the other kind of model
        and unknown keys are ignored; an empty value counts as absent.  Raises :class:`MetadataError`."""
        if arch is None:
            arch = _arch_of(meta)
        values: dict[str, Any] = {}
        for key, (kinds, parse, what, _) in _VALUES.items():
            text = meta.get(key)
            if text in (None, "") or arch.kind not in kinds:
                continue
            try:
                value = parse(str(text))
            except (TypeError, ValueError):
                raise MetadataError(key, text, what, unreadable=True) from None
            if value is None:
                raise MetadataError(key, text, what)
            values[key] = value
        for key in _DESCRIPTIONS:
            if meta.get(key):
                values[key] = str(meta[key])
        if meta.get("metrics"):
            try:
                values["metrics"] = tuple(Measurement(**item) for item in json.loads(meta["metrics"]))
            except (TypeError, ValueError):
                raise MetadataError("metrics", meta["metrics"], "is not a JSON list of measurements", True) from None
        if base is None or base.arch != arch:
            return cls(arch, **values)
        return replace(base, **values)

    def attach(self, module: Any) -> None:
        """Give a PyTorch model this config: ``module.hrface_config``, and as attributes the settings of
        :data:`MODULE_ATTRIBUTES` that are set (those a user or a test may change on a live model)."""
        module.hrface_config = self
        for key in MODULE_ATTRIBUTES[self.kind]:
            if getattr(self, key) is not None:
                setattr(module, key, getattr(self, key))

    @classmethod
    def of_module(cls, module: Any, kind: str) -> ModelConfig:
        """The config of a PyTorch model of ``kind``: its ``hrface_config`` (:meth:`attach`; else the
        architecture's defaults) with its architecture and its :data:`MODULE_ATTRIBUTES` read from the module
        (any module with ``num_landmarks`` is a landmark model)."""
        if kind == "retinaface":
            options = {"backbone": module.backbone_name} if hasattr(module, "backbone_name") else {}
        else:
            options = {"width": int(module.width)} if hasattr(module, "width") else {}
            options["num_landmarks"] = int(module.num_landmarks)
        values = {}
        for key in MODULE_ATTRIBUTES[kind]:
            value = getattr(module, key, None)
            if value:  # 0 or an empty value: not set
                values[key] = tuple(float(v) for v in value) if key == "point_calibration" else _TYPES[key](value)
        base = getattr(module, "hrface_config", None)
        arch = ArchSpec(kind, options)
        if not isinstance(base, ModelConfig) or base.arch != arch:
            return cls(arch, **values)
        return replace(base, **values)


class MetadataError(ValueError):
    """A metadata value no model can have: ``key``'s ``value`` ``what`` ('is not a valid size in pixels', …);
    ``unreadable`` when it is not even of the right type (a word where a number belongs)."""

    def __init__(self, key: str, value: Any, what: str, unreadable: bool = False) -> None:
        super().__init__(f"{key}={value!r} {what}")
        self.key, self.value, self.what, self.unreadable = key, value, what, unreadable


def parse_point_calibration(text: str) -> tuple[float, float]:
    """``"a,b"`` (the ``point_calibration`` metadata of a landmark model) → ``(a, b)``, two finite floats;
    ValueError otherwise."""
    a, b = _numbers(text, 2)
    return a, b


def _numbers(text: str, count: int) -> tuple[float, ...]:
    values = tuple(float(part) for part in str(text).split(","))
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{text!r} is not {count} finite numbers")
    return values


def _size(multiple: int, smallest: int) -> Callable[[str], int | None]:
    def parse(text: str) -> int | None:
        size = int(text)
        return size if size >= smallest and size % multiple == 0 else None

    return parse


def _score(text: str) -> float | None:
    value = float(text)
    return value if 0.0 < value < 1.0 else None


def _positive(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) and value > 0 else None


def _triple(text: str) -> tuple[float, float, float]:
    a, b, c = _numbers(text, 3)
    return a, b, c


def _positive_triple(text: str) -> tuple[float, float, float] | None:
    values = _triple(text)
    return values if min(values) > 0 else None


def _number_text(value: float) -> str:
    return repr(float(value))


def _numbers_text(values: tuple[float, ...]) -> str:
    return ",".join(repr(float(v)) for v in values)


_BOTH = ("retinaface", "hrnet")
# key: (the kinds of model it belongs to, parse (None: a value no model can have), what a bad value is, write)
_VALUES: dict[str, tuple[tuple[str, ...], Callable[[str], Any], str, Callable[[Any], str]]] = {
    "input_size": (("hrnet",), _size(4, 4), "is not a valid size in pixels", str),
    "sigma": (("hrnet",), _positive, "is not a positive number", _number_text),
    "enlarge": (("hrnet",), _positive, "is not a positive number", _number_text),
    "mean": (_BOTH, _triple, "is not three numbers 'a,b,c'", _numbers_text),
    "std": (_BOTH, _positive_triple, "is not three positive numbers 'a,b,c'", _numbers_text),
    "max_size": (("retinaface",), _size(1, 32), "is not a valid size in pixels", str),
    "train_size": (("retinaface",), _size(1, 32), "is not a valid size in pixels", str),
    "score_threshold": (("retinaface",), _score, "is not a score in (0, 1)", _number_text),
    "point_calibration": (("hrnet",), parse_point_calibration, "is not two numbers 'a,b'", _numbers_text),
}
_DESCRIPTIONS = ("name", "description", "licence", "provenance", "card")
DESCRIPTIVE_KEYS = (*_DESCRIPTIONS, "metrics")
"""The metadata keys that describe a model without changing what it computes."""
CONFIG_KEYS = (*_VALUES, *DESCRIPTIVE_KEYS)
"""The metadata keys of a config beyond the architecture's."""
MODULE_ATTRIBUTES = {
    "hrnet": ("input_size", "point_calibration"),
    "retinaface": ("max_size", "train_size", "score_threshold"),
}
"""The settings a PyTorch model carries as attributes (:meth:`ModelConfig.attach`), by kind."""
_TYPES = {"input_size": int, "max_size": int, "train_size": int, "score_threshold": float}


def _arch_of(meta: Mapping[str, str]) -> ArchSpec:
    """The architecture a file's metadata names: ``kind`` and ``options`` (JSON) and ``num_landmarks`` (ONNX), or
    ``arch`` and separate option keys (checkpoints)."""
    kind = meta.get("kind") or meta.get("arch")
    if kind not in TASKS:
        raise MetadataError("kind", kind, "is not a model kind ('retinaface' or 'hrnet')", unreadable=True)
    try:
        if "options" in meta:
            options = dict(json.loads(meta["options"]))
        elif kind == "retinaface":
            options = {"backbone": meta["backbone"]} if "backbone" in meta else {}
        else:
            options = {key: int(meta[key]) for key in ("width", "num_landmarks") if key in meta}
    except (TypeError, ValueError):
        raise MetadataError("options", meta.get("options"), "is not JSON of the architecture", True) from None
    if kind == "hrnet" and "num_landmarks" in meta:
        try:
            k = int(meta["num_landmarks"])
        except ValueError:
            raise MetadataError("num_landmarks", meta["num_landmarks"], "is not a number of points", True) from None
        if k < 1:
            raise MetadataError("num_landmarks", meta["num_landmarks"], "is not a number of points")
        options["num_landmarks"] = k
    return ArchSpec(kind, options)
