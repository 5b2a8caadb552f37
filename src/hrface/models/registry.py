"""Named model configurations, where their weights come from, and ``create_model``.

Model names resolve to weight files: files shipped inside the package (``hrface/weights``) or files
in the cache directory ``$HRFACE_HOME`` (default ``~/.cache/hrface``). Nothing is ever downloaded:
a missing file is an error that says where to get it and where to put it.

A shipped model is one file, ``NAME.onnx``: a compact ONNX graph (``hrface export --compact``) that the
base install runs without torch, and whose initializers are the model's half-precision state_dict, which
the PyTorch side (``create_model``, fine-tuning) reads back.  Looking models up needs no torch; building one
(:func:`create_model`) needs the ``hrface[torch]`` extra.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError, ConfigError, WeightsNotFoundError
from ..extras import require
from .arch import ArchSpec
from .onnx_metadata import parse_point_calibration

if TYPE_CHECKING:
    from torch import nn

PACKAGE_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


@dataclass(frozen=True)
class ModelInfo:
    """A named model: its architecture, weight file and the provenance of those weights."""

    name: str
    task: str  # "detector" or "landmarker"
    arch: ArchSpec
    filename: str
    source: str
    description: str
    sha256: str | None = None
    packaged: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


_BIUBUG6 = "https://github.com/biubug6/Pytorch_Retinaface (README, 'pretrained model' links)"
_HRNET_FACE = "https://github.com/HRNet/HRNet-Facial-Landmark-Detection (README, 'HRNetV2-W18' model links)"
_HRFACE_TRAINED = "trained by hrface with configs/{config}; model card: hrface/weights/{card}"

MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in [
        ModelInfo(
            "retinaface_mnet025",
            "detector",
            ArchSpec("retinaface", {"backbone": "mobilenet0.25"}),
            "mobilenet0.25_Final.pth",
            _BIUBUG6,
            "RetinaFace MobileNetV1-0.25, published checkpoint trained on WIDER FACE "
            "(WIDER val AP 90.70 / 88.16 / 73.82 easy/medium/hard at original size)",
            sha256="2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220",
        ),
        ModelInfo(
            "retinaface_r50",
            "detector",
            ArchSpec("retinaface", {"backbone": "resnet50"}),
            "Resnet50_Final.pth",
            _BIUBUG6,
            "RetinaFace ResNet50, published checkpoint trained on WIDER FACE",
        ),
        ModelInfo(
            "hrface_retinaface_mnet025_300w_v3",
            "detector",
            ArchSpec("retinaface", {"backbone": "mobilenet0.25"}),
            "hrface_retinaface_mnet025_300w_v3.onnx",
            "trained by hrface with configs/retinaface_mnet025_v2.yaml, 160 epochs without teacher (ablation row "
            "'long' of scripts/detector_ablation.sh); model card: hrface/weights/hrface_retinaface_mnet025_300w_v3.md",
            "RetinaFace MobileNetV1-0.25 trained on 300W AFW + HELEN train photos (843 images) with mosaics and "
            "zoom-outs for 160 epochs, run at 960 px; small-face test recall 88.1 %, held-out recall 99.6 %, "
            "keypoint NME 8.8 % (research use only: 300W data)",
            sha256="e3c4eda102b013d8896e6b8091790372fd0fbff402a3578c047477ca2bbc009f",
            packaged=True,
            extra={"max_size": 960, "train_size": 320},
        ),
        ModelInfo(
            "hrface_retinaface_mnet025_300w_v2",
            "detector",
            ArchSpec("retinaface", {"backbone": "mobilenet0.25"}),
            "hrface_retinaface_mnet025_300w_v2.onnx",
            "the hrface git history, where it was shipped until 7 December 2026 (git show "
            "6257a5f:src/hrface/weights/hrface_retinaface_mnet025_300w_v2.onnx; model card: "
            "docs/models/hrface_retinaface_mnet025_300w_v2.md)",
            "RetinaFace MobileNetV1-0.25 trained on 300W AFW + HELEN train photos (843 images) with mosaics and "
            "zoom-outs for 80 epochs, run at 960 px; small-face test recall 87.0 %, held-out keypoint NME 10.6 % "
            "(replaced by hrface_retinaface_mnet025_300w_v3, the same recipe trained twice as long)",
            sha256="b6181ca4f51b4fb7d1cc3bf64a23e05f26479da127416329ea9cbb23bf2d27ae",
            extra={"max_size": 960, "train_size": 320},
        ),
        ModelInfo(
            "hrface_retinaface_mnet025_300w",
            "detector",
            ArchSpec("retinaface", {"backbone": "mobilenet0.25"}),
            "hrface_retinaface_mnet025_300w.onnx",
            "the hrface git history, where it was shipped until December 2026 (git show "
            "bd80e11:src/hrface/weights/hrface_retinaface_mnet025_300w.onnx; model card: "
            "docs/models/hrface_retinaface_mnet025_300w.md)",
            "RetinaFace MobileNetV1-0.25 trained on 300W AFW + HELEN train photos (772 photos, 966 faces, 71 on "
            "the wrong image), run at 480 px; small-face test recall 22.8 % (replaced by "
            "hrface_retinaface_mnet025_300w_v2)",
            sha256="8116ca96fd5a19aef84934cb516d8c72a7c60050e05b3cce26108b1df4746acb",
            extra={"max_size": 480},
        ),
        ModelInfo(
            "hrface_w18_300w_v3",
            "landmarker",
            ArchSpec("hrnet", {"width": 18, "num_landmarks": 68}),
            "hrface_w18_300w_v3.onnx",
            _HRFACE_TRAINED.format(config="hrnet_w18_300w_v3.yaml", card="hrface_w18_300w_v3.md"),
            "HRNetV2-W18, 68 landmarks, 160x160 crops: hrface_w18_300w_v2_160 fine-tuned on the corrected (0-based) "
            "300W labels without flips, turned heads oversampled; per-point scores calibrated (research use only: "
            "300W data)",
            sha256="290d6e89508986e73d489fefabe76700f05e863ebc3c85a5b25f64f193b0321c",
            packaged=True,
            extra={"input_size": 160},
        ),
        ModelInfo(
            "hrface_w18_300w_v3_int8",
            "landmarker",
            ArchSpec("hrnet", {"width": 18, "num_landmarks": 68}),
            "hrface_w18_300w_v3_int8.onnx",
            "hrface_w18_300w_v3 quantised by hrface (hrface export --int8, calibrated on 64 training photos); "
            "model card: hrface/weights/hrface_w18_300w_v3_int8.md",
            "hrface_w18_300w_v3 as a static INT8 graph for ONNX Runtime (QDQ, 7-bit per-channel weights); "
            "PyTorch (backend 'torch', GPUs) runs the float32 weights of hrface_w18_300w_v3",
            sha256="7c7dd66d769acb3f89babd7e8bcd6c3030364296358bf6b6573b422dcb8b6955",
            packaged=True,
            extra={"input_size": 160, "float_model": "hrface_w18_300w_v3"},
        ),
        ModelInfo(
            "hrface_w18_300w_v2_160",
            "landmarker",
            ArchSpec("hrnet", {"width": 18, "num_landmarks": 68}),
            "hrface_w18_300w_v2_160.onnx",
            "the hrface git history, where it was shipped until 7 December 2026 (git show "
            "3a122e8:src/hrface/weights/hrface_w18_300w_v2_160.onnx; model card: "
            "docs/models/hrface_w18_300w_v2_160.md)",
            "HRNetV2-W18, 68 landmarks, 160x160 crops: hrface_w18_300w_v2_128 fine-tuned at 160 px on the "
            "boxes of detector v2 (AFW oversampled x2); held-out NME 4.07 %, FR@0.10 0.83 % from v2's boxes, "
            "4.10 % / 1.67 % from the default detector v3's (research use only: 300W data)",
            sha256="5f630e49d2b25aaaa3abee123318d6b180c1a911192c87032ec080658db529f5",
            extra={"input_size": 160},
        ),
        ModelInfo(
            "hrface_w18_300w_v2_160_int8",
            "landmarker",
            ArchSpec("hrnet", {"width": 18, "num_landmarks": 68}),
            "hrface_w18_300w_v2_160_int8.onnx",
            "the hrface git history, where it was shipped on 7 December 2026 (git show "
            "3a122e8:src/hrface/weights/hrface_w18_300w_v2_160_int8.onnx; model card: "
            "docs/models/hrface_w18_300w_v2_160_int8.md)",
            "hrface_w18_300w_v2_160 as a static INT8 graph for ONNX Runtime (QDQ, 7-bit per-channel weights): "
            "held-out NME 3.83 % against 3.82 % in float32 from detector v3's boxes, 0.55x its CPU time per face; "
            "PyTorch (backend 'torch', GPUs) runs the float32 weights of hrface_w18_300w_v2_160",
            sha256="412b9a9b1cb47b71893dc6124c700ddbb2d967ca232944f649ed66c9ad3dfae7",
            extra={"input_size": 160, "float_model": "hrface_w18_300w_v2_160"},
        ),
        ModelInfo(
            "hrface_w18_300w_v2_128",
            "landmarker",
            ArchSpec("hrnet", {"width": 18, "num_landmarks": 68}),
            "hrface_w18_300w_v2_128.onnx",
            "the hrface git history, where it was shipped until December 2026 (git show "
            "07572c8:src/hrface/weights/hrface_w18_300w_v2_128.onnx; model card: "
            "docs/models/hrface_w18_300w_v2_128.md)",
            "HRNetV2-W18, 68 landmarks, 128x128 crops, trained from scratch on 300W AFW + HELEN train "
            "(1,087 faces, Adaptive Wing, real-use augmentation); held-out NME 4.23 % from default-detector "
            "boxes (replaced by hrface_w18_300w_v2_160, its fine-tuning at 160 px)",
            sha256="6622d6d6949ebe14859a3c87c23c8d9f0b6c0fa9ff39f597e85d2b3711cdadb4",
            extra={"input_size": 128},
        ),
        ModelInfo(
            "hrface_w18_300w_128",
            "landmarker",
            ArchSpec("hrnet", {"width": 18, "num_landmarks": 68}),
            "hrface_w18_300w_128.onnx",
            "the hrface git history, where it was shipped until December 2026 (git show "
            "8a96773:src/hrface/weights/hrface_w18_300w_128.onnx; model card: docs/models/hrface_w18_300w_128.md)",
            "HRNetV2-W18, 68 landmarks, 128x128 crops, trained from scratch on 300W AFW + HELEN train with 87 "
            "mislabelled faces (966 faces); held-out NME 6.48 % (replaced by hrface_w18_300w_v2_128)",
            sha256="1615c9bb5d5fafb68bb9edb68a304fcd241452b09f6ce323b024728f9395fa98",
            extra={"input_size": 128},
        ),
        *[
            ModelInfo(
                f"hrnetv2_w18_{data.lower()}",
                "landmarker",
                ArchSpec("hrnet", {"width": 18, "num_landmarks": points}),
                f"HR18-{data}.pth",
                _HRNET_FACE,
                f"HRNetV2-W18, {points} landmarks, published checkpoint trained on {data}",
            )
            for data, points in (("300W", 68), ("WFLW", 98), ("COFW", 29), ("AFLW", 19))
        ],
    ]
}


def weights_home() -> Path:
    """The weight cache directory: ``$HRFACE_HOME``, else ``$XDG_CACHE_HOME/hrface``, else ``~/.cache/hrface``."""
    if os.environ.get("HRFACE_HOME"):
        return Path(os.environ["HRFACE_HOME"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hrface"


def list_models(task: str | None = None) -> list[ModelInfo]:
    """Known named models, optionally only those of ``task`` ('detector' or 'landmarker')."""
    return [m for m in MODELS.values() if task is None or m.task == task]


def get_model_info(name: str) -> ModelInfo:
    """The registry entry of ``name``; :class:`ConfigError` listing the known names otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise _unknown_name(name) from None


