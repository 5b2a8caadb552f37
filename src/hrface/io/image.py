"""Image input/output.

Conventions: images are ``numpy.ndarray`` of dtype ``uint8``, shape ``H×W×3``, channel order **BGR**
(OpenCV's), C-contiguous; pixel coordinates are 0-based ``(x, y)`` with ``(0, 0)`` the centre of the
top-left pixel.  Alpha channels are discarded (not composited): a transparent pixel keeps its colour.

Every user-caused failure raises an :class:`~hrface.errors.ImageLoadError` (or
:class:`ImageWriteError`) whose message is one line: ``"<path>: <what is wrong>; <what to do>"``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from hrface.errors import ImageLoadError, ImageTooLargeError, OutputError, one_line, os_reason
from hrface.io.files import atomic_write_bytes
from hrface.io.pixels import (
    DEFAULT_MAX_PIXELS,
    apply_orientation,
    array_to_bgr,
    channels_to_bgr,
    exif_orientation,
    max_pixels_limit,
    pil_image_to_bgr,
    pil_to_bgr,
    too_large_error,
    u16_to_u8,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageWriteError",
    "decode_image_bytes",
    "frame_count",
    "max_pixels_limit",
    "read_image",
    "to_bgr",
    "write_image",
]

_WRITE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
_JPEG_QUALITY = 95
_pil_limit_lock = threading.Lock()


class ImageWriteError(OutputError):
    """An image could not be encoded or written (unsupported suffix, unwritable path)."""


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


def _declares_16bit(im: Any) -> bool:
    """True when an opened, not yet loaded, PIL image's file stores 16-bit samples (its raw mode says ``;16``)."""
    for tile in getattr(im, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _is_16bit_colour(im: Any) -> bool:
    """True for 16-bit-per-channel colour data that Pillow would reduce to 8 bits by truncation."""
    return im.mode in ("RGB", "RGBA", "RGBX", "LA") and _declares_16bit(im)


def _decode_16bit_colour(source: Path | io.BytesIO, where: str) -> np.ndarray:
    """Decode a 16-bit colour PNG/TIFF (a file, or bytes in memory) with OpenCV and scale it to 8 bits
    (round(v / 257))."""
    if isinstance(source, io.BytesIO):
        data = np.frombuffer(source.getbuffer(), dtype=np.uint8)
    else:
        data = np.fromfile(source, dtype=np.uint8)
    a = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if a is None or a.ndim not in (2, 3):
        raise ImageLoadError(f"{where}: 16-bit image data could not be decoded; re-export it as 8-bit")
    if a.ndim == 3 and a.shape[2] == 2:  # gray + alpha
        a = a[:, :, :1]
    a = u16_to_u8(a) if a.dtype.itemsize == 2 else a.astype(np.uint8)
    return channels_to_bgr(a, rgb=False)  # OpenCV already gives BGR(A)


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None, where: str | None = None) -> np.ndarray:
    """Read an image file as a new C-contiguous uint8 BGR ``H×W×3`` array.

    Decoding is strict (truncated or corrupt files raise, never a partly grey image); the EXIF
    orientation is applied; multi-frame files (GIF, TIFF) give their first frame (see
    :func:`frame_count`).  What is not a regular file (a FIFO, a device, a broken or looping link) is
    refused before it is opened.  Grey, palette,
    CMYK and YCbCr images become 3-channel; alpha is discarded.  16-bit data (``I;16*``/``I``
    modes, 16-bit RGB(A) PNG/TIFF) is scaled with ``round(v / 257)``; float (``F``) data in [0, 1]
    is scaled by 255, other float ranges are min-max rescaled.  Images with more than
    ``max_pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS` or ``$HRFACE_MAX_PIXELS``) raise
    :class:`~hrface.errors.ImageTooLargeError` before their pixel data is decoded.

    Raises :class:`~hrface.errors.ImageLoadError` with a one-line message otherwise.  Pillow's
    global ``ImageFile.LOAD_TRUNCATED_IMAGES`` is left untouched (strictness assumes it is False,
    its default).  ``where`` names the image in error messages (default: ``path``).
    """
    cap = max_pixels_limit(max_pixels)
    where = str(path) if where is None else where
    _check_regular_file(Path(path), where)
    with _pillow_bomb_check_replaced(cap):
        return _read(Path(path), where, cap)


def decode_image_bytes(data: bytes, where: str, *, max_pixels: int | None = None) -> np.ndarray:
    """Decode the bytes of an image file (read elsewhere: object storage, an archive, a Ray dataset) exactly
    as :func:`read_image` decodes a file, with the same conversions, pixel cap and one-line
    :class:`~hrface.errors.ImageLoadError` messages; ``where`` names the image in them (its path or URI)."""
    cap = max_pixels_limit(max_pixels)
    if not data:
        raise ImageLoadError(f"{where}: file is empty (0 bytes); re-copy or re-export the image")
    with _pillow_bomb_check_replaced(cap):
        return _read(io.BytesIO(data), where, cap)


_FILE_KINDS = {
    stat.S_IFIFO: "FIFO (named pipe)",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFSOCK: "socket",
}


def _check_regular_file(p: Path, where: str) -> None:
    """Refuse, with a one-line :class:`ImageLoadError`, a path that is not a non-empty regular file.

    Checked before opening: opening a FIFO would wait for a writer, and a device never ends.
    """
    try:
        st = p.stat()
    except FileNotFoundError:
        if p.is_symlink():
            raise ImageLoadError(
                f"{where}: broken symbolic link (its target {os.readlink(p)} does not exist); fix or remove the link"
            ) from None
        raise ImageLoadError(f"{where}: file not found; check the path") from None
    except OSError as e:  # a link loop (ELOOP), a path through a file (ENOTDIR), ...
        raise ImageLoadError(f"{where}: cannot open file ({os_reason(e)}); check the path") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(f"{where}: is a directory, not an image file; pass the image files in it")
    if not stat.S_ISREG(st.st_mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(st.st_mode), "special file")
        raise ImageLoadError(f"{where}: not a regular file but a {kind}; pass an image file")
    if st.st_size == 0:
        raise ImageLoadError(f"{where}: file is empty (0 bytes); re-copy or re-export the image")


