"""The 300W / iBUG ``.pts`` landmark format, and folders of 300W-style annotated photos.

A ``.pts`` file::

    version: 1
    n_points: 68
    {
    x0 y0
    ...
    }

Coordinates are image pixels.  hrface works with 0-based pixels (pixel centres at integers); the
original 300W files count from 1, so read those with ``one_based=True`` (subtracts 1).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ...io.files import IMAGE_EXTENSIONS, atomic_write_text
from .parsing import DatasetError, parse_floats, read_lines, snippet, where
from .samples import LandmarkSample

__all__ = ["read_300w_folder", "read_pts", "strip_face_index", "write_pts"]

_FACE_INDEX = re.compile(r"_[1-9]\d?$")
_ANY_INDEX = re.compile(r"_\d+$")


def read_pts(path: str | os.PathLike[str]) -> np.ndarray:
    """The points of a ``.pts`` file as a (K, 2) float64 array ``x, y`` in the file's pixel units.

    Blank lines, CR/LF line ends and a UTF-8 BOM are tolerated; header lines other than
    ``n_points`` (such as ``version``) are ignored.  Raises :class:`DatasetError` (one line, naming
    the file and line) for a missing ``n_points`` or brace, a line that is not two numbers, or a
    point count that differs from ``n_points``.
    """
    lines = read_lines(path)
    numbered = [(i, text.strip()) for i, text in enumerate(lines, start=1) if text.strip()]
    n_points, n_line, body = _read_header(numbered, path)
    rows: list[np.ndarray] = []
    for pos, (line_no, text) in enumerate(body):
        if text == "}":
            if len(rows) != n_points:
                raise DatasetError(
                    f"{where(path, line_no)}: n_points (line {n_line}) is {n_points} but {len(rows)} points are listed"
                )
            if pos + 1 < len(body):
                extra_no, extra = body[pos + 1]
                raise DatasetError(f"{where(path, extra_no)}: unexpected text {snippet(extra)} after the closing '}}'")
            return np.stack(rows) if rows else np.zeros((0, 2))
        tokens = text.split()
        if len(tokens) != 2:
            raise DatasetError(f"{where(path, line_no)}: expected a point 'x y' or '}}', got {snippet(text)}")
        rows.append(parse_floats(tokens, path, line_no, "point"))
    last = body[-1][0] if body else (numbered[-1][0] if numbered else None)
    raise DatasetError(f"{where(path, last)}: missing closing '}}' after {len(rows)} points (file truncated?)")


def _read_header(numbered: list[tuple[int, str]], path: str | os.PathLike[str]) -> tuple[int, int, list]:
    """``(n_points, its line, the lines after '{')`` of a .pts file's non-blank lines."""
    n_points: int | None = None
    n_line = 0
    for pos, (line_no, text) in enumerate(numbered):
        if text == "{":
            if n_points is None:
                raise DatasetError(f"{where(path, line_no)}: no 'n_points: K' line before '{{'")
            return n_points, n_line, numbered[pos + 1 :]
        key, sep, value = text.partition(":")
        if not sep:
            raise DatasetError(f"{where(path, line_no)}: expected 'key: value' or '{{', got {snippet(text)}")
        if key.strip().lower() == "n_points":
            try:
                n_points = int(value.strip())
            except ValueError:
                n_points = -1
            if n_points < 0:
                raise DatasetError(f"{where(path, line_no)}: n_points must be a whole number, got {snippet(value)}")
            n_line = line_no
    raise DatasetError(f"{where(path, numbered[-1][0] if numbered else None)}: no '{{' line (not a .pts file?)")


def write_pts(path: str | os.PathLike[str], points: np.ndarray) -> None:
    """Write (K, 2) points as a ``.pts`` file, atomically; values are written exactly (shortest repr)."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
        raise ValueError(f"write_pts expects finite points of shape (K, 2), got shape {pts.shape}")
    body = "".join(f"{x!r} {y!r}\n" for x, y in pts.tolist())
    atomic_write_text(path, f"version: 1\nn_points: {len(pts)}\n{{\n{body}}}\n")


def strip_face_index(stem: str) -> str:
    """The photo name of a per-face file name: ``'1051618982_2'`` → ``'1051618982'``.

    300W names faces ``PHOTO_K`` with a face index K of 1–99 written without leading zeros; only
    such a suffix is removed, so ``'image_0001'`` (LFPW) and ``'indoor_001'`` (300W-challenge) stay.
    """
    return _FACE_INDEX.sub("", stem)


def _is_face_image(stem: str, images: dict[str, Path]) -> bool:
    """Whether the image ``stem`` (``PHOTO_K``) is one of several per-face images of a photo: another
    ``PHOTO_J`` image exists, or no ``PHOTO`` image does (then ``_K`` cannot be part of the photo's name
    shared with its faces).  Used for folders with one image per face and ``PHOTO_K_1.pts`` files."""
    photo = strip_face_index(stem)
    siblings = [s for s in images if s != stem and strip_face_index(s) == photo and s != photo]
    return bool(siblings) or photo not in images


def read_300w_folder(
    folder: str | os.PathLike[str],
    subset: str | None = None,
    one_based: bool = False,
    *,
    skip_missing: bool = False,
) -> list[LandmarkSample]:
    """The faces of a folder of 300W-style annotations, one sample per ``.pts`` file, sorted by file name.

    ``PHOTO_K.pts`` (or ``PHOTO.pts``) belongs to the image ``PHOTO_K.<ext>`` if there is one (the
    original 300W, one image copy per face), else to ``PHOTO.<ext>`` (one image per photo), in the
    same folder; ``<ext>`` is any image suffix (jpg, png, …, case-insensitive).  The photo id is
    ``'<folder name>/<photo>'``, the photo being the image's name without suffix and without a face
    index (see :func:`strip_face_index`), so that all faces of a photo share it and ids of different
    folders cannot collide.  A folder with one image per face, ``PHOTO_K.jpg`` + ``PHOTO_K_1.pts``
    (300W's HELEN, whose face images are different crops of the photo), also gives photo ``PHOTO``.
    ``subset`` defaults to the folder name; ``box`` is left None.

    Args:
        one_based: the files count pixels from 1 (original 300W); 1 is subtracted.
        skip_missing: skip faces whose image is missing instead of raising :class:`DatasetError`.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder of .pts annotations")
    images: dict[str, Path] = {}
    pts_files: list[Path] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        suffix = entry.suffix.lower()
        if suffix == ".pts":
            pts_files.append(entry)
        elif suffix in IMAGE_EXTENSIONS:
            images.setdefault(entry.stem, entry)
    if not pts_files:
        raise DatasetError(f"{root}: no .pts files in this folder")
    name = subset if subset is not None else root.name
    samples = []
    for pts_file in pts_files:
        stem = pts_file.stem
        if stem in images:
            image, photo = images[stem], strip_face_index(stem)
        else:
            photo = _ANY_INDEX.sub("", stem)
            image = images.get(photo)
            if image is not None and photo != strip_face_index(photo) and _is_face_image(photo, images):
                photo = strip_face_index(photo)  # PHOTO_K_1.pts on PHOTO_K.jpg: a per-face crop of PHOTO
        if image is None:
            if skip_missing:
                continue
            raise DatasetError(
                f"{pts_file}: no image {photo}.<jpg|png|…> for it in the folder; "
                "pass skip_missing=True to skip faces without images"
            )
        points = read_pts(pts_file)
        samples.append(
            LandmarkSample(
                image=image,
                points=points - 1.0 if one_based else points,
                photo=f"{root.name}/{photo}",
                subset=name,
            )
        )
    return samples
