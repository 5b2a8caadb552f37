"""Image input/output: reading, converting, finding, writing and annotating images.

All arrays are uint8 BGR ``H×W×3`` (OpenCV order), C-contiguous, with 0-based pixel coordinates.
"""

from hrface.io.draw import draw_faces
from hrface.io.files import IMAGE_EXTENSIONS, atomic_write_bytes, atomic_write_text, iter_image_files
from hrface.io.image import (
    DEFAULT_MAX_PIXELS,
    ImageWriteError,
    max_pixels_limit,
    read_image,
    to_bgr,
    write_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageWriteError",
    "atomic_write_bytes",
    "atomic_write_text",
    "draw_faces",
    "iter_image_files",
    "max_pixels_limit",
    "read_image",
    "to_bgr",
    "write_image",
]
