"""Named models: a table of model configurations, where their weights come from, and ``create_model``.

Each named model is one :class:`~hrface.models.config.ModelConfig` in :data:`MODELS`, the only place its
settings, provenance and measured figures are written.  The table holds the models shipped inside the package
(``hrface/weights/NAME.onnx``: a compact ONNX graph that the base install runs without torch, and whose
initializers are the model's half-precision state_dict, which the PyTorch side reads back) and the published
checkpoints hrface reads (expected in the cache directory ``$HRFACE_HOME``, default ``~/.cache/hrface``).
Nothing is ever downloaded: a missing file is an error that says where to get it and where to put it.

Retired models are not in the table: the docs page ``docs/models/retired.md`` says how to write each one's file
from the git history into ``$HRFACE_HOME``, where its name then resolves (any ``NAME.onnx`` there does), and a
retired name whose file is not there is a one-line error pointing to that page.

Adding a model is one row: ``_shipped(NAME, ARCH, sha256=…, description=…, provenance=…, metrics=…, settings…)``
for a file shipped in ``hrface/weights`` (with its card ``NAME.md``), where the settings (``max_size``,
``score_threshold``, ``input_size``, …) are those its file's metadata records (``tests/test_shipped_models.py``
checks that they agree).  Looking models up needs no torch; building one (:func:`create_model`) needs the
``hrface[torch]`` extra.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError, ConfigError, WeightsNotFoundError
from ..extras import require
from ..io.files import check_model_file, not_a_file
from .arch import ArchSpec
from .config import Measurement, MetadataError, ModelConfig

if TYPE_CHECKING:
    from torch import nn

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
RETIRED_MODELS_PAGE = "docs/models/retired.md"

_MNET025 = ArchSpec("retinaface", {"backbone": "mobilenet0.25"})
_W18_68 = ArchSpec("hrnet", {"width": 18, "num_landmarks": 68})
_BIUBUG6 = "https://github.com/biubug6/Pytorch_Retinaface (README, 'pretrained model' links)"
_HRNET_FACE = "https://github.com/HRNet/HRNet-Facial-Landmark-Detection (README, 'HRNetV2-W18' model links)"
_PUBLISHED = "as published by its source repository (whose code is MIT-licensed); the training data's terms apply"
_RESEARCH_ONLY = (
    "research use only, no commercial use: trained on 300W (AFW, HELEN; i-bug, Imperial College London), "
    "provided for research purposes only; hrface's MIT licence does not extend to these weights"
)
_SHIPPED_DATE = "2026-12-07"
_DETECTOR_EVAL = (
    "hrface eval-detector --model {name} --pts-dir $HRFACE_SHARED/data/300w/afw $HRFACE_SHARED/data/300w/helen_train "
    "--split-file runs/hrnet_w18_300w_split.json --max-size 960 --threads 1"
)
_LANDMARK_EVAL = (
    "hrface eval-landmarks configs/hrnet_w18_300w_v3.yaml --model {name} --boxes detector "
    "--detector hrface_retinaface_mnet025_300w_v3"
)


def _shipped(name: str, arch: ArchSpec, **fields: Any) -> ModelConfig:
    """A model shipped in ``hrface/weights``: ``NAME.onnx`` beside its model card ``NAME.md``, trained on 300W."""
    return ModelConfig(
        arch,
        name=name,
        filename=f"{name}.onnx",
        packaged=True,
        source="shipped inside the package (hrface/weights)",
        card=f"{name}.md",
        licence=_RESEARCH_ONLY,
        **fields,
    )


def _landmark_metrics(name: str, nme: float, failures: float) -> tuple[Measurement, ...]:
    command = _LANDMARK_EVAL.format(name=name)
    return (
        Measurement("validation NME (120 faces, default detector's boxes)", nme, "%", _SHIPPED_DATE, command),
        Measurement("validation FR@0.10", failures, "%", _SHIPPED_DATE, command),
    )


_V3_LANDMARKS: dict[str, Any] = {"input_size": 160, "sigma": 1.0, "point_calibration": (10.7225, -6.7139)}

MODELS: dict[str, ModelConfig] = {
    config.name: config
    for config in [
        ModelConfig(
            _MNET025,
            name="retinaface_mnet025",
            description="RetinaFace MobileNetV1-0.25, published checkpoint trained on WIDER FACE",
            filename="mobilenet0.25_Final.pth",
            sha256="2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220",
            source=_BIUBUG6,
            licence=_PUBLISHED,
            provenance="trained on WIDER FACE by biubug6/Pytorch_Retinaface",
            metrics=tuple(
                Measurement(f"WIDER FACE val AP ({subset}, original size)", ap, "%", "", "its publisher's README")
                for subset, ap in (("easy", 90.70), ("medium", 88.16), ("hard", 73.82))
            ),
        ),
        ModelConfig(
            ArchSpec("retinaface", {"backbone": "resnet50"}),
            name="retinaface_r50",
            description="RetinaFace ResNet50, published checkpoint trained on WIDER FACE",
            filename="Resnet50_Final.pth",
            source=_BIUBUG6,
            licence=_PUBLISHED,
            provenance="trained on WIDER FACE by biubug6/Pytorch_Retinaface",
        ),
        _shipped(
            "hrface_retinaface_mnet025_300w_v3",
            _MNET025,
            description="RetinaFace MobileNetV1-0.25 trained on 300W AFW + HELEN train photos (843 images) with "
            "mosaics and zoom-outs for 160 epochs, run at 960 px",
            sha256="e3c4eda102b013d8896e6b8091790372fd0fbff402a3578c047477ca2bbc009f",
            max_size=960,
            train_size=320,
            provenance="trained by hrface: bash scripts/detector_ablation.sh long (configs/retinaface_mnet025_v2.yaml, "
            "160 epochs, no teacher), packed with hrface pack-weights --metadata max_size=960 --metadata "
            "train_size=320, exported with hrface export --compact",
            metrics=(
                Measurement(
                    "small-face test recall (100 mosaics, 1,120 faces) at 960 px",
                    88.1,
                    "%",
                    _SHIPPED_DATE,
                    _DETECTOR_EVAL.format(name="hrface_retinaface_mnet025_300w_v3") + " --small-faces 100 --seed 0",
                ),
                *(
                    Measurement(
                        f"held-out {what} (212 photos, 241 faces) at 960 px",
                        value,
                        "%",
                        _SHIPPED_DATE,
                        _DETECTOR_EVAL.format(name="hrface_retinaface_mnet025_300w_v3"),
                    )
                    for what, value in (("recall", 99.6), ("keypoint NME", 8.8))
                ),
            ),
        ),
        _shipped(
            "hrface_w18_300w_v3",
            _W18_68,
            description="HRNetV2-W18, 68 landmarks, 160x160 crops, trained on 300W AFW + HELEN (corrected 0-based "
            "labels, no flips, turned heads oversampled); per-point scores calibrated",
            sha256="290d6e89508986e73d489fefabe76700f05e863ebc3c85a5b25f64f193b0321c",
            provenance="trained by hrface: hrface train-landmarks configs/hrnet_w18_300w_v3.yaml (fine-tuning "
            "hrface_w18_300w_v2_160), packed with hrface pack-weights --metadata input_size=160 --metadata "
            "point_calibration=10.7225,-6.7139, exported with hrface export --compact",
            metrics=_landmark_metrics("hrface_w18_300w_v3", 3.56, 0.83),
            **_V3_LANDMARKS,
        ),
        _shipped(
            "hrface_w18_300w_v3_int8",
            _W18_68,
            description="hrface_w18_300w_v3 as a static INT8 graph for ONNX Runtime on the CPU",
            sha256="7c7dd66d769acb3f89babd7e8bcd6c3030364296358bf6b6573b422dcb8b6955",
            float_model="hrface_w18_300w_v3",
            provenance="hrface_w18_300w_v3 quantised by hrface (QDQ, 7-bit per-channel weights): "
            "hrface export v3.safetensors hrface_w18_300w_v3_int8.onnx --int8 --calibration "
            "$HRFACE_SHARED/data/300w/helen_train --calibration-split configs/splits/300w_val10.json "
            "--calibration-images 64; PyTorch (backend 'torch', GPUs) runs the float32 weights of hrface_w18_300w_v3",
            metrics=_landmark_metrics("hrface_w18_300w_v3_int8", 3.56, 0.83),
            **_V3_LANDMARKS,
        ),
        *[
            ModelConfig(
                ArchSpec("hrnet", {"width": 18, "num_landmarks": points}),
                name=f"hrnetv2_w18_{data.lower()}",
                description=f"HRNetV2-W18, {points} landmarks, published checkpoint trained on {data}",
                filename=f"HR18-{data}.pth",
                source=_HRNET_FACE,
                licence=_PUBLISHED,
                provenance=f"trained on {data} by HRNet/HRNet-Facial-Landmark-Detection",
            )
            for data, points in (("300W", 68), ("WFLW", 98), ("COFW", 29), ("AFLW", 19))
        ],
    ]
}
"""The named models (shipped ones and the published checkpoints hrface reads), by name."""

RETIRED = (
    "hrface_retinaface_mnet025_300w",
    "hrface_retinaface_mnet025_300w_v2",
    "hrface_w18_300w_128",
    "hrface_w18_300w_v2_128",
    "hrface_w18_300w_v2_160",
    "hrface_w18_300w_v2_160_int8",
)
"""Names of models that were shipped and replaced: :data:`RETIRED_MODELS_PAGE` says how to use one."""


def weights_home() -> Path:
    """The weight cache directory: ``$HRFACE_HOME``, else ``$XDG_CACHE_HOME/hrface``, else ``~/.cache/hrface``."""
    if os.environ.get("HRFACE_HOME"):
        return Path(os.environ["HRFACE_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hrface"


def list_models(task: str | None = None) -> list[ModelConfig]:
    """The named models' configurations, optionally only those of ``task`` ('detector' or 'landmarker')."""
    return [m for m in MODELS.values() if task is None or m.task == task]


