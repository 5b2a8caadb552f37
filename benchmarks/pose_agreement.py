"""How well the head pose from a detector's 5 keypoints agrees with the pose from the landmark model's 68
points on the same faces: median and 90th percentile of the absolute yaw / pitch / roll differences (degrees).

    python benchmarks/pose_agreement.py ../shared/data/300w/afw --detector hrface_retinaface_mnet025_300w_v3

No pose ground truth is needed: the 68-point pose is the reference, as the landmarks are far more precise than
the detector's keypoints (see the detector's model card).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable

import numpy as np

from hrface.geometry.pose import angle_difference, head_pose
from hrface.io.files import iter_image_files
from hrface.io.image import read_image
from hrface.runtime.analyzer import FaceAnalyzer
from hrface.runtime.detector import DEFAULT_DETECTOR
from hrface.runtime.landmarker import DEFAULT_LANDMARKER

ANGLES = ("yaw", "pitch", "roll")


def pose_differences(analyzer: FaceAnalyzer, images: Iterable[np.ndarray]) -> np.ndarray:
    """(F, 3) absolute yaw / pitch / roll differences (degrees) between the 5-keypoint and the 68-point pose
    of every face found in ``images`` (BGR) whose two poses both fit."""
    rows = []
    for image in images:
        size = (image.shape[1], image.shape[0])
        for face in analyzer(image):
            if face.landmarks is None or len(face.landmarks) != 68:
                continue
            dense = face.pose  # the analyzer's pose, from the 68 landmarks (hrface.geometry.pose.face_pose)
            coarse = head_pose(face.keypoints, size, layout="5")
            if dense is not None and coarse is not None:
                rows.append([angle_difference(getattr(coarse, a), getattr(dense, a)) for a in ANGLES])
    return np.asarray(rows, dtype=float).reshape(-1, 3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="photos (e.g. ../shared/data/300w/afw)")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR)
    parser.add_argument("--landmarker", default=DEFAULT_LANDMARKER, help="a 68-point landmark model")
    args = parser.parse_args(argv)
    analyzer = FaceAnalyzer(args.detector, args.landmarker)
    diff = pose_differences(analyzer, (read_image(path) for path in iter_image_files(args.folder)))
    print(f"{args.detector} 5 keypoints vs {args.landmarker} 68 points: {len(diff)} faces")
    for name, q in (("median", 50), ("90th percentile", 90)):
        values = " / ".join(f"{v:.1f}°" for v in np.percentile(diff, q, axis=0)) if len(diff) else "-"
        print(f"  {name} |difference| (yaw / pitch / roll): {values}")


if __name__ == "__main__":
    main()
