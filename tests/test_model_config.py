"""One configuration per model (hrface.models.config): what it holds, how it travels as metadata and back, how
files written before a key existed read, and that a landmark model decodes with the heatmap σ it was trained with."""

from __future__ import annotations

import numpy as np
import pytest

from hrface.models.arch import ArchSpec
from hrface.models.config import (
    DETECTOR_MEAN,
    LANDMARK_MEAN,
    LANDMARK_STD,
    Measurement,
    MetadataError,
    ModelConfig,
    heatmap_sigma,
)
from hrface.models.registry import MODELS
from hrface.ops import BGR_MEAN

W18 = ArchSpec("hrnet", {"width": 18, "num_landmarks": 68})
MNET = ArchSpec("retinaface", {"backbone": "mobilenet0.25"})
SETTINGS = ("input_size", "sigma", "enlarge", "mean", "std", "max_size", "train_size", "score_threshold")
OTHERS = ("point_calibration", "name", "description", "licence", "provenance", "card", "metrics")


def test_a_config_holds_the_defaults_of_its_kind() -> None:
    landmarks = ModelConfig(W18)
    assert (landmarks.task, landmarks.input_size, landmarks.heatmap_size) == ("landmarker", 256, 64)
    assert (landmarks.sigma, landmarks.enlarge, landmarks.layout, landmarks.num_landmarks) == (1.0, 1.25, "300W", 68)
    assert (landmarks.mean, landmarks.std) == (LANDMARK_MEAN, LANDMARK_STD)
    assert ModelConfig(ArchSpec("hrnet", {"num_landmarks": 98})).sigma == heatmap_sigma(98) == 1.5
    detector = ModelConfig(MNET)
    assert (detector.task, detector.input_size, detector.heatmap_size, detector.sigma) == ("detector", None, None, None)
    assert detector.mean == DETECTOR_MEAN == BGR_MEAN and detector.std == (1.0, 1.0, 1.0)
    assert detector.max_size is detector.score_threshold is None  # the runtime's defaults apply
    with pytest.raises(Exception, match="unknown architecture kind"):
        ModelConfig(ArchSpec("yolo"))


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("onnx", [False, True])
def test_every_named_config_travels_as_metadata_and_back(name: str, onnx: bool) -> None:
    config = MODELS[name]
    meta = config.metadata(onnx=onnx)
    assert all(isinstance(value, str) for value in meta.values())
    back = ModelConfig.from_metadata(meta)  # the architecture from the metadata alone
    assert back.arch == config.arch
    for key in (*SETTINGS, *OTHERS):
        assert getattr(back, key) == getattr(config, key), key
    assert (back.filename, back.sha256, back.packaged) == ("", None, False)  # where a file comes from is not in it


def test_metadata_keys_and_forms() -> None:
    config = ModelConfig(W18, input_size=160, sigma=2.0, point_calibration=(10.5, -6.25))
    assert config.metadata() == {
        "arch": "hrnet",
        "width": "18",
        "num_landmarks": "68",
        "input_size": "160",
        "sigma": "2.0",
        "enlarge": "1.25",
        "mean": "0.485,0.456,0.406",
        "std": "0.229,0.224,0.225",
        "point_calibration": "10.5,-6.25",
    }
    onnx = config.metadata(onnx=True)
    assert (onnx["kind"], onnx["options"], onnx["num_landmarks"]) == (
        "hrnet",
        '{"width": 18, "num_landmarks": 68}',
        "68",
    )
    detector = ModelConfig(MNET, max_size=960, train_size=320, score_threshold=0.55).metadata()
    assert detector == {
        "arch": "retinaface",
        "backbone": "mobilenet0.25",
        "mean": "104.0,117.0,123.0",
        "std": "1.0,1.0,1.0",
        "max_size": "960",
        "train_size": "320",
        "score_threshold": "0.55",
    }


def test_files_written_before_a_key_existed_read_as_the_runtime_then_used() -> None:
    """The shipped landmark model's metadata (no sigma, mean, std or enlarge): the values the runtime used for every
    model before they were recorded; the other kind's keys and unknown keys are ignored."""
    shipped = {
        "kind": "hrnet",
        "format": "1",
        "precision": "int8",
        "options": '{"width": 18, "num_landmarks": 68}',
        "input_size": "160",
        "num_landmarks": "68",
        "point_calibration": "10.7225,-6.7139",
        "max_size": "960",  # a detector's key: not a landmark model's
    }
    config = ModelConfig.from_metadata(shipped)
    assert (config.input_size, config.sigma, config.enlarge, config.max_size) == (160, 1.0, 1.25, None)
    assert (config.mean, config.std, config.point_calibration) == (LANDMARK_MEAN, LANDMARK_STD, (10.7225, -6.7139))
    v1 = ModelConfig.from_metadata(
        {"kind": "retinaface", "options": '{"backbone": "mobilenet0.25"}', "max_size": "480"}
    )
    assert (v1.max_size, v1.train_size, v1.score_threshold, v1.mean) == (480, None, None, DETECTOR_MEAN)
    # Over a registry entry, what the file records wins; the rest is the entry's.
    base = MODELS["hrface_w18_300w_v3"]
    read = ModelConfig.from_metadata({"sigma": "1.5", "input_size": ""}, W18, base=base)
    assert (read.sigma, read.input_size, read.name, read.metrics) == (1.5, 160, base.name, base.metrics)


