"""Face geometry on top of detections: aligned crops (:mod:`.align`) and head pose (:mod:`.pose`).

Imports only numpy and OpenCV (the base install; no torch).
"""

from .align import align_face, arcface_template, ffhq_matrix, ffhq_quad, similarity_transform
from .pose import Pose, camera_matrix, face_pose, head_pose, mean_face_5, mean_face_68

__all__ = [
    "Pose",
    "align_face",
    "arcface_template",
    "camera_matrix",
    "face_pose",
    "ffhq_matrix",
    "ffhq_quad",
    "head_pose",
    "mean_face_5",
    "mean_face_68",
    "similarity_transform",
]
