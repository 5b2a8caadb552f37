"""Detector evaluation on annotated photos: box AP / recall / precision, 5-keypoint NME, ``eval-detector``."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import published_detector, shared_path
from hrface.cli.main import main
from hrface.evaluation.detection import detection_table, evaluate_detections, size_table

EYES_10_APART = np.array([[0, 0], [10, 0], [5, 5], [2, 9], [8, 9]], np.float64)  # inter-ocular distance 10


@dataclass
class Photo:
    """Detections (with scores) or ground truth (with has_keypoints) of one photo."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray | None = None
    has_keypoints: object = True


def faces(*boxes: list[float], points: np.ndarray | None = None, has_keypoints: object = True) -> Photo:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    kp = np.broadcast_to(EYES_10_APART if points is None else points, (len(b), 5, 2)).copy()
    return Photo(b, kp, has_keypoints=has_keypoints)


def detections(*rows: tuple[list[float], float], points: np.ndarray | None = None) -> Photo:
    photo = faces(*[box for box, _ in rows], points=points)
    photo.scores = np.array([score for _, score in rows], np.float64)
    return photo


A, B, ELSEWHERE = [0, 0, 20, 20], [100, 0, 120, 20], [300, 300, 320, 320]


def test_hand_computed_ap_recall_and_precision() -> None:
    """Ranked: A 0.9 (TP), elsewhere 0.8 (FP), B 0.7 (TP), A again 0.6 (FP, A is taken).  Precision
    1, 1/2, 2/3, 1/2 at recall 1/2, 1/2, 1, 1: AP = 1/2 × 1 + 1/2 × 2/3 = 5/6."""
    gt = [faces(A, B)]
    det = [detections((A, 0.6), (ELSEWHERE, 0.8), (A, 0.9), (B, 0.7))]
    m = evaluate_detections(det, gt, score_threshold=0.75)
    assert m.ap == pytest.approx(5 / 6)
    assert (m.recall, m.precision, m.found, m.faces, m.detections) == (0.5, 0.5, 1, 2, 4)
    m = evaluate_detections(det, gt, score_threshold=0.5)
    assert (m.recall, m.precision) == (1.0, 0.5)


def test_detections_equal_to_the_ground_truth() -> None:
    gt = [faces(A, B), faces(), faces(ELSEWHERE)]
    det = [detections((A, 0.9), (B, 0.8)), detections(), detections((ELSEWHERE, 0.7))]
    m = evaluate_detections(det, gt)
    assert (m.ap, m.recall, m.precision, m.keypoint_nme, m.keypoint_recall) == (1.0, 1.0, 1.0, 0.0, 1.0)
    assert (m.faces, m.photos, m.keypoint_faces) == (3, 3, 3)
    np.testing.assert_array_equal(m.point_errors, np.zeros(5))


def test_photos_are_matched_separately_and_iou_is_continuous() -> None:
    # the same box in another photo finds nothing there
    m = evaluate_detections([detections((A, 0.9)), detections()], [faces(), faces(A)])
    assert (m.ap, m.recall) == (0.0, 0.0)
    # half of A's area: IoU exactly 0.5 with continuous coordinates (no +1): a match
    assert evaluate_detections([detections(([0, 0, 20, 10], 0.9))], [faces(A)]).recall == 1.0
    assert evaluate_detections([detections(([0, 0, 20, 9.9], 0.9))], [faces(A)]).recall == 0.0