@pytest.mark.parametrize(
    ("meta", "key", "unreadable"),
    [
        ({"input_size": "130"}, "input_size", False),
        ({"input_size": "big"}, "input_size", True),
        ({"sigma": "0"}, "sigma", False),
        ({"sigma": "nan"}, "sigma", False),
        ({"enlarge": "-1"}, "enlarge", False),
        ({"mean": "1,2"}, "mean", True),
        ({"std": "1,0,1"}, "std", False),
        ({"point_calibration": "x"}, "point_calibration", True),
        ({"metrics": "[{"}, "metrics", True),
        ({"num_landmarks": "0"}, "num_landmarks", False),
    ],
)
def test_values_no_model_can_have_are_refused(meta: dict[str, str], key: str, unreadable: bool) -> None:
    with pytest.raises(MetadataError, match=key) as info:
        ModelConfig.from_metadata({"kind": "hrnet", "options": '{"width": 18}', **meta})
    assert (info.value.key, info.value.unreadable) == (key, unreadable)
    with pytest.raises(MetadataError, match="kind"):
        ModelConfig.from_metadata({"input_size": "160"})  # no architecture: neither in the file nor given


def test_measurements_say_when_and_how() -> None:
    figure = Measurement("validation NME", 3.56, "%", "2026-12-07", "hrface eval-landmarks …")
    assert str(figure) == "validation NME: 3.56 % (2026-12-07; hrface eval-landmarks …)"
    published = MODELS["retinaface_mnet025"].metrics[0]
    assert "as published" in str(published) and published.value == 90.70


def test_a_landmark_model_trained_with_another_sigma_decodes_with_it(tmp_path) -> None:
    """The latent bug of issue 36: the training σ was not saved and the runtime decoded every 68-point model with
    σ 1.  Now the trainer saves its σ (``trained_config``), ``pack-weights --metadata sigma=…`` sets one, the ONNX
    export carries it, and the Landmarker decodes with it on every backend."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from hrface.cli.main import main
    from hrface.landmarks.heatmaps import heatmaps_to_image
    from hrface.models.hrnet import HRNet
    from hrface.models.registry import create_model
    from hrface.runtime.landmarker import Landmarker
    from hrface.training.landmarks.config import config_from_dict
    from hrface.training.landmarks.trainer import trained_config

    torch.manual_seed(0)
    net = HRNet(68, width=4).eval()
    run = config_from_dict({"model": {"width": 4}, "input_size": 128, "heatmap_size": 32, "sigma": 2.5})
    trained = tmp_path / "model.safetensors"  # as a run writes it
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(trained), trained_config(run).metadata())
    assert create_model(trained).hrface_config.sigma == 2.5
    packed = tmp_path / "packed.safetensors"  # a published-style checkpoint given its σ when packed
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "plain.safetensors"))
    assert main(["pack-weights", str(tmp_path / "plain.safetensors"), str(packed), "--metadata", "sigma=2.5"]) == 0
    assert (Landmarker(packed, backend="torch").sigma, Landmarker(packed, backend="torch").input_size) == (2.5, 256)

    image = np.random.default_rng(0).integers(0, 255, (200, 240, 3), dtype=np.uint8)
    boxes = np.array([[60.0, 40.0, 170.0, 160.0]])
    for backend in ("torch", "onnxruntime"):  # onnxruntime: through the export's hrface.sigma
        landmarker = Landmarker(trained, backend=backend)
        assert (landmarker.backend, landmarker.sigma, landmarker.input_size) == (backend, 2.5, 128)
        points, _ = landmarker.predict_peaks(image, boxes)
        crops, to_image = landmarker.crop(image, boxes)
        heatmaps = landmarker.forward(crops)
        expected, _ = heatmaps_to_image(heatmaps, to_image, 128, "dark", 2.5)
        old_way, _ = heatmaps_to_image(heatmaps, to_image, 128, "dark", heatmap_sigma(68))
        np.testing.assert_array_equal(points, expected)
        assert np.abs(points - old_way).max() > 1e-3  # the σ matters for these heatmaps: the test can tell
