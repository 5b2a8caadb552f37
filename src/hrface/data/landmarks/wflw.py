"""WFLW annotation lists (``list_98pt_rect_attr_train.txt`` / ``list_98pt_rect_attr_test.txt``).

One face per line, space-separated: 196 numbers ``x0 y0 … x97 y97`` (0-based pixels of the WIDER
FACE photo), the face rectangle ``x_min y_min x_max y_max``, six 0/1 attribute flags (pose,
expression, illumination, make-up, occlusion, blur), and the image path relative to the WFLW image
folder (``51--Dresses/51_Dresses_wearingdress_51_377.jpg``).  Faces of one photo share that path.

:class:`~hrface.data.landmarks.samples.LandmarkSample` has no attribute field, so the flags come
back beside the samples (``with_attributes=True``), and :func:`wflw_subset_masks` turns them into
the standard WFLW test subsets for per-subset evaluation.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Literal, overload

import numpy as np

from .parsing import DatasetError, check_box, parse_floats, read_lines, where
from .samples import LandmarkSample

__all__ = ["WFLW_ATTRIBUTES", "read_wflw_list", "wflw_subset_masks"]

WFLW_ATTRIBUTES: tuple[str, ...] = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")
"""Names of the six attribute flags, in file order (the test subsets ``list_98pt_test_<name>.txt``;
the pose subset's file is called ``largepose``)."""

_NUM_POINTS = 98
_NUMBERS = 2 * _NUM_POINTS + 4 + len(WFLW_ATTRIBUTES)


@overload
def read_wflw_list(
    txt_path: str | os.PathLike[str],
    image_root: str | os.PathLike[str],
    *,
    with_attributes: Literal[False] = ...,
    one_based: bool = ...,
) -> list[LandmarkSample]: ...


@overload
def read_wflw_list(
    txt_path: str | os.PathLike[str],
    image_root: str | os.PathLike[str],
    *,
    with_attributes: Literal[True],
    one_based: bool = ...,
) -> tuple[list[LandmarkSample], np.ndarray]: ...


def read_wflw_list(
    txt_path: str | os.PathLike[str],
    image_root: str | os.PathLike[str],
    *,
    with_attributes: bool = False,
    one_based: bool = False,
) -> list[LandmarkSample] | tuple[list[LandmarkSample], np.ndarray]:
    """The faces of a WFLW list file, in file order (blank lines skipped).

    Each sample has the 98 points, ``box`` = the annotated rectangle, ``photo`` = the image path
    without suffix, ``subset`` = ''.  With ``with_attributes`` the (N, 6) bool attribute flags
    (columns as :data:`WFLW_ATTRIBUTES`) are returned too.  ``one_based`` subtracts 1 from points and
    box (WFLW itself is 0-based).  Malformed lines raise a one-line :class:`DatasetError`.
    """
    root = Path(image_root)
    shift = 1.0 if one_based else 0.0
    samples: list[LandmarkSample] = []
    flags: list[np.ndarray] = []
    for line_no, text in enumerate(read_lines(txt_path), start=1):
        tokens = text.split()
        if not tokens:
            continue
        if len(tokens) <= _NUMBERS:
            raise DatasetError(
                f"{where(txt_path, line_no)}: expected {2 * _NUM_POINTS} point numbers, 4 box numbers, "
                f"{len(WFLW_ATTRIBUTES)} attribute flags and an image path, got {len(tokens)} fields"
            )
        values = parse_floats(tokens[:_NUMBERS], txt_path, line_no, "number")
        attrs = values[2 * _NUM_POINTS + 4 :]
        if not np.isin(attrs, (0.0, 1.0)).all():
            raise DatasetError(f"{where(txt_path, line_no)}: attribute flags must be 0 or 1, got {attrs.tolist()}")
        box = check_box(values[2 * _NUM_POINTS : 2 * _NUM_POINTS + 4] - shift, txt_path, line_no)
        name = PurePosixPath(" ".join(tokens[_NUMBERS:]).replace("\\", "/"))
        samples.append(
            LandmarkSample(
                image=root / name,
                points=values[: 2 * _NUM_POINTS].reshape(_NUM_POINTS, 2) - shift,
                box=box,
                photo=str(name.with_suffix("")),
                subset="",
            )
        )
        flags.append(attrs.astype(bool))
    if not samples:
        raise DatasetError(f"{where(txt_path)}: no annotation lines")
    return (samples, np.stack(flags)) if with_attributes else samples


def wflw_subset_masks(attributes: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean face masks (N,) of the WFLW evaluation subsets from (N, 6) attribute flags.

    Keys: ``'all'`` (every face), then :data:`WFLW_ATTRIBUTES` in order, each marking the faces
    with that flag set, as the official ``list_98pt_test_<subset>.txt`` files do.  A face can be in
    several subsets.
    """
    flags = np.asarray(attributes).astype(bool)
    if flags.ndim != 2 or flags.shape[1] != len(WFLW_ATTRIBUTES):
        raise ValueError(f"expected attribute flags of shape (N, {len(WFLW_ATTRIBUTES)}), got {flags.shape}")
    masks = {"all": np.ones(len(flags), dtype=bool)}
    masks.update({name: flags[:, i].copy() for i, name in enumerate(WFLW_ATTRIBUTES)})
    return masks