def test_keypoint_errors_over_found_faces() -> None:
    """Points moved right by 0, 0.5, 1, 2, 3 px; inter-ocular distance (eye centres) 10 px: errors 0 … 0.3,
    NME 0.13; 3 of 5 points within 0.1."""
    moved = EYES_10_APART + np.array([[0, 0], [0.5, 0], [1, 0], [2, 0], [3, 0]])
    det = [detections((A, 0.9), (B, 0.2), points=moved)]
    m = evaluate_detections(det, [faces(A, B)], score_threshold=0.5)  # B's detection is below the threshold
    assert m.keypoint_faces == 1 and m.keypoint_nme == pytest.approx(0.13)
    np.testing.assert_allclose(m.point_errors, [0, 0.05, 0.1, 0.2, 0.3])
    assert m.keypoint_recall == pytest.approx(0.6)
    # faces without keypoints are left out of the keypoint metrics, not of the box metrics
    m = evaluate_detections(det, [faces(A, B, has_keypoints=np.array([False, True]))], score_threshold=0.1)
    assert (m.recall, m.keypoint_faces) == (1.0, 1)
    # another normalising distance per face (e.g. the outer eye corners; 25 px here): errors divided by it
    m = evaluate_detections(det, [faces(A, B)], keypoint_norms=[np.array([25.0, 99.0])])
    assert m.keypoint_nme == pytest.approx(1.3 / 25) and m.keypoint_recall == pytest.approx(0.8)
    with pytest.raises(ValueError, match="keypoint norm arrays"):
        evaluate_detections(det, [faces(A, B)], keypoint_norms=[])
    # nothing found: keypoint metrics undefined
    m = evaluate_detections([detections()], [faces(A)])
    assert math.isnan(m.keypoint_nme) and math.isnan(m.keypoint_recall) and m.ap == 0.0


def test_detection_table_and_json() -> None:
    gt, det = [faces(A, B)], [detections((A, 0.9), (ELSEWHERE, 0.8))]
    results = {"mine": evaluate_detections(det, gt), "published": evaluate_detections([detections()], gt)}
    text = detection_table(results)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["model", "AP", "recall"]
    assert lines[1].split()[:4] == ["mine", "50.00%", "50.00%", "50.00%"] and "1/2" in lines[1]
    assert lines[2].split()[:3] == ["published", "0.00%", "0.00%"] and " - " in lines[2]  # precision undefined
    doc = json.loads(json.dumps(results["published"].to_dict()))
    assert doc["precision"] is None and doc["point_errors"]["nose"] is None and doc["faces"] == 2


def test_eval_detector_command_on_three_afw_photos(tmp_path: Path, capsys) -> None:
    afw = shared_path("data", "300w", "afw")
    weights = published_detector()
    photos = sorted({p.stem.rsplit("_", 1)[0] for p in afw.glob("*.pts")})
    val = ["111076519", "1051618982", "1130084326"]
    split = {
        "format": "hrface-landmark-split",
        "version": 1,
        "train": [f"afw/{p}" for p in photos if p not in val],
        "val": [f"afw/{p}" for p in val],
    }
    (tmp_path / "split.json").write_text(json.dumps(split))
    out = tmp_path / "metrics.json"
    split_file = str(tmp_path / "split.json")
    args = ["eval-detector", "--model", str(weights), "--pts-dir", str(afw), "--split-file", split_file]
    assert main([*args, "--json", str(out)]) == 0
    m = json.loads(out.read_text())[str(weights)]
    n_faces = sum(len(list(afw.glob(f"{p}_*.pts"))) for p in val)
    assert (m["photos"], m["faces"]) == (3, n_faces)
    assert m["recall"] >= 0.75 and m["ap"] >= 0.75
    assert 0 < m["keypoint_nme"] < 0.15 and m["keypoint_faces"] == m["found"]
    assert str(weights) in capsys.readouterr().out
    # the 300W normalisation: the outer eye corners are farther apart than the eye centres, so the NME is lower
    assert main([*args, "--json", str(out), "--keypoint-norm", "outer-corners"]) == 0
    outer = json.loads(out.read_text())[str(weights)]
    assert outer["recall"] == m["recall"] and 0.6 < outer["keypoint_nme"] / m["keypoint_nme"] < 0.9
    assert "outer-eye-corner" in capsys.readouterr().out
    # --landmarker adds a row per model whose keypoints are the landmark model's 5 points (measured: 8.2 -> 3.9 %)
    assert main([*args, "--json", str(out), "--landmarker", "hrface_w18_300w_v3"]) == 0
    rows = json.loads(out.read_text())
    refined = rows[f"{weights} + hrface_w18_300w_v3"]
    assert rows[str(weights)]["keypoint_nme"] == pytest.approx(m["keypoint_nme"])
    assert (refined["recall"], refined["ap"], refined["found"]) == (m["recall"], m["ap"], m["found"])
    assert refined["keypoint_nme"] < 0.6 * m["keypoint_nme"]
    assert main([*args, "--keypoint-norm", "outer-corners", "--small-faces", "2"]) == 2
    assert "--keypoint-norm outer-corners needs the landmarks" in capsys.readouterr().err

    assert (
        main(
            [
                "eval-detector",
                "--model",
                str(tmp_path / "missing.pth"),
                "--pts-dir",
                str(afw),
                "--split-file",
                split_file,
            ]
        )
        == 2
    )
    assert capsys.readouterr().err.startswith("hrface: error: ")
    assert main([*args, "--model", str(weights)]) == 2  # the same model twice
    assert "given twice" in capsys.readouterr().err


