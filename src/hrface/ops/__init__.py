"""Detection operators: prior boxes, box / landmark coding, IoU and NMS."""

from .box_coder import decode_boxes, decode_landmarks, encode_boxes, encode_landmarks
from .boxes import box_area, box_iou, box_iou_numpy, box_sizes, nms
from .priors import BGR_MEAN, prior_boxes

__all__ = [
    "BGR_MEAN",
    "box_area",
    "box_iou",
    "box_iou_numpy",
    "box_sizes",
    "decode_boxes",
    "decode_landmarks",
    "encode_boxes",
    "encode_landmarks",
    "nms",
    "prior_boxes",
]
