"""The record every detection data reader produces: one image with all of its annotated faces.

Coordinates are image pixels, 0-based, as the files give them. Boxes are ``x1 y1 x2 y2`` with the
WIDER FACE convention ``x2 = x + w``, ``y2 = y + h`` (continuous coordinates: pixel i spans [i, i+1)).
Keypoints are the 5 RetinaFace points in the order image-left eye, image-right eye, nose tip,
image-left mouth corner, image-right mouth corner; a missing point is NaN.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..landmarks.parsing import DatasetError, where

NUM_KEYPOINTS = 5

MIRROR_KEYPOINTS = (1, 0, 2, 4, 3)
"""Index order of the 5 keypoints after a horizontal mirror (the eyes and the mouth corners swap)."""


@dataclass(frozen=True)
class DetectionSample:
    """One annotated image.

    Attributes:
        image: path of the image file.
        boxes: (M, 4) float32 face boxes ``x1 y1 x2 y2`` in pixels (M may be 0).
        keypoints: (M, 5, 2) float32 keypoints ``(x, y)`` in pixels, NaN where missing; None gives all NaN.
        has_keypoints: (M,) bool, True for faces whose 5 keypoints are annotated (and all finite);
            None derives it from ``keypoints`` (True where all 5 points are finite).
        photo: photo id (e.g. ``'0--Parade/0_Parade_marchingband_1_849'``).
        subset: name of the subset or WIDER event the image belongs to.

    Arrays are converted to the dtypes above; inconsistent shapes raise ValueError.
    """

    image: str
    boxes: np.ndarray
    keypoints: np.ndarray | None = None
    has_keypoints: np.ndarray | None = None
    photo: str = ""
    subset: str = ""

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(f"{self.image}: boxes must have shape (M, 4), got {boxes.shape}")
        m = len(boxes)
        if self.keypoints is None:
            keypoints = np.full((m, NUM_KEYPOINTS, 2), np.nan, dtype=np.float32)
        else:
            keypoints = np.asarray(self.keypoints, dtype=np.float32)
            if keypoints.size == 0 and m == 0:
                keypoints = keypoints.reshape(0, NUM_KEYPOINTS, 2)
        if keypoints.shape != (m, NUM_KEYPOINTS, 2):
            raise ValueError(f"{self.image}: keypoints must have shape ({m}, 5, 2), got {keypoints.shape}")
        complete = np.isfinite(keypoints).all(axis=(1, 2))
        has = complete if self.has_keypoints is None else np.asarray(self.has_keypoints, dtype=bool).reshape(-1)
        if has.shape != (m,):
            raise ValueError(f"{self.image}: has_keypoints must have shape ({m},), got {has.shape}")
        if (has & ~complete).any():
            raise ValueError(f"{self.image}: face {int(np.argmax(has & ~complete))} has_keypoints but NaN keypoints")
        object.__setattr__(self, "image", str(self.image))
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "keypoints", keypoints)
        object.__setattr__(self, "has_keypoints", has)

    @property
    def num_faces(self) -> int:
        """M, the number of annotated faces."""
        return len(self.boxes)


def sample_at(
    image_root: str | os.PathLike[str],
    relative: str,
    boxes: np.ndarray,
    keypoints: np.ndarray | None = None,
) -> DetectionSample:
    """The sample of image ``image_root / relative`` (``relative`` with ``/`` separators, as the label files
    write it): photo id = ``relative`` without its suffix, subset = its first folder (``''`` if none)."""
    rel = relative.replace("\\", "/")
    folder, _, _ = rel.rpartition("/")
    return DetectionSample(
        image=os.path.join(image_root, rel),
        boxes=boxes,
        keypoints=keypoints,
        photo=posixpath.splitext(rel)[0],
        subset=folder.split("/", 1)[0],
    )


def require_image(sample: DetectionSample, source: str | os.PathLike[str], line: int | None = None) -> None:
    """DatasetError (naming the annotation file and line) when the sample's image file does not exist."""
    if not Path(sample.image).is_file():
        raise DatasetError(f"{where(source, line)}: image not found: {sample.image}")
