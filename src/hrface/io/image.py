"""Image input/output.

Conventions: images are ``numpy.ndarray`` of dtype ``uint8``, shape ``H×W×3``, channel order **BGR**
(OpenCV's), C-contiguous; pixel coordinates are 0-based ``(x, y)`` with ``(0, 0)`` the centre of the
top-left pixel.  Alpha channels are discarded (not composited): a transparent pixel keeps its colour.

Every user-caused failure raises an :class:`~hrface.errors.ImageLoadError` (or
:class:`ImageWriteError`) whose message is one line: ``"<path>: <what is wrong>; <what to do>"``.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hrface.errors import ConfigError, HrfaceError, ImageLoadError, ImageTooLargeError, one_line
from hrface.io.files import atomic_write_bytes

__all__ = ["DEFAULT_MAX_PIXELS", "ImageWriteError", "max_pixels_limit", "read_image", "to_bgr", "write_image"]

DEFAULT_MAX_PIXELS = 150_000_000
"""Default cap on width × height: 150 megapixels (~450 MB as BGR uint8).  Larger files are refused
from their header, before decoding.  Override per call (``max_pixels=``) or with the environment
variable ``HRFACE_MAX_PIXELS`` (read at each call); it replaces Pillow's decompression-bomb check."""

_WRITE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
_JPEG_QUALITY = 95
_pil_limit_lock = threading.Lock()


class ImageWriteError(HrfaceError):
    """An image could not be encoded or written (unsupported suffix, unwritable path)."""


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The effective pixel cap: ``max_pixels``, else ``$HRFACE_MAX_PIXELS``, else the default."""
    if max_pixels is None:
        raw = os.environ.get("HRFACE_MAX_PIXELS", "").strip()
        if not raw:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(raw.replace("_", ""))
        except ValueError:
            raise ConfigError(
                f"HRFACE_MAX_PIXELS={one_line(raw, 40)!r} is not an integer; set it to a pixel count "
                f"such as 200000000, or unset it for the default {DEFAULT_MAX_PIXELS}"
            ) from None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels <= 0:
        raise ConfigError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    return max_pixels


def _too_large(where: str, width: int, height: int, cap: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{where}: image is {width}x{height} = {width * height} pixels, above the limit of {cap} "
        f"pixels; downscale it, or raise the limit with max_pixels= or HRFACE_MAX_PIXELS"
    )


def _u16_to_u8(a: np.ndarray) -> np.ndarray:
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


def _int_to_u8(a: np.ndarray) -> np.ndarray:
    """Pillow mode ``I``: 16-bit data (0..65535) → /257; anything wider is min-max rescaled."""
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    return _u16_to_u8(a) if lo >= 0 and hi <= 65535 else _minmax_to_u8(a, lo, hi)


def _channels_to_bgr(a: np.ndarray, *, rgb: bool) -> np.ndarray:
    """uint8 H×W, H×W×1, H×W×3 or H×W×4 → new uint8 BGR H×W×3 (alpha dropped)."""
    if a.ndim == 2 or a.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(a.reshape(a.shape[:2])), cv2.COLOR_GRAY2BGR)
    if a.shape[2] == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a[:, :, ::-1]) if rgb else np.array(a, order="C", copy=True)


def _pil_to_bgr(im: Any, where: str) -> np.ndarray:
    """Decoded PIL image (any mode) → uint8 BGR H×W×3."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        a = np.asarray(im)
        g = _u16_to_u8(a) if a.dtype.itemsize == 2 else _int_to_u8(a)
        return _channels_to_bgr(g, rgb=False)
    if mode == "F":
        return _channels_to_bgr(_float_to_u8(np.asarray(im), where, rescale=True), rgb=False)
    if mode != "RGB":
        try:
            im = im.convert("RGB")  # L, LA, P, PA, 1, CMYK, YCbCr, RGBA, ... (alpha discarded)
        except (ValueError, OSError) as e:
            raise ImageLoadError(
                f"{where}: unsupported colour mode {mode} ({one_line(e, 80)}); save the image as RGB"
            ) from None
    return cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR)


