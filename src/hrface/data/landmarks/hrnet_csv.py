"""The CSV annotation files of the reference HRNet facial-landmark code (300W, WFLW and AFLW).

One face per row, after a header row:

* 300W and WFLW: ``image_name, scale, center_w, center_h, x0, y0, x1, y1, …`` (68 / 98 points);
* AFLW: ``image_name, scale, box_size, center_w, center_h, x0, y0, …`` (19 points).

``image_name`` is relative to an image root, ``center_w, center_h`` is the face centre in pixels and
``scale`` the face size in units of 200 px.  A sample's box is the square
:func:`~hrface.data.landmarks.samples.box_from_center_scale` (side ``scale × 200``), so its crop
(side ``× 1.25``) is exactly the reference's ``scale × 200 × 1.25`` crop.  AFLW's ``box_size`` (the
normaliser of AFLW errors) is not part of a sample; :func:`read_aflw_box_sizes` reads it.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ...io.files import atomic_write_text
from .parsing import DatasetError, is_number, parse_floats, read_lines, where
from .pts import strip_face_index
from .samples import LandmarkSample, box_from_center_scale

__all__ = ["HRNET_CSV_LAYOUTS", "read_aflw_box_sizes", "read_hrnet_csv", "write_hrnet_csv"]

HRNET_CSV_LAYOUTS: dict[str, tuple[int, int]] = {"300w": (4, 68), "wflw": (4, 98), "aflw": (5, 19)}
"""Layout name → (index of the first point column, number of points)."""


@dataclass(frozen=True)
class _Table:
    layout: str  # '300w', 'wflw', 'aflw' or 'other' (auto-detected, 4 leading columns)
    names: list[str]
    lines: list[int]
    numbers: np.ndarray  # (N, columns - 1): every column after image_name


def _parse(csv_path: str | os.PathLike[str], layout: str) -> _Table:
    if layout != "auto" and layout not in HRNET_CSV_LAYOUTS:
        raise ValueError(f"layout must be 'auto' or one of {sorted(HRNET_CSV_LAYOUTS)}, got {layout!r}")
    reader = csv.reader(io.StringIO("\n".join(read_lines(csv_path))))
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if not rows and header is None and not is_number(row[1] if len(row) > 1 else ""):
            header = [cell.strip().lower() for cell in row]
            continue
        rows.append((reader.line_num, row))
    if not rows:
        raise DatasetError(f"{where(csv_path)}: no annotation rows")
    width = len(header) if header is not None else len(rows[0][1])
    if layout == "auto":
        layout = _detect(header, width)
    offset, num_points = HRNET_CSV_LAYOUTS.get(layout, (4, (width - 4) // 2))
    if width != offset + 2 * num_points or num_points <= 0:
        lead = "image_name, scale, " + ("box_size, " if offset == 5 else "") + "center_w, center_h"
        pairs = num_points if layout in HRNET_CSV_LAYOUTS else "K"
        raise DatasetError(
            f"{where(csv_path, rows[0][0])}: {width} columns do not fit the {layout} layout ({lead}, then "
            f"{pairs} x y pairs)"
        )
    values = []
    for line_no, row in rows:
        if len(row) != width:
            raise DatasetError(f"{where(csv_path, line_no)}: expected {width} columns, got {len(row)}")
        values.append(parse_floats([cell.strip() for cell in row[1:]], csv_path, line_no, "value"))
        if values[-1][0] <= 0:
            raise DatasetError(f"{where(csv_path, line_no)}: scale must be positive, got {values[-1][0]:g}")
    names = [row[0].strip() for _, row in rows]
    return _Table(layout, names, [n for n, _ in rows], np.stack(values))


def _detect(header: list[str] | None, width: int) -> str:
    """The layout of a file with ``width`` columns: AFLW by its box_size column (or odd width), else
    300W for 68 points, WFLW for 98, 'other' for any other count."""
    aflw = "box_size" in header[:3] if header is not None else (width - 5) % 2 == 0
    if aflw:
        return "aflw"
    return {68: "300w", 98: "wflw"}.get((width - 4) // 2, "other")


def read_hrnet_csv(
    csv_path: str | os.PathLike[str],
    image_root: str | os.PathLike[str],
    layout: str = "auto",
    subset: str | None = None,
    one_based: bool = False,
) -> list[LandmarkSample]:
    """The faces of an HRNet CSV annotation file, in file order.

    Args:
        csv_path: the CSV file (a header row is recognised by a non-numeric second column).
        image_root: folder the ``image_name`` column is relative to.
        layout: '300w', 'wflw', 'aflw' or 'auto' (AFLW if the header has a ``box_size`` column, or,
            without header, the column count is odd; else 300W for 68 points and WFLW for 98; other
            point counts are read with the 300W/WFLW columns).
        subset: subset of every face; default: the first component of ``image_name`` ('afw',
            'helen', 'ibug', 'lfpw' for 300W), or '' for a name without folder.
        one_based: the file counts pixels from 1; 1 is subtracted from points and centre.

    The photo id is ``image_name`` without its suffix; for the 300W layout a trailing face index
    (``_K``, see :func:`~hrface.data.landmarks.pts.strip_face_index`) is removed too, since 300W ships
    one image copy per face (``afw/1051618982_2.jpg`` → ``afw/1051618982``).  WFLW and AFLW names
    are whole photos whose digits are part of the name, and are kept.
    """
    table = _parse(csv_path, layout)
    offset = 5 if table.layout == "aflw" else 4
    shift = 1.0 if one_based else 0.0
    root = Path(image_root)
    samples = []
    for name, row in zip(table.names, table.numbers, strict=True):
        centre = row[offset - 3 : offset - 1] - shift
        posix = PurePosixPath(name.replace("\\", "/"))
        stem = strip_face_index(posix.stem) if table.layout == "300w" else posix.stem
        photo = str(posix.with_name(stem))
        samples.append(
            LandmarkSample(
                image=root / posix,
                points=row[offset - 1 :].reshape(-1, 2) - shift,
                box=box_from_center_scale(centre, row[0]),
                photo=photo,
                subset=subset if subset is not None else (posix.parts[0] if len(posix.parts) > 1 else ""),
            )
        )
    return samples


def read_aflw_box_sizes(csv_path: str | os.PathLike[str]) -> np.ndarray:
    """The ``box_size`` column (N,) float64 of an HRNet AFLW CSV file, in the order of
    :func:`read_hrnet_csv`: the face size by which the reference normalises AFLW errors (px)."""
    return _parse(csv_path, "aflw").numbers[:, 1].copy()


def write_hrnet_csv(
    path: str | os.PathLike[str],
    samples: Sequence[LandmarkSample],
    image_root: str | os.PathLike[str] | None = None,
) -> None:
    """Write samples as an HRNet CSV file in the 300W/WFLW layout, atomically.

    Per face: ``image_name`` (the image path relative to ``image_root``, '/'-separated; the path as
    stored without a root), ``scale = max(box width, height) / 200``, the box centre, then the
    0-based points written exactly (shortest repr).  The box is ``sample.crop_box()``, so a sample
    without box gets the tight box of its points; a square box reads back unchanged.  All samples
    must have the same number of points.
    """
    if not samples:
        raise ValueError("write_hrnet_csv needs at least one sample")
    counts = {len(s.points) for s in samples}
    if len(counts) != 1:
        raise ValueError(f"all samples must have the same number of points, got {sorted(counts)}")
    root = Path(image_root) if image_root is not None else None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    coords = [f"original_{i}_{axis}" for i in range(counts.pop()) for axis in "xy"]
    writer.writerow(["image_name", "scale", "center_w", "center_h", *coords])
    for s in samples:
        name = s.image.relative_to(root).as_posix() if root is not None else s.image.as_posix()
        box = np.asarray(s.crop_box(), dtype=np.float64)
        scale = max(box[2] - box[0], box[3] - box[1]) / 200.0
        centre = [(box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0]
        numbers = [scale, *centre, *np.asarray(s.points, dtype=np.float64).reshape(-1).tolist()]
        writer.writerow([name, *(repr(float(v)) for v in numbers)])
    atomic_write_text(path, out.getvalue())