def frame_count(path: str | os.PathLike[str] | IO[bytes]) -> int:
    """Frames (animated GIF, PNG or WebP) or pages (TIFF) in an image file (or a binary file object); 1 for a
    still image or when the file cannot tell.  :func:`read_image` gives the first only."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(path) as im:
                return max(1, int(getattr(im, "n_frames", 1)))
        except Exception:  # read_image reports unreadable files; this only counts
            return 1


_STILL_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")
"""ISO-BMFF brands of still images (HEIF, AVIF), which share the MP4 container's ``ftyp`` box."""


def _video_extension(p: Path | io.BytesIO) -> tuple[str, str] | None:
    """For data that is not an image: the video container its first bytes announce and the extension it takes
    (``("MP4/QuickTime", ".mp4")``), or None."""
    try:
        if isinstance(p, io.BytesIO):
            head = p.getvalue()[:12]
        else:
            with open(p, "rb") as f:
                head = f.read(12)
    except OSError:
        return None
    if (head[4:8] == b"ftyp" and head[8:12] not in _STILL_BRANDS) or head[4:8] in (b"moov", b"mdat", b"wide"):
        return "MP4/QuickTime", ".mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM", ".mkv"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI", ".avi"
    return None


def _read(p: Path | io.BytesIO, where: str, cap: int) -> np.ndarray:
    """Decode a file, or the bytes of one (``io.BytesIO``), as :func:`read_image` describes."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        im = Image.open(p)  # lazy: reads the header only
    except FileNotFoundError:
        raise ImageLoadError(f"{where}: file not found; check the path") from None
    except PermissionError:
        raise ImageLoadError(f"{where}: permission denied; check the file's permissions") from None
    except UnidentifiedImageError:
        video = _video_extension(p)
        if video is not None:
            raise ImageLoadError(
                f"{where}: a video named as an image ({video[0]} video data, not an image); "
                f"rename it to end in {video[1]} to analyse it as a video"
            ) from None
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
        raise ImageLoadError(f"{where}: cannot open file ({os_reason(e)}); check the path") from None

    with im:
        width, height = im.size
        if width * height > cap:
            raise too_large_error(where, width, height, cap)
        try:
            sixteen_colour, sixteen = _is_16bit_colour(im), _declares_16bit(im)
            im.load()
            if sixteen_colour:
                return apply_orientation(_decode_16bit_colour(p, where), exif_orientation(im))
            with contextlib.suppress(Exception):  # a broken EXIF block must not lose the image
                ImageOps.exif_transpose(im, in_place=True)
            return pil_to_bgr(im, where, sixteen_bit=sixteen)
        except ImageLoadError:
            raise
        except Image.DecompressionBombError:
            raise too_large_error(where, width, height, cap) from None
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


def to_bgr(image: Any, *, rgb: bool = False, max_pixels: int | None = None, copy: bool = True) -> np.ndarray:
    """Convert a path, numpy array or PIL image to a C-contiguous uint8 BGR ``H×W×3`` array.

    This is the one conversion behind every API that takes an image (``FaceAnalyzer``, ``Detector``,
    ``Landmarker``), so they all accept exactly the same inputs:

    * ``str`` / ``os.PathLike``: :func:`read_image`.
    * numpy arrays of shape ``H×W``, ``H×W×1`` (grey), ``H×W×3`` (BGR, or RGB when ``rgb=True``)
      or ``H×W×4`` (BGRA/RGBA, alpha dropped).  dtypes: ``uint8`` as is; ``bool`` → 0/255;
      ``uint16`` → ``round(v / 257)``; floats must lie in [0, 1] and are scaled by 255; other
      integer dtypes must lie in 0..255.
    * ``PIL.Image.Image``: always RGB semantics (``rgb`` is ignored), any mode; the EXIF
      orientation is applied as for a file (the image itself is not changed).  Mode ``I`` values
      in 0..255 are taken as 8-bit, larger ones up to 65535 as 16-bit.

    ``max_pixels`` caps every kind of input (see :func:`read_image`).  The result never shares
    memory with the input, except with ``copy=False`` for an array that already is C-contiguous
    uint8 BGR (then it is returned as it is, for callers that only read it).  Anything else raises
    :class:`~hrface.errors.ImageLoadError` with a one-line message that names what was passed.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, max_pixels=max_pixels)
    cap = max_pixels_limit(max_pixels)
    if isinstance(image, np.ndarray):
        return array_to_bgr(image, rgb=rgb, cap=cap, copy=copy)
    if "PIL.Image" in sys.modules:
        from PIL import Image

        if isinstance(image, Image.Image):
            return pil_image_to_bgr(image, cap)
    raise ImageLoadError(
        f"unsupported image type {type(image).__module__}.{type(image).__qualname__}; pass a file path, "
        "a numpy array (H×W×3 uint8 BGR) or a PIL image"
    )


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
        raise ImageWriteError.cannot_write(where, e, "check the folder and its permissions") from None


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` in pixels of an image file, from its header (nothing is decoded; without Pillow, e.g.
    in a bare training environment, the image is decoded with OpenCV); as stored, without applying an EXIF
    orientation."""
    try:
        from PIL import Image
    except ImportError:
        height, width = cv2.imread(os.fspath(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION).shape[:2]
        return width, height
    with Image.open(path) as image:
        return image.size