def _orientation(im: Any) -> int:
    """EXIF orientation tag of a PIL image (1 when absent or unreadable)."""
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:
        return 1


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1–8) to an H×W[×C] array, like ``ImageOps.exif_transpose``."""
    if orientation in (5, 6, 7, 8):  # these swap width and height
        a = a.swapaxes(0, 1)
        orientation = {5: 1, 6: 2, 7: 3, 8: 4}[orientation]
    flips = {2: a[:, ::-1], 3: a[::-1, ::-1], 4: a[::-1]} if orientation in (2, 3, 4) else {}
    return np.ascontiguousarray(flips.get(orientation, a))


@contextlib.contextmanager
def _pillow_bomb_check_replaced(cap: int) -> Iterator[None]:
    """Silence Pillow's DecompressionBombWarning (our ``cap`` is checked instead).

    Pillow's hard error (above 2 × ``PIL.Image.MAX_IMAGE_PIXELS``) stays unless ``cap`` is larger;
    then the user asked for more and the limit is lifted for this read only (under a lock).
    """
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        limit = Image.MAX_IMAGE_PIXELS
        if limit is None or cap <= 2 * limit:
            yield
            return
        with _pil_limit_lock:
            Image.MAX_IMAGE_PIXELS = None
            try:
                yield
            finally:
                Image.MAX_IMAGE_PIXELS = limit


def _is_16bit_colour(im: Any) -> bool:
    """True for 16-bit-per-channel colour data that Pillow would reduce to 8 bits by truncation."""
    if im.mode not in ("RGB", "RGBA", "RGBX", "LA"):
        return False
    for tile in getattr(im, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _decode_16bit_colour(path: Path, where: str) -> np.ndarray:
    """Decode a 16-bit colour PNG/TIFF with OpenCV and scale it to 8 bits (round(v / 257))."""
    data = np.fromfile(path, dtype=np.uint8)
    a = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if a is None or a.ndim not in (2, 3):
        raise ImageLoadError(f"{where}: 16-bit image data could not be decoded; re-export it as 8-bit")
    if a.ndim == 3 and a.shape[2] == 2:  # gray + alpha
        a = a[:, :, :1]
    a = _u16_to_u8(a) if a.dtype.itemsize == 2 else a.astype(np.uint8)
    return _channels_to_bgr(a, rgb=False)  # OpenCV already gives BGR(A)


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as a new C-contiguous uint8 BGR ``H×W×3`` array.

    Decoding is strict (truncated or corrupt files raise, never a partly grey image); the EXIF
    orientation is applied; multi-frame files (GIF, TIFF) give their first frame.  Grey, palette,
    CMYK and YCbCr images become 3-channel; alpha is discarded.  16-bit data (``I;16*``/``I``
    modes, 16-bit RGB(A) PNG/TIFF) is scaled with ``round(v / 257)``; float (``F``) data in [0, 1]
    is scaled by 255, other float ranges are min-max rescaled.  Images with more than
    ``max_pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS` or ``$HRFACE_MAX_PIXELS``) raise
    :class:`~hrface.errors.ImageTooLargeError` before their pixel data is decoded.

    Raises :class:`~hrface.errors.ImageLoadError` with a one-line message otherwise.  Pillow's
    global ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left untouched (strictness assumes it is False,
    its default).
    """
    cap = max_pixels_limit(max_pixels)
    where = str(path)
    if Path(path).is_dir():
        raise ImageLoadError(f"{where}: is a directory, not an image file; pass the image files in it")
    with _pillow_bomb_check_replaced(cap):
        return _read(Path(path), where, cap)


def _read(p: Path, where: str, cap: int) -> np.ndarray:
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        if p.stat().st_size == 0:
            raise ImageLoadError(f"{where}: file is empty (0 bytes); re-copy or re-export the image")
        im = Image.open(p)  # lazy: reads the header only
    except FileNotFoundError:
        raise ImageLoadError(f"{where}: file not found; check the path") from None
    except PermissionError:
        raise ImageLoadError(f"{where}: permission denied; check the file's permissions") from None
    except UnidentifiedImageError:
        raise ImageLoadError(
            f"{where}: not a recognised image file (unknown or corrupt format); "
            "pass a JPEG, PNG, BMP, WebP, TIFF, PNM or GIF image"
        ) from None
    except Image.DecompressionBombError as e:  # only when cap < Pillow's hard limit < image size
        m = re.search(r"\((\d+) pixels\)", str(e))
        raise ImageTooLargeError(
            f"{where}: image has {m.group(1) if m else 'too many'} pixels, above the limit of {cap} "
            "pixels; downscale it, or raise the limit with max_pixels= or HRFACE_MAX_PIXELS"
        ) from None
    except OSError as e:
        raise ImageLoadError(f"{where}: cannot open file ({one_line(e, 120)}); check the path") from None

    with im:
        width, height = im.size
        if width * height > cap:
            raise _too_large(where, width, height, cap)
        try:
            sixteen = _is_16bit_colour(im)
            im.load()
            if sixteen:
                return _apply_orientation(_decode_16bit_colour(p, where), _orientation(im))
            with contextlib.suppress(Exception):  # a broken EXIF block must not lose the image
                ImageOps.exif_transpose(im, in_place=True)
            return _pil_to_bgr(im, where)
        except ImageLoadError:
            raise
        except Image.DecompressionBombError:
            raise _too_large(where, width, height, cap) from None
        except MemoryError:
            msg = f"{where}: out of memory decoding {width}x{height} pixels; downscale the image"
            raise ImageLoadError(msg) from None
        except Exception as e:  # decoders raise OSError, SyntaxError, ValueError, zlib.error...
            if "truncated" in str(e).lower() or isinstance(e, EOFError):
                raise ImageLoadError(
                    f"{where}: image data is truncated (incomplete file); re-copy or re-download it"
                ) from None
            raise ImageLoadError(
                f"{where}: image data is corrupt or unsupported ({type(e).__name__}: {one_line(e, 120)}); "
                "re-export the image as JPEG or PNG"
            ) from None


