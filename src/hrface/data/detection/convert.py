"""Detection samples from dense-landmark annotations (300W ``.pts`` folders and the other landmark readers).

The box of a face is the WIDER FACE / RetinaFace box predicted from its landmarks by
:data:`WIDER_BOX_FROM_POINTS`; its 5 keypoints are the landmark layout's 5-point summary
(:meth:`~hrface.landmarks.layouts.LandmarkLayout.five_points`: eye centres, nose tip, mouth corners,
in the RetinaFace order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...landmarks.layouts import get_layout
from ..landmarks.detector_boxes import WIDER_BOX_FROM_POINTS, BoxFromPoints
from ..landmarks.samples import LandmarkSample
from ..landmarks.split import photo_id
from .samples import DetectionSample

__all__ = ["WIDER_BOX_FROM_POINTS", "detection_samples_from_landmarks"]


def detection_samples_from_landmarks(
    samples: Sequence[LandmarkSample],
    box_from_points: BoxFromPoints = WIDER_BOX_FROM_POINTS,
) -> list[DetectionSample]:
    """One :class:`DetectionSample` per photo, holding all of its annotated faces.

    Faces are grouped by :func:`~hrface.data.landmarks.split.photo_id` (photos in order of their first
    face, faces in input order); the sample takes the image, photo id and subset of the photo's first
    face. Each face's box is ``box_from_points(points)`` (xyxy pixels, not clipped to the image; the
    landmark samples' own ``box`` is not used) and its keypoints are the 5-point summary of its layout
    (68, 98, 29 or 19 points); faces with non-finite summary points get ``has_keypoints`` False.
    """
    groups: dict[str, list[LandmarkSample]] = {}
    for sample in samples:
        groups.setdefault(photo_id(sample), []).append(sample)
    out = []
    for photo, faces in groups.items():
        boxes = [box_from_points(face.points) for face in faces]
        keypoints = [get_layout(len(face.points)).five_points(face.points) for face in faces]
        first = faces[0]
        out.append(
            DetectionSample(
                image=str(first.image),
                boxes=np.stack(boxes),
                keypoints=np.stack(keypoints),
                photo=photo,
                subset=first.subset,
            )
        )
    return out
