"""Face detection datasets: WIDER FACE annotations, the RetinaFace label format, and 300W conversion.

Every reader returns :class:`DetectionSample` records (one per image, all of its faces) with boxes
``x1 y1 x2 y2`` and 5 keypoints in 0-based image pixels.
"""

from .convert import WIDER_BOX_FROM_POINTS, detection_samples_from_landmarks
from .labels import format_retinaface_labels, read_retinaface_labels, write_retinaface_labels, xywh_to_xyxy
from .samples import MIRROR_KEYPOINTS, NUM_KEYPOINTS, DetectionSample, require_image, sample_at
from .widerface import read_wider_bbx_gt, read_wider_mat

__all__ = [
    "MIRROR_KEYPOINTS",
    "NUM_KEYPOINTS",
    "WIDER_BOX_FROM_POINTS",
    "DetectionSample",
    "detection_samples_from_landmarks",
    "format_retinaface_labels",
    "read_retinaface_labels",
    "read_wider_bbx_gt",
    "read_wider_mat",
    "require_image",
    "sample_at",
    "write_retinaface_labels",
    "xywh_to_xyxy",
]
