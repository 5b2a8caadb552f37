"""Pixel data in memory → uint8 BGR ``H×W×3``: numpy arrays, PIL images, value ranges, EXIF orientation, the
pixel cap.  File reading and writing live in :mod:`hrface.io.image`; :func:`hrface.io.image.to_bgr` is the
one entry point that dispatches here.

Every user-caused failure raises an :class:`~hrface.errors.ImageLoadError` whose message is one line:
``"<what was passed>: <what is wrong>; <what to do>"``.
"""

from __future__ import annotations

import os
from typing import Any

import cv2
import numpy as np

from hrface.errors import ConfigError, ImageLoadError, ImageTooLargeError, one_line

DEFAULT_MAX_PIXELS = 150_000_000
"""Default cap on width × height: 150 megapixels (~450 MB as BGR uint8).  Larger files are refused
from their header, before decoding.  Override per call (``max_pixels=``) or with the environment
variable ``HRFACE_MAX_PIXELS`` (read at each call); it replaces Pillow's decompression-bomb check."""


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The effective pixel cap: ``max_pixels``, else ``$HRFACE_MAX_PIXELS``, else the default."""
    if max_pixels is None:
        raw = os.environ.get("HRFACE_MAX_PIXELS", "").strip()
        if not raw:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels, problem = int(raw.replace("_", "")), "is not above 0"
        except ValueError:
            max_pixels, problem = 0, "is not an integer"
        if max_pixels <= 0:
            raise ConfigError(
                f"HRFACE_MAX_PIXELS={one_line(raw, 40)!r} {problem}; set it to a whole number of pixels above 0, "
                f"such as 200000000, or unset it for the default {DEFAULT_MAX_PIXELS}"
            )
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ConfigError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    return max_pixels


def too_large_error(where: str, width: int, height: int, cap: int) -> ImageTooLargeError:
    """The one-line error for an image of ``width`` × ``height`` pixels above ``cap``."""
    return ImageTooLargeError(
        f"{where}: image is {width}x{height} = {width * height} pixels, above the limit of {cap} "
        f"pixels; downscale it, or raise the limit with max_pixels= or HRFACE_MAX_PIXELS"
    )


def u16_to_u8(a: np.ndarray) -> np.ndarray:
    """Exact ``round(v / 257)`` for 16-bit values (65535 → 255)."""
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _float_to_u8(a: np.ndarray, where: str, *, rescale: bool) -> np.ndarray:
    """[0, 1] floats → ``round(v * 255)``; other ranges are min-max rescaled or refused."""
    if a.size and not np.isfinite(a).all():
        raise ImageLoadError(f"{where}: image contains NaN or infinite values; pass finite pixel values")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= -1e-3 and hi <= 1 + 1e-3:
        return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    if not rescale:
        raise ImageLoadError(
            f"{where}: float image values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]; "
            "divide by 255 or convert to uint8 first"
        )
    return _minmax_to_u8(a, lo, hi)


def _minmax_to_u8(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear rescale of [lo, hi] to [0, 255] (for data of unknown range: mode ``F``, wide ``I``)."""
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.rint((a.astype(np.float64) - lo) * scale).astype(np.uint8)


def _int_to_u8(a: np.ndarray, *, sixteen_bit: bool) -> np.ndarray:
    """Pillow mode ``I`` (int32): values of 8-bit data (0..255, unless the file declares 16 bits) as they
    are; 16-bit data (0..65535) → /257; anything wider is min-max rescaled."""
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    if lo >= 0 and hi <= 255 and not sixteen_bit:
        return a.astype(np.uint8)
    return u16_to_u8(a) if lo >= 0 and hi <= 65535 else _minmax_to_u8(a, lo, hi)


def channels_to_bgr(a: np.ndarray, *, rgb: bool) -> np.ndarray:
    """uint8 H×W, H×W×1, H×W×3 or H×W×4 → new uint8 BGR H×W×3 (alpha dropped)."""
    if a.ndim == 2 or a.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(a.reshape(a.shape[:2])), cv2.COLOR_GRAY2BGR)
    if a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a[:, :, ::-1]) if rgb else np.array(a, order="C", copy=True)