def test_recall_and_keypoint_error_by_face_size() -> None:
    """Square faces of 10, 30, 60 and 120 px; the 30 and 120 px faces are found, the 60 px one only below
    the score threshold. Keypoint errors: 1 px on an eye distance of 10 (0.1) and 0 px."""
    sizes = (10, 30, 60, 120)
    boxes = [[200 * i, 0, 200 * i + s, s] for i, s in enumerate(sizes)]
    gt = [faces(*boxes)]
    shifted = EYES_10_APART + [1.0, 0.0]
    det = Photo(np.asarray([boxes[1], boxes[2], boxes[3]], np.float64), np.stack([shifted, shifted, EYES_10_APART]))
    det.scores = np.array([0.9, 0.3, 0.8])
    m = evaluate_detections([det], gt, score_threshold=0.5)
    assert [b.label for b in m.by_size] == ["<24", "24-48", "48-96", ">=96"]
    assert [b.faces for b in m.by_size] == [1, 1, 1, 1] and [b.found for b in m.by_size] == [0, 1, 0, 1]
    assert [b.recall for b in m.by_size] == [0.0, 1.0, 0.0, 1.0]
    nme = [b.keypoint_nme for b in m.by_size]
    assert math.isnan(nme[0]) and nme[1] == pytest.approx(0.1) and math.isnan(nme[2]) and nme[3] == 0.0
    assert m.keypoint_nme == pytest.approx(0.05) and m.recall == 0.5  # the overall figures are unchanged
    doc = m.to_dict()["by_size"]
    assert doc[1] == {
        "size": "24-48",
        "low": 24.0,
        "high": 48.0,
        "faces": 1,
        "found": 1,
        "recall": 1.0,
        "keypoint_nme": pytest.approx(0.1),
        "keypoint_faces": 1,
    }
    assert doc[0]["keypoint_nme"] is None and doc[3]["high"] is None  # NaN and infinity become null
    table = size_table({"a": m, "b": evaluate_detections([detections()], gt)})
    assert "<24 px (1)" in table and ">=96 px (1)" in table
    lines = table.splitlines()
    assert lines[1].split()[1:] == ["0.0%", "100.0%", "0.0%", "100.0%"] and lines[2].split()[1:] == ["0.0%"] * 4
    assert lines[4].split()[1:] == ["-", "10.0%", "-", "0.0%"]


def test_faces_without_keypoints_count_for_recall_only() -> None:
    gt = [faces(A, [50, 50, 150, 150], has_keypoints=False)]
    m = evaluate_detections([detections((A, 0.9), ([50, 50, 150, 150], 0.9))], gt)
    assert m.recall == 1.0 and m.keypoint_faces == 0 and math.isnan(m.keypoint_nme)
    assert [b.found for b in m.by_size] == [1, 0, 0, 1] and "keypoint NME" not in size_table({"x": m})