def get_model_info(name: str) -> ModelConfig:
    """The configuration of the named model ``name``; :class:`ConfigError` listing the known names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise _unknown_name(name) from None


def _unknown_name(name: str) -> ConfigError:
    return ConfigError(f"unknown model name {name!r}; known models: {', '.join(MODELS)} (or pass a file path)")


def float_model(name: str) -> str:
    """The float32 original of a named INT8 graph (its config's ``float_model``), else ``name``."""
    config = MODELS.get(name)
    return config.float_model if config is not None and config.float_model else name


def shipped_onnx(name: str) -> Path | None:
    """The ready ONNX file of a model shipped inside the package (``hrface/weights/NAME.onnx``), or None
    for any other name."""
    config = MODELS.get(name)
    if config is None or not config.packaged or not config.filename.endswith(".onnx"):
        return None
    path = PACKAGE_WEIGHTS / config.filename
    return path if path.is_file() else None


def named_onnx(name: str) -> Path | None:
    """The ready ONNX file a model name stands for: a shipped model's (:func:`shipped_onnx`), or, for a name
    outside the table (a retired model's, or your own), ``$HRFACE_HOME/NAME.onnx`` when it is there; else None."""
    if name in MODELS:
        return shipped_onnx(name)
    path = _cached_by_name(name)
    return path if path is not None and path.suffix == ".onnx" else None


def _cached_by_name(text: str) -> Path | None:
    """``$HRFACE_HOME/TEXT.onnx`` for a plain name (no folder, no suffix) when that file is there."""
    if not text or os.sep in text or (os.altsep and os.altsep in text) or Path(text).suffix:
        return None
    path = weights_home() / f"{text}.onnx"
    return path if path.is_file() else None


def weights_path(config: ModelConfig) -> Path:
    """Where the weight file of a named model is expected (packaged or in the cache directory)."""
    return (PACKAGE_WEIGHTS if config.packaged else weights_home()) / config.filename


def resolve_weights(name_or_path: str | os.PathLike[str]) -> tuple[Path, ModelConfig | None]:
    """Weight file of a model name or path, with the named model's configuration (None for a path).

    A path that exists wins over a name; then a name of :data:`MODELS`, whose missing file raises
    :class:`WeightsNotFoundError` saying where to get it and where to put it; then ``$HRFACE_HOME/NAME.onnx``
    (how retired models are used); a retired name without that file says where to read how to get it.  A path
    that is not a regular file (a folder, a FIFO, a device) is refused at once."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path, None
    if text in MODELS:
        config = MODELS[text]
        expected = weights_path(config)
        if not expected.is_file():
            raise WeightsNotFoundError(
                f"weights of {config.name!r} not found at {expected}; download {config.filename} from "
                f"{config.source} and save it there (or set HRFACE_HOME), or pass the checkpoint's path instead "
                "of the name"
            )
        return expected, config
    cached = _cached_by_name(text)
    if cached is not None:
        return cached, None
    if text in RETIRED:
        raise WeightsNotFoundError(
            f"{text!r} is a retired model, no longer shipped: write its file from the git history to "
            f"{weights_home() / (text + '.onnx')} as {RETIRED_MODELS_PAGE} says (or set HRFACE_HOME), or use "
            "the shipped models ('hrface models')"
        )
    if not_a_file(path) is not None:
        check_model_file(path)
    if path.suffix in {".pth", ".pt", ".tar", ".safetensors", ".ckpt", ".onnx"} or os.sep in text:
        raise CheckpointError(f"{path}: checkpoint file not found; pass an existing file or a model name")
    raise _unknown_name(text)


def build_model(arch: ArchSpec) -> nn.Module:
    """An untrained model of the given architecture (needs ``hrface[torch]``)."""
    require("torch", "torch", "building a PyTorch model")
    if arch.kind == "retinaface":
        from .retinaface import RetinaFace

        return RetinaFace(**arch.options)
    if arch.kind == "hrnet":
        from .hrnet import HRNet

        return HRNet(**arch.options)
    raise ConfigError(f"unknown architecture kind {arch.kind!r}")


def create_model(name_or_path: str | os.PathLike[str], pretrained: bool = True, expect: str | None = None) -> nn.Module:
    """Build a model by registry name or from a checkpoint path, in eval mode.

    The model carries its configuration (:class:`~hrface.models.config.ModelConfig`: the named model's, with
    what the file's metadata records on top) as ``model.hrface_config``, and the settings the runtime and the
    exporter read as attributes: ``input_size`` and ``point_calibration`` of a landmark model, ``max_size``,
    ``train_size`` and ``score_threshold`` of a detector (:meth:`~hrface.models.config.ModelConfig.attach`).

    Args:
        name_or_path: a name of :data:`MODELS` or a checkpoint file (.pth/.tar/.safetensors/.onnx); for a
            file the architecture (backbone, width, number of landmarks) is read from the checkpoint.
        pretrained: load the weights (always true for a path). ``False`` builds a named architecture
            with random weights.
        expect: 'retinaface' or 'hrnet': raise :class:`CheckpointError` if the checkpoint is another kind.
    """
    from .checkpoint import check_finite, infer_architecture, load_weights, read_metadata, read_state_dict

    text = float_model(os.fspath(name_or_path))  # an INT8 graph's name: PyTorch runs its float32 weights
    if not pretrained:
        model = build_model(get_model_info(text).arch)
        return model.eval()
    require("torch", "torch", f"loading {text}")
    path, config = resolve_weights(text)
    state_dict = read_state_dict(path)
    arch = infer_architecture(state_dict, source=str(path))
    if expect is not None and arch.kind != expect:
        wanted = {"retinaface": "a RetinaFace face detector", "hrnet": "an HRNet landmark model"}[expect]
        raise CheckpointError(f"{path}: is a {arch.describe()} checkpoint, not {wanted}; pass the right model")
    if config is not None and config.arch != arch:
        named = f"{config.name!r} is {config.arch.describe()}"
        raise CheckpointError(f"{path}: holds a {arch.describe()} model but {named}")
    check_finite(state_dict, source=str(path))
    model = build_model(arch)
    load_weights(model, state_dict, source=str(path))
    try:
        recorded = ModelConfig.from_metadata(read_metadata(path), arch, base=config)
    except MetadataError as exc:
        raise CheckpointError(f"{path}: metadata {exc}") from None
    recorded.attach(model)
    return model.eval()