def _unknown_name(name: str) -> ConfigError:
    return ConfigError(f"unknown model name {name!r}; known models: {', '.join(MODELS)} (or pass a file path)")


def float_model(name: str) -> str:
    """The float32 original of a registry name that is an INT8 graph (``extra["float_model"]``), else ``name``."""
    info = MODELS.get(name)
    return str(info.extra["float_model"]) if info is not None and "float_model" in info.extra else name


def shipped_onnx(name: str) -> Path | None:
    """The ready ONNX file of a model shipped inside the package (``hrface/weights/NAME.onnx``), or None
    for any other name."""
    info = MODELS.get(name)
    if info is None or not info.packaged or not info.filename.endswith(".onnx"):
        return None
    path = PACKAGE_WEIGHTS / info.filename
    return path if path.is_file() else None


def weights_path(info: ModelInfo) -> Path:
    """Where the weight file of a named model is expected (packaged or in the cache directory)."""
    return (PACKAGE_WEIGHTS if info.packaged else weights_home()) / info.filename


_NOT_FILES = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def not_a_file(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it exists but is not a regular file (links followed): 'a folder', 'a named pipe
    (FIFO)', 'a device', 'a socket'; None for a regular file or a missing path.  Only ``stat``: nothing is
    opened (opening a FIFO to read it waits for a writer, forever)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    return next((what for test, what in _NOT_FILES if test(mode)), "not a regular file")


def check_model_file(path: str | os.PathLike[str]) -> Path:
    """``path`` when it is a regular file; else a one-line :class:`CheckpointError` at once (a missing file, a
    folder, a FIFO, a device: none of them is read)."""
    path = Path(os.fspath(path)).expanduser()
    what = not_a_file(path)
    if what is not None:
        raise CheckpointError(f"{path}: is {what}, not a model file; pass the model's file or a model name")
    if not path.is_file():
        raise CheckpointError(f"{path}: model file not found; pass an existing file or a model name")
    return path


def resolve_weights(name_or_path: str | os.PathLike[str]) -> tuple[Path, ModelInfo | None]:
    """Weight file of a model name or path. A path that exists wins over a name; a missing named file
    raises :class:`WeightsNotFoundError` saying where to get it and where to put it; a path that is not a
    regular file (a folder, a FIFO, a device) is refused at once."""
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path, None
    if text in MODELS:
        info = MODELS[text]
        expected = weights_path(info)
        if not expected.is_file():
            raise WeightsNotFoundError(
                f"weights of {info.name!r} not found at {expected}; download {info.filename} from {info.source} "
                f"and save it there (or set HRFACE_HOME), or pass the checkpoint's path instead of the name"
            )
        return expected, info
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

    Args:
        name_or_path: a name of :data:`MODELS` or a checkpoint file (.pth/.tar/.safetensors); for a
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
    path, info = resolve_weights(text)
    state_dict = read_state_dict(path)
    arch = infer_architecture(state_dict, source=str(path))
    if expect is not None and arch.kind != expect:
        wanted = {"retinaface": "a RetinaFace face detector", "hrnet": "an HRNet landmark model"}[expect]
        raise CheckpointError(f"{path}: is a {arch.describe()} checkpoint, not {wanted}; pass the right model")
    if info is not None and info.arch != arch:
        raise CheckpointError(f"{path}: holds a {arch.describe()} model but {info.name!r} is {info.arch.describe()}")
    check_finite(state_dict, source=str(path))
    model = build_model(arch)
    load_weights(model, state_dict, source=str(path))
    _apply_sizes(model, arch.kind, read_metadata(path), info, path)
    return model.eval()


# Image sizes a trained model carries (safetensors metadata, or the registry entry's ``extra``):
# name → (model kind, the value must be a multiple of this, the smallest value).
SIZE_METADATA = {
    "input_size": ("hrnet", 4, 4),  # landmark crop side (pixels) the model was trained at
    "max_size": ("retinaface", 1, 32),  # longer image side (pixels) the detector expects photos at
    "train_size": ("retinaface", 1, 32),  # side (pixels) of the square inputs the detector was trained on
}


def _apply_sizes(model: nn.Module, kind: str, metadata: dict[str, str], info: ModelInfo | None, path: Path) -> None:
    """Set ``model.input_size`` (landmark crop side; models without it keep the class default, 256) and
    ``model.max_size`` (a detector's recommended longer side; none: the runtime default) and
    ``model.train_size`` (a detector's training input side; none: the published 640) from the file's
    metadata or the registry entry; likewise ``model.score_threshold`` (a detector's recommended minimum
    score, in (0, 1); none: the runtime default) and ``model.point_calibration`` (a landmark model's peak →
    score mapping, :mod:`hrface.landmarks.confidence`)."""
    score = metadata.get("score_threshold") or (info.extra.get("score_threshold") if info is not None else None)
    if score is not None and kind == "retinaface":
        try:
            value = float(score)
        except (TypeError, ValueError):
            value = -1.0
        if not 0.0 < value < 1.0:
            raise CheckpointError(f"{path}: metadata score_threshold={score!r} is not a score in (0, 1)")
        model.score_threshold = value
    calibration = metadata.get("point_calibration") or (info.extra.get("point_calibration") if info else None)
    if calibration is not None and kind == "hrnet":
        try:
            model.point_calibration = parse_point_calibration(calibration)
        except (TypeError, ValueError):
            bad = f"metadata point_calibration={calibration!r}"
            raise CheckpointError(f"{path}: {bad} is not two numbers 'a,b'") from None
    for key, (owner, multiple, smallest) in SIZE_METADATA.items():
        value = metadata.get(key) or (info.extra.get(key) if info is not None else None)
        if value is None or kind != owner:
            continue
        try:
            size = int(value)
        except (TypeError, ValueError):
            size = 0
        if size < smallest or size % multiple:
            raise CheckpointError(f"{path}: metadata {key}={value!r} is not a valid size in pixels")
        setattr(model, key, size)
