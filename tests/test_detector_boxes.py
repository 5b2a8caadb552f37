"""Matching detections to annotated faces and the landmark-to-detector-box fallback mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hrface.data.landmarks.detector_boxes import BoxFromPoints, attach_detector_boxes, match_faces
from hrface.data.landmarks.samples import LandmarkSample, box_from_points
from hrface.landmarks.layouts import get_layout


def face_shape(cx: float, cy: float, size: float, seed: int = 0) -> np.ndarray:
    """A plausible 68-point frontal face: template points (jaw, brows, nose, eyes, mouth) scaled and moved."""
    rng = np.random.default_rng(seed)
    t = np.linspace(-1, 1, 17)
    jaw = np.stack([0.9 * t, 0.1 + 0.85 * (1 - t**2) ** 0.5], 1)
    brows = np.stack([np.r_[np.linspace(-0.75, -0.15, 5), np.linspace(0.15, 0.75, 5)], np.full(10, -0.45)], 1)
    bridge = np.stack([np.zeros(4), np.linspace(-0.3, 0.15, 4)], 1)
    nose = np.r_[bridge, np.stack([np.linspace(-0.2, 0.2, 5), np.full(5, 0.25)], 1)]
    eye = np.array([[-0.2, 0], [-0.1, -0.05], [0.0, -0.05], [0.1, 0], [0.0, 0.05], [-0.1, 0.05]])
    eyes = np.r_[eye + [-0.4, -0.2], eye + [0.4, -0.2]]
    mouth = np.r_[
        np.stack([np.linspace(-0.35, 0.35, 12), 0.55 + 0.05 * np.sin(np.linspace(0, 2 * np.pi, 12))], 1),
        np.stack([np.linspace(-0.25, 0.25, 8), np.full(8, 0.55)], 1),
    ]
    pts = np.r_[jaw, brows, nose, eyes, mouth]
    assert pts.shape == (68, 2)
    return pts * size / 2 + [cx, cy] + rng.normal(0, 0.002 * size, pts.shape)


def test_match_faces_pairs_by_keypoints_and_rejects_far_detections() -> None:
    layout = get_layout(68)
    faces = [face_shape(100, 100, 80, 1), face_shape(300, 120, 60, 2), face_shape(500, 500, 50, 3)]
    kp = np.stack([layout.five_points(f) for f in faces])
    # detections in another order, with noise; the third face's detection is far away (a miss)
    dets = np.stack([kp[1] + 1.0, kp[0] - 1.0, kp[2] + 40.0])
    assert match_faces(faces, dets) == [1, 0, None]
    assert match_faces(faces, np.zeros((0, 5, 2))) == [None, None, None]
    assert match_faces([], dets) == []


def test_one_detection_is_never_given_to_two_faces() -> None:
    layout = get_layout(68)
    a, b = face_shape(100, 100, 80, 1), face_shape(104, 100, 80, 2)  # two near-identical annotations
    det = layout.five_points(a)[None]
    assert sorted(match_faces([a, b], det), key=lambda m: m is None) == [0, None]


def test_box_mapping_fit_recovers_a_known_mapping() -> None:
    truth = BoxFromPoints(dx=0.01, dy=-0.18, sx=0.96, sy=1.3)
    shapes = [face_shape(100 + 10 * i, 80 + 5 * i, 60 + i, i) for i in range(20)]
    fitted = BoxFromPoints.fit(shapes, [truth(s) for s in shapes])
    for name in ("dx", "dy", "sx", "sy"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), abs=1e-9)
    np.testing.assert_allclose(BoxFromPoints()(shapes[0]), box_from_points(shapes[0]))


def test_attach_detector_boxes_uses_matches_and_fallback(tmp_path: Path) -> None:
    import cv2

    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), np.zeros((600, 700, 3), np.uint8))
    layout = get_layout(68)
    faces = [face_shape(150, 150, 100, 1), face_shape(450, 300, 120, 2)]
    samples = [LandmarkSample(image, f, photo="photo") for f in faces]
    det_box = np.array([90.0, 80.0, 210.0, 230.0])

    def detect(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert img.shape == (600, 700, 3)
        return det_box[None], layout.five_points(faces[0])[None]  # only the first face is detected

    fallback = BoxFromPoints(dy=-0.2, sy=1.3)
    out, report = attach_detector_boxes(samples, detect, fallback)
    assert (report.faces, report.matched, report.missed) == (2, 1, 1)
    np.testing.assert_array_equal(out[0].box, det_box)
    np.testing.assert_allclose(out[1].box, fallback(faces[1]))
    assert out[1].crop_box() is out[1].box
