"""Accuracy of an INT8 model against its fp32 original on annotated photos (300W-style folders).

Detector: fp32 and INT8 detections of each photo are matched one-to-one (Hungarian, on IoU ≥ 0.5);
reported are the matched IoU, the score and keypoint differences and the unmatched counts.
Landmarks: both models run on the fp32 detector's boxes matched to the annotated faces; reported are
the inter-ocular NME of each against the annotation and the NME of INT8 against fp32.

    python benchmarks/accuracy.py AFW_DIR --detector D.pth --int8-detector D8.onnx \
        [--landmarker L.safetensors --int8-landmarker L8.onnx] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from hrface.data.landmarks.pts import read_300w_folder
from hrface.evaluation.landmark_runs import detector_boxes, predict_landmarks
from hrface.evaluation.landmarks import normalised_errors
from hrface.io.image import read_image
from hrface.ops import box_iou_numpy
from hrface.runtime import Detections, Detector, Landmarker


def match_detections(ref: Detections, test: Detections, min_iou: float = 0.5) -> list[tuple[int, int, float]]:
    """One-to-one matches ``(ref index, test index, IoU)`` maximising total IoU, pairs below ``min_iou`` dropped."""
    if len(ref.boxes) == 0 or len(test.boxes) == 0:
        return []
    iou = box_iou_numpy(ref.boxes, test.boxes)
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c), float(iou[r, c])) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou]


def detection_agreement(pairs: Sequence[tuple[Detections, Detections]]) -> dict[str, Any]:
    """Matched IoU, |score difference| and keypoint distance (px) between reference and test detections."""
    ious, score_diffs, kp_dists = [], [], []
    ref_total = test_total = 0
    for ref, test in pairs:
        ref_total, test_total = ref_total + len(ref.boxes), test_total + len(test.boxes)
        for r, t, iou in match_detections(ref, test):
            ious.append(iou)
            score_diffs.append(abs(float(ref.scores[r]) - float(test.scores[t])))
            kp_dists.extend(np.linalg.norm(ref.keypoints[r] - test.keypoints[t], axis=-1).tolist())
    matched = len(ious)
    return {
        "reference_faces": ref_total,
        "test_faces": test_total,
        "matched": matched,
        "missed": ref_total - matched,
        "extra": test_total - matched,
        "mean_iou": float(np.mean(ious)) if ious else None,
        "min_iou": float(np.min(ious)) if ious else None,
        "mean_score_diff": float(np.mean(score_diffs)) if ious else None,
        "max_score_diff": float(np.max(score_diffs)) if ious else None,
        "mean_keypoint_px": float(np.mean(kp_dists)) if ious else None,
        "max_keypoint_px": float(np.max(kp_dists)) if ious else None,
    }


def landmark_agreement(folder: Path, detector: Detector, fp32: Landmarker, int8: Landmarker) -> dict[str, Any]:
    """Inter-ocular NME (%) of fp32 and INT8 against the annotation, and of INT8 against fp32, on the
    fp32 detector's boxes of the annotated faces (faces it misses are left out of all three)."""
    samples = read_300w_folder(folder)
    boxes = detector_boxes(samples, detector)
    kept = [i for i, box in enumerate(boxes) if box is not None]
    samples, boxes = [samples[i] for i in kept], [boxes[i] for i in kept]
    gt = np.stack([s.points for s in samples])
    ref, test = predict_landmarks(fp32, samples, boxes)[0], predict_landmarks(int8, samples, boxes)[0]
    return {
        "faces": len(samples),
        "nme_fp32_pct": 100 * float(np.mean(normalised_errors(ref, gt))),
        "nme_int8_pct": 100 * float(np.mean(normalised_errors(test, gt))),
        "nme_int8_vs_fp32_pct": 100 * float(np.mean(normalised_errors(test, ref))),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python benchmarks/accuracy.py", description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="300W-style folder (photos with PHOTO_K.pts)")
    parser.add_argument("--detector", required=True, help="fp32 detector (name or checkpoint)")
    parser.add_argument("--int8-detector", required=True, type=Path, help="INT8 detector .onnx")
    parser.add_argument("--landmarker", help="fp32 landmark model (checkpoint)")
    parser.add_argument("--int8-landmarker", type=Path, help="INT8 landmark .onnx")
    parser.add_argument("--threshold", type=float, default=0.5, help="detector score threshold (0.5)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)
    fp32 = Detector(args.detector, threshold=args.threshold, backend="onnxruntime")
    int8 = Detector(args.int8_detector, threshold=args.threshold, backend="onnxruntime")
    photos = sorted({s.image for s in read_300w_folder(args.folder)})
    pairs = [(fp32.detect(image), int8.detect(image)) for image in map(read_image, photos)]
    results: dict[str, Any] = {"photos": len(photos), "detector": detection_agreement(pairs)}
    if args.landmarker and args.int8_landmarker:
        landmarkers = Landmarker(args.landmarker, backend="onnxruntime"), Landmarker(args.int8_landmarker)
        results["landmarks"] = landmark_agreement(args.folder, fp32, *landmarkers)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
