"""The README's picture of a drawn video frame, made without any photo: two faces of hrface's own 3-D mean face
(``hrface/geometry/mean_face_68.json``) projected at known head poses, drawn by ``hrface.io.draw.draw_faces``
with their track ids, 68 landmarks, 5 keypoints and head-pose axes (the poses are fitted back from the points).

    python scripts/readme_figure.py docs/drawn_frame.png
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from hrface.geometry.pose import camera_matrix, face_pose, mean_face_68
from hrface.io.draw import draw_faces
from hrface.video import TrackedFace

SIZE = (640, 360)  # width, height


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Model → camera rotation for the documented angles (degrees): R = F · Rz(roll) Ry(yaw) Rx(−pitch) · F."""
    y, p, r = np.radians([yaw, -pitch, roll])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    flip = np.diag([1.0, -1.0, -1.0])
    return flip @ rz @ ry @ rx @ flip


def synthetic_face(track_id: int, centre_x: float, depth: float, angles: tuple[float, float, float]) -> TrackedFace:
    """A face whose landmarks are the mean face seen at ``angles`` (yaw, pitch, roll), ``depth`` units away."""
    camera = camera_matrix(SIZE)
    points = mean_face_68() @ rotation(*angles).T + np.array([centre_x, 0.0, depth])
    projected = points @ camera.T
    landmarks = projected[:, :2] / projected[:, 2:]
    keypoints = np.stack(
        [landmarks[36:42].mean(0), landmarks[42:48].mean(0), landmarks[30], landmarks[48], landmarks[54]]
    )
    low, high = landmarks.min(0), landmarks.max(0)
    box = np.concatenate([low - 0.1 * (high - low), high + 0.1 * (high - low)])
    face = TrackedFace(box=box, score=0.99, keypoints=keypoints, landmarks=landmarks, track_id=track_id)
    face.pose = face_pose(landmarks, keypoints, SIZE)
    return face


def main(out: str) -> None:
    frame = np.full((SIZE[1], SIZE[0], 3), 235, np.uint8)
    faces = [synthetic_face(0, -1.1, 5.0, (25.0, 10.0, 8.0)), synthetic_face(3, 1.1, 5.5, (-30.0, -5.0, -12.0))]
    for face in faces:
        print(f"track {face.track_id}: {face.pose}")
    cv2.imwrite(out, draw_faces(frame, faces))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/drawn_frame.png")