def pil_to_bgr(im: Any, where: str, *, sixteen_bit: bool = False) -> np.ndarray:
    """Decoded PIL image (any mode) → uint8 BGR H×W×3; ``sixteen_bit``: its file declared 16-bit samples."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im)
        g = u16_to_u8(a) if a.dtype.itemsize == 2 else _int_to_u8(a, sixteen_bit=sixteen_bit)
        return channels_to_bgr(g, rgb=False)
    if mode == "F":
        return channels_to_bgr(_float_to_u8(np.asarray(im), where, rescale=True), rgb=False)
    if mode != "RGB":
        try:
            im = im.convert("RGB")  # L, LA, P, PA, 1, CMYK, YCbCr, RGBA, ... (alpha discarded)
        except (ValueError, OSError) as e:
            raise ImageLoadError(
                f"{where}: unsupported colour mode {mode} ({one_line(e, 80)}); save the image as RGB"
            ) from None
    return cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR)


def exif_orientation(im: Any) -> int:
    """EXIF orientation tag of a PIL image (1 when absent or unreadable)."""
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:
        return 1


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to an H×W[×C] array, like ``ImageOps.exif_transpose``."""
    if orientation in (5, 6, 7, 8):  # these swap width and height
        a = a.swapaxes(0, 1)
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]
    flips = {2: a[:, ::-1], 3: a[::-1, ::-1], 4: a[::-1]} if orientation in (2, 3, 4) else {}
    return np.ascontiguousarray(flips.get(orientation, a))


def pil_image_to_bgr(image: Any, cap: int) -> np.ndarray:
    """An in-memory PIL image (RGB semantics, any mode) → uint8 BGR H×W×3 with its EXIF orientation applied
    (as for a file), refused above ``cap`` pixels.  The image itself is not changed."""
    where = f"PIL image ({image.mode}, {image.width}x{image.height})"
    if image.width * image.height > cap:
        raise too_large_error(where, image.width, image.height, cap)
    if image.width == 0 or image.height == 0:
        raise ImageLoadError(f"{where}: image is empty; pass an image with at least one pixel")
    try:
        image.load()
    except Exception as e:  # lazily opened images decode here
        msg = f"{where}: cannot load pixel data ({one_line(e, 120)}); pass a complete image"
        raise ImageLoadError(msg) from None
    return apply_orientation(pil_to_bgr(image, where), exif_orientation(image))


def array_to_bgr(a: np.ndarray, *, rgb: bool, cap: int, copy: bool = True) -> np.ndarray:
    """A numpy image (see :func:`hrface.io.image.to_bgr` for the accepted shapes and dtypes) → uint8 BGR:
    a new array, or with ``copy=False`` the array itself when it already is C-contiguous uint8 BGR H×W×3."""
    a = np.asarray(a)
    where = f"array {a.dtype}{list(a.shape)}"
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageLoadError(f"{where}: unsupported shape; pass H×W, H×W×1 (grey), H×W×3 (BGR) or H×W×4")
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise ImageLoadError(f"{where}: image is empty; pass an image with at least one pixel")
    if h * w > cap:
        raise too_large_error(where, w, h, cap)
    if not copy and not rgb and a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and a.flags.c_contiguous:
        return a
    kind = a.dtype.kind
    if a.dtype == np.uint8:
        out = a
    elif kind == "b":
        out = a.astype(np.uint8) * np.uint8(255)
    elif kind == "u" and a.dtype.itemsize == 2:  # uint16, either byte order
        out = u16_to_u8(a)
    elif kind == "f":
        out = _float_to_u8(a, where, rescale=False)
    elif kind in "iu":
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise ImageLoadError(
                f"{where}: integer values must lie in 0..255, got {lo}..{hi}; convert to uint8 "
                "(or uint16 for 16-bit data)"
            )
        out = a.astype(np.uint8)
    else:
        raise ImageLoadError(f"{where}: unsupported dtype; pass uint8, uint16, bool or float in [0, 1]")
    return channels_to_bgr(out, rgb=rgb)
