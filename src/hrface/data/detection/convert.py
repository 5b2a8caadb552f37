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

__all__ = ["WIDER_BOX_FROM_POINTS", "detection_samples_from_landmarks", "outer_corner_distances"]


def detection_samples_from_landmarks(
    samples: Sequence[LandmarkSample],
    box_from_points: BoxFromPoints = WIDER_BOX_FROM_POINTS,
) -> list[DetectionSample]:
    """One :class:`DetectionSample` per image, holding all of its annotated faces.

    Faces are grouped by their image file (images in order of their first face, faces in input order);
    the sample's ``photo`` is the :func:`~hrface.data.landmarks.split.photo_id` and its subset those of
    the image's first face. Several images can share a photo id: 300W's HELEN gives each face of a
    photo its own, differently cropped image (``PHOTO_1.jpg``, ``PHOTO_2.jpg``), so its faces must stay
    on their own images (grouping by photo put 87 HELEN faces on another crop's pixels), while a split by
    photo keeps those images together. Each face's box is ``box_from_points(points)`` (xyxy pixels, not
    clipped to the image; the landmark samples' own ``box`` is not used) and its keypoints are the 5-point
    summary of its layout (68, 98, 29 or 19 points); faces with non-finite summary points get
    ``has_keypoints`` False.
    """
    out = []
    for (photo, _), faces in _by_image(samples).items():
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


def outer_corner_distances(samples: Sequence[LandmarkSample]) -> list[np.ndarray]:
    """Per image of :func:`detection_samples_from_landmarks` (same order), the (M,) distances in pixels
    between each face's outer eye corners (the landmark NME's inter-ocular distance), e.g. to normalise
    keypoint errors as the 300W literature does (``keypoint_norms`` of
    :func:`~hrface.evaluation.detection.evaluate_detections`)."""
    return [
        np.array([get_layout(len(face.points)).interocular(face.points) for face in faces], np.float64)
        for faces in _by_image(samples).values()
    ]


def _by_image(samples: Sequence[LandmarkSample]) -> dict[tuple[str, str], list[LandmarkSample]]:
    """Faces grouped by (photo id, image file), in order of each image's first face."""
    groups: dict[tuple[str, str], list[LandmarkSample]] = {}
    for sample in samples:
        groups.setdefault((photo_id(sample), str(sample.image)), []).append(sample)
    return groups
