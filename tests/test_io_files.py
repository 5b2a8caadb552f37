"""hrface.io.files and image writing: file discovery, output checks, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import check_error, make_unreadable_folder
from hrface.errors import HrfaceError, ImageLoadError
from hrface.io import (
    IMAGE_EXTENSIONS,
    ImageWriteError,
    atomic_write_bytes,
    atomic_write_text,
    iter_image_files,
    read_image,
    write_image,
)
from hrface.io.files import FolderIssue, check_writable_file, check_writable_folder, walk_images

RGB = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)  # H=24, W=32


def test_iter_image_files(tmp_path):
    root = tmp_path / "photos"
    files = ["b.JPG", "a.png", "sub/z.webp", "sub/deeper/c.TIFF", "a_dir/x.jpeg", "notes.txt", "q.Gif"]
    files += [".hidden.jpg", ".cache/y.png", "sub/README", "sub/.d.png"]  # hidden or not images
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_bytes(b"x")
    assert {".jpg", ".png", ".tif", ".gif", ".pgm"} <= IMAGE_EXTENSIONS
    found = list(iter_image_files([root]))
    names = ["a.png", "a_dir/x.jpeg", "b.JPG", "q.Gif", "sub/deeper/c.TIFF", "sub/z.webp"]
    expected = [root / f for f in names]
    assert found == expected
    assert found == sorted(found, key=lambda p: p.relative_to(root).parts)
    # explicit files come as given (any extension, hidden or missing), in input order
    explicit = [str(root / "notes.txt"), root / ".hidden.jpg", tmp_path / "missing.jpg", root / "sub"]
    got = list(iter_image_files(explicit))
    assert got[:3] == [root / "notes.txt", root / ".hidden.jpg", tmp_path / "missing.jpg"]
    assert got[3:] == [root / "sub/deeper/c.TIFF", root / "sub/z.webp"]
    assert list(iter_image_files(str(root / "a.png"))) == [root / "a.png"]  # a single path
    with pytest.raises(ImageLoadError):
        read_image(got[2])


def test_walk_images_reports_what_it_cannot_search(tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "sub" / "a.png"), RGB)
    locked = make_unreadable_folder(root / "locked")
    os.mkfifo(root / "fifo.jpg")
    (root / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (root / "trips").symlink_to(tmp_path / "moved-away")  # a folder link whose target was moved
    (root / "loop").symlink_to(root / "loop")
    (root / "sub" / "back").symlink_to(root, target_is_directory=True)
    found = list(walk_images(root))
    paths = [f for f in found if isinstance(f, Path)]
    issues = {f.path.name: f for f in found if isinstance(f, FolderIssue)}
    assert paths == [root / "fifo.jpg", root / "gone.jpg", root / "sub" / "a.png"]  # read_image explains the first two
    assert set(issues) == {"locked", "loop", "back", "trips"}
    assert issues["locked"].error and issues["locked"].message.startswith(f"{locked}: cannot list this folder (")
    assert issues["locked"].message.endswith("; its images were not searched")
    assert not issues["back"].error and "link to a folder already searched" in issues["back"].message
    for name in ("loop", "trips"):
        assert not issues[name].error
        assert issues[name].message == f"{root / name}: broken or looping symbolic link; skipped"
    assert list(iter_image_files(root)) == [root / "fifo.jpg", root / "gone.jpg", locked, root / "sub" / "a.png"]


def test_output_checks_raise_what_a_write_would(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError):
        check_writable_folder(a_file)
    with pytest.raises(NotADirectoryError):
        check_writable_file(a_file / "out.jsonl")  # its folder would be a file
    with pytest.raises(IsADirectoryError):
        check_writable_file(tmp_path)
    check_writable_file(tmp_path / "new" / "deeper" / "out.jsonl")
    assert (tmp_path / "new" / "deeper").is_dir() and not list((tmp_path / "new" / "deeper").iterdir())


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_write_image_round_trip(tmp_path):
    bgr = np.ascontiguousarray(RGB[:, :, ::-1])
    for suffix in (".png", ".bmp", ".ppm", ".tiff"):
        p = tmp_path / "out" / "deep" / f"r{suffix}"
        write_image(p, bgr)
        np.testing.assert_array_equal(read_image(p), bgr)
    p = tmp_path / "out" / "r.JPG"
    smooth = np.zeros((64, 64, 3), np.uint8) + np.array([30, 120, 220], np.uint8)
    write_image(p, smooth)
    np.testing.assert_allclose(read_image(p).astype(int), smooth, atol=3)
    write_image(p, RGB[:, :, 0])  # grey input; overwrites atomically
    assert read_image(p).shape == (24, 32, 3)
    assert leftovers(tmp_path / "out") == [] and leftovers(tmp_path / "out" / "deep") == []


def test_write_image_errors(tmp_path):
    with pytest.raises(ImageWriteError) as e:
        write_image(tmp_path / "x.xyz", RGB)
    assert ".xyz" in check_error(e, tmp_path / "x.xyz")
    with pytest.raises(ImageWriteError) as e:
        write_image(tmp_path / "x.png", np.zeros((4, 4, 2), np.uint8))
    check_error(e, tmp_path / "x.png")
    target = tmp_path / "isdir.png"
    target.mkdir()
    with pytest.raises(ImageWriteError) as e:
        write_image(target, RGB)
    check_error(e, target)
    assert leftovers(tmp_path) == []
    assert issubclass(ImageWriteError, HrfaceError)


def test_atomic_write_helpers(tmp_path):
    p = tmp_path / "a" / "b.jsonl"
    atomic_write_text(p, "héllo\n")
    assert p.read_bytes() == "héllo\n".encode()
    atomic_write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    reference = tmp_path / "plain.txt"
    reference.write_bytes(b"")
    assert p.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777  # not mkstemp's 0o600
    assert leftovers(p.parent) == []
