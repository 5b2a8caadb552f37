"""COFW (Caltech Occluded Faces in the Wild) MATLAB files, with the images stored inside.

Variables of the training / test split (the names the reference HRNet code reads):

* ``IsTr`` / ``IsT``: cell array of N uint8 images, ``H×W`` gray or ``H×W×3`` RGB;
* ``phisTr`` / ``phisT``: N×87, per face the 29 x, then the 29 y coordinates, then 29 occlusion flags
  (1 = occluded); files without flags (N×58) are read too;
* ``bboxesTr`` / ``bboxesT``: N×4 face boxes ``x, y, w, h`` (optional).

Points and boxes are taken as 0-based pixels unless ``one_based=True`` (COFW comes from MATLAB code;
check your copy's convention).  Version-5 MAT files are read with SciPy; MATLAB v7.3 files (HDF5,
as the HRNet copies ``COFW_train_color.mat`` / ``COFW_test_color.mat``) need h5py, an optional
dependency, or re-saving as v5.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ...errors import one_line
from ...extras import require
from ...io.image import write_image
from .parsing import DatasetError, check_box
from .samples import LandmarkSample

__all__ = ["CofwData", "export_cofw", "read_cofw_mat"]

COFW_KEYS = {"train": ("IsTr", "phisTr", "bboxesTr"), "test": ("IsT", "phisT", "bboxesT")}
_NUM_POINTS = 29


@dataclass(frozen=True)
class CofwData:
    """The contents of one split of a COFW file (N faces, one image each).

    Attributes:
        images: N uint8 images, ``H×W`` gray or ``H×W×3`` **RGB** (as stored).
        points: (N, 29, 2) float64 pixel coordinates as stored (see ``one_based`` of :func:`export_cofw`).
        visible: (N, 29) bool, True where the occlusion flag is 0; None for a file without flags.
        boxes: (N, 4) float64 face boxes ``x1, y1, x2, y2`` (from ``x, y, w, h``), or None.
    """

    images: list[np.ndarray]
    points: np.ndarray
    visible: np.ndarray | None
    boxes: np.ndarray | None


def read_cofw_mat(mat_path: str | os.PathLike[str], split: Literal["train", "test"]) -> CofwData:
    """Read one split of a COFW ``.mat`` file into memory; :class:`DatasetError` (one line) if the
    file is unreadable, lacks the split's variables or has inconsistent shapes."""
    if split not in COFW_KEYS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = Path(mat_path)
    try:
        with path.open("rb") as f:
            head = f.read(128)
    except OSError as e:
        raise DatasetError(f"{path}: cannot read COFW file ({e.strerror or e})") from None
    keys = COFW_KEYS[split]
    arrays = _load_hdf5(path, keys) if head.startswith(b"MATLAB 7.3") else _load_v5(path, keys)
    return _to_data(path, keys, *arrays)


def _v73_error(path: Path) -> DatasetError:
    return DatasetError(
        f"{path}: a MATLAB v7.3 (HDF5) file, which needs h5py: install h5py, or re-save the file "
        "as version 5 (MATLAB/Octave: save(name, '-v7'))"
    )


def _missing(path: Path, key: str, keys: tuple[str, ...]) -> DatasetError:
    return DatasetError(f"{path}: no variable {key!r} (a COFW split needs {', '.join(keys)}); is this a COFW file?")


def _load_v5(path: Path, keys: tuple[str, ...]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray | None]:
    scipy_io = require("scipy.io", "eval", "reading COFW ground truth (.mat)")
    loadmat, MatReadError = scipy_io.loadmat, scipy_io.matlab.MatReadError

    try:
        mat = loadmat(path, variable_names=list(keys))
    except NotImplementedError:
        raise _v73_error(path) from None
    except (MatReadError, OSError, ValueError, TypeError) as e:
        raise DatasetError(f"{path}: not a readable MATLAB file ({one_line(e, 120)})") from None
    for key in keys[:2]:
        if key not in mat:
            raise _missing(path, key, keys)
    cells = mat[keys[0]]
    if cells.dtype != object:
        raise DatasetError(f"{path}: {keys[0]} must be a cell array of images, got a {cells.dtype} array")
    return [np.asarray(a) for a in cells.ravel()], mat[keys[1]], mat.get(keys[2])