def to_bgr(image: Any, *, rgb: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """Convert a path, numpy array or PIL image to a new C-contiguous uint8 BGR ``H×W×3`` array.

    * ``str`` / ``os.PathLike``: :func:`read_image`.
    * numpy arrays of shape ``H×W``, ``H×W×1`` (grey), ``H×W×3`` (BGR, or RGB when ``rgb=True``)
      or ``H×W×4`` (BGRA/RGBA, alpha dropped).  dtypes: ``uint8`` as is; ``bool`` → 0/255;
      ``uint16`` → ``round(v / 257)``; floats must lie in [0, 1] and are scaled by 255; other
      integer dtypes must lie in 0..255.
    * ``PIL.Image.Image``: always RGB semantics (``rgb`` is ignored), any mode; EXIF orientation
      is *not* applied (call ``ImageOps.exif_transpose`` first if needed).

    ``max_pixels`` caps every kind of input (see :func:`read_image`).  The result never shares
    memory with the input.  Anything else raises :class:`~hrface.errors.ImageLoadError`.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, max_pixels=max_pixels)
    cap = max_pixels_limit(max_pixels)
    if isinstance(image, np.ndarray):
        return _array_to_bgr(image, rgb=rgb, cap=cap)
    if "PIL.Image" in sys.modules:
        from PIL import Image

        if isinstance(image, Image.Image):
            where = f"PIL image ({image.mode}, {image.width}x{image.height})"
            if image.width * image.height > cap:
                raise _too_large(where, image.width, image.height, cap)
            if image.width == 0 or image.height == 0:
                raise ImageLoadError(f"{where}: image is empty; pass an image with at least one pixel")
            try:
                image.load()
            except Exception as e:  # lazily opened images decode here
                msg = f"{where}: cannot load pixel data ({one_line(e, 120)}); pass a complete image"
                raise ImageLoadError(msg) from None
            return _pil_to_bgr(image, where)
    raise ImageLoadError(
        f"unsupported image type {type(image).__module__}.{type(image).__qualname__}; pass a file path, "
        "a numpy array (H×W×3 uint8 BGR) or a PIL image"
    )


def _array_to_bgr(a: np.ndarray, *, rgb: bool, cap: int) -> np.ndarray:
    a = np.asarray(a)
    where = f"array {a.dtype}{list(a.shape)}"
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise ImageLoadError(f"{where}: unsupported shape; pass H×W, H×W×1 (grey), H×W×3 (BGR) or H×W×4")
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise ImageLoadError(f"{where}: image is empty; pass an image with at least one pixel")
    if h * w > cap:
        raise _too_large(where, w, h, cap)
    kind = a.dtype.kind
    if a.dtype == np.uint8:
        out = a
    elif kind == "b":
        out = a.astype(np.uint8) * np.uint8(255)
    elif kind == "u" and a.dtype.itemsize == 2:  # uint16, either byte order
        out = _u16_to_u8(a)
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
    return _channels_to_bgr(out, rgb=rgb)


def write_image(path: str | os.PathLike[str], image_bgr: np.ndarray) -> None:
    """Encode ``image_bgr`` (uint8 BGR ``H×W×3``; anything :func:`to_bgr` accepts) by the file
    suffix and write it atomically, creating parent directories.

    Supported suffixes: .jpg/.jpeg (quality 95), .png, .bmp, .webp, .tif/.tiff, .ppm.  Raises
    :class:`ImageWriteError` (one line) for an unsupported suffix or an unwritable path.
    """
    where = str(path)
    suffix = Path(path).suffix.lower()
    if suffix not in _WRITE_EXTENSIONS or not cv2.haveImageWriter(f"x{suffix}"):
        raise ImageWriteError(
            f"{where}: cannot write images with suffix {suffix or '(none)'!r}; "
            f"use one of {', '.join(_WRITE_EXTENSIONS)}"
        )
    try:
        bgr = to_bgr(image_bgr, max_pixels=sys.maxsize)
    except ImageLoadError as e:
        raise ImageWriteError(f"{where}: cannot write this image: {e}") from None
    params = [cv2.IMWRITE_JPEG_QUALITY, _JPEG_QUALITY] if suffix in (".jpg", ".jpeg") else []
    try:
        ok, buf = cv2.imencode(suffix, bgr, params)
    except cv2.error as e:
        raise ImageWriteError(f"{where}: encoding failed ({one_line(e, 120)}); try .png") from None
    if not ok:
        raise ImageWriteError(f"{where}: encoding as {suffix} failed; try .png")
    try:
        atomic_write_bytes(path, buf.tobytes())
    except OSError as e:
        reason = one_line(e.strerror or e, 80)
        msg = f"{where}: cannot write file ({reason}); check the folder and its permissions"
        raise ImageWriteError(msg) from None