def _load_hdf5(path: Path, keys: tuple[str, ...]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray | None]:
    """A v7.3 file: HDF5 with every array transposed (MATLAB is column-major), cells as references."""
    try:
        import h5py
    except ImportError:
        raise _v73_error(path) from None
    try:
        with h5py.File(path, "r") as f:
            for key in keys[:2]:
                if key not in f:
                    raise _missing(path, key, keys)
            images = [np.asarray(f[ref]).T for ref in np.asarray(f[keys[0]]).ravel()]
            phis = np.asarray(f[keys[1]]).T
            boxes = np.asarray(f[keys[2]]).T if keys[2] in f else None
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{path}: not a readable MATLAB v7.3 file ({one_line(e, 120)})") from None
    return images, phis, boxes


def _to_data(
    path: Path, keys: tuple[str, ...], images: list[np.ndarray], phis: np.ndarray, boxes: np.ndarray | None
) -> CofwData:
    n = len(images)
    phis = np.asarray(phis, dtype=np.float64)
    if phis.ndim != 2 or phis.shape[0] != n or phis.shape[1] not in (2 * _NUM_POINTS, 3 * _NUM_POINTS):
        raise DatasetError(
            f"{path}: {keys[1]} has shape {phis.shape}, expected ({n}, {3 * _NUM_POINTS}) for {n} images "
            f"({_NUM_POINTS} x, {_NUM_POINTS} y, {_NUM_POINTS} occlusion flags per face)"
        )
    if not np.isfinite(phis).all():
        raise DatasetError(f"{path}: {keys[1]} has non-finite values")
    for i, image in enumerate(images):
        if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)) or image.size == 0:
            raise DatasetError(f"{path}: {keys[0]} image {i} has shape {image.shape}, expected H×W or H×W×3")
    points = np.stack([phis[:, :_NUM_POINTS], phis[:, _NUM_POINTS : 2 * _NUM_POINTS]], axis=-1)
    visible = phis[:, 2 * _NUM_POINTS :] == 0 if phis.shape[1] == 3 * _NUM_POINTS else None
    xyxy = None
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.shape != (n, 4) or not np.isfinite(boxes).all():
            raise DatasetError(f"{path}: {keys[2]} has shape {boxes.shape} or non-finite values, expected ({n}, 4)")
        xyxy = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
        for i, box in enumerate(xyxy):
            check_box(box, path, None, f"{keys[2]} row {i} (x1 y1 x2 y2)")
    return CofwData(images=images, points=points, visible=visible, boxes=xyxy)


def _has_image(file: Path, image: np.ndarray) -> bool:
    """Whether ``file`` is already an image of ``image``'s width and height (read from its header)."""
    from PIL import Image

    try:
        with Image.open(file) as im:
            return im.size == (image.shape[1], image.shape[0])
    except (OSError, ValueError):
        return False


def export_cofw(
    mat_path: str | os.PathLike[str],
    split: Literal["train", "test"],
    out_dir: str | os.PathLike[str],
    *,
    subset: str = "cofw",
    one_based: bool = False,
) -> list[LandmarkSample]:
    """Write the images of one COFW split as PNG files and return its faces, in file order.

    Face ``i`` (0-based) becomes ``out_dir/<split>_<i:04d>.png`` (written atomically, as BGR from the
    stored RGB; a file already there with the same size is kept, so a second call writes nothing)
    with ``photo`` ``'cofw/<split>_<i:04d>'``, ``box`` from ``bboxes`` (None without them: the crop
    then comes from the points), and ``visible`` = occlusion flag 0.
    """
    data = read_cofw_mat(mat_path, split)
    out = Path(out_dir)
    shift = 1.0 if one_based else 0.0
    samples = []
    for i, image in enumerate(data.images):
        file = out / f"{split}_{i:04d}.png"
        if not _has_image(file, image):
            pixels = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
            write_image(file, pixels[..., ::-1] if pixels.ndim == 3 else pixels)
        samples.append(
            LandmarkSample(
                image=file,
                points=data.points[i] - shift,
                box=None if data.boxes is None else data.boxes[i] - shift,
                photo=f"cofw/{file.stem}",
                subset=subset,
                visible=None if data.visible is None else data.visible[i].copy(),
            )
        )
    return samples
