"""Teacher targets: unannotated faces found by a teacher become box-only training faces, cached once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hrface.data.detection import DetectionSample, write_retinaface_labels
from hrface.errors import ConfigError
from hrface.io.image import read_image, write_image
from hrface.models.retinaface import RetinaFace
from hrface.runtime.detector import Detector
from hrface.training.detection.config import detection_config_from_dict, load_detection_config
from hrface.training.detection.dataset import DetectionTrainDataset
from hrface.training.detection.sources import build_detection_samples
from hrface.training.detection.teacher import add_teacher_faces, with_teacher_targets

KEYPOINTS = np.array([[30, 40], [50, 40], [40, 50], [32, 60], [48, 60]], np.float32)


def sample(path: str = "photo.png") -> DetectionSample:
    boxes = [[20, 25, 60, 75], [100, 20, 140, 70]]
    return DetectionSample(path, boxes, np.stack([KEYPOINTS, KEYPOINTS + [80, -5]]), photo="p", subset="s")


def test_unmatched_confident_detections_become_box_only_faces():
    s = sample()
    detections = np.array(
        [
            [22, 27, 62, 77, 0.99],  # the first annotated face (IoU 0.84): not added
            [124, 20, 164, 70, 0.95],  # shifted off the second (IoU 0.25 < 0.3): added
            [200, 100, 230, 140, 0.90],  # an unannotated face: added
            [300, 100, 330, 140, 0.60],  # below the threshold: not added
        ]
    )
    out = add_teacher_faces(s, detections, threshold=0.7, match_iou=0.3)
    assert out.num_faces == 4 and (out.image, out.photo, out.subset) == (s.image, "p", "s")
    np.testing.assert_array_equal(out.boxes[:2], s.boxes)
    np.testing.assert_array_equal(out.keypoints[:2], s.keypoints)
    np.testing.assert_allclose(out.boxes[2:], detections[[1, 2], :4])
    assert out.has_keypoints.tolist() == [True, True, False, False] and np.isnan(out.keypoints[2:]).all()
    assert add_teacher_faces(s, detections, threshold=0.7, match_iou=0.25).num_faces == 3  # now it is that face
    assert add_teacher_faces(s, detections[:0]) is s


def test_teacher_faces_are_targets_without_keypoints(tmp_path):
    path = tmp_path / "photo.png"
    write_image(path, np.zeros((100, 250, 3), np.uint8))
    s = add_teacher_faces(sample(str(path)), np.array([[200, 40, 240, 90, 0.9]]))
    _, targets = DetectionTrainDataset([s], 250, train=False)[0]
    assert targets[:, 14].tolist() == [1.0, 1.0, -1.0]  # −1: no keypoint loss for the teacher's face
    assert (targets[2, 4:14] == -1).all()
    np.testing.assert_allclose(targets[2, :4].numpy(), np.array([200, 40, 240, 90]) / 250, rtol=1e-6)


def test_the_teacher_runs_once_per_photo_and_is_cached(tmp_path, monkeypatch):
    photos = []
    for i in range(3):
        path = tmp_path / f"p{i}.png"
        write_image(path, np.full((80, 160, 3), 40 * i, np.uint8))
        photos.append(sample(str(path)))
    photos.append(photos[0])  # the same image twice: detected once
    calls = []

    def detect(image):
        calls.append(int(image[0, 0, 0]))
        return np.array([[140.0, 10, 159, 30], [0, 0, 10, 10]]), np.array([0.9, 0.1])

    cache = tmp_path / "teacher.json"
    out, report = with_teacher_targets(photos, "teacher-a", cache=str(cache), detect=detect)
    assert sorted(calls) == [0, 40, 80]
    assert [s.num_faces for s in out] == [3, 3, 3, 3] and (report.added, report.photos_with_added) == (4, 4)
    doc = json.loads(cache.read_text())
    assert doc["teacher"] == "teacher-a" and len(doc["photos"]) == 3
    assert all(len(rows) == 1 for rows in doc["photos"].values())  # the 0.1 detection is below the cache's 0.3

    def fail(image):
        raise AssertionError("the cache should have been used")

    again, _ = with_teacher_targets(photos, "teacher-a", threshold=0.95, cache=str(cache), detect=fail)
    assert [s.num_faces for s in again] == [2, 2, 2, 2]  # a new threshold, no new teacher run
    calls.clear()
    with_teacher_targets(photos, "teacher-b", cache=str(cache), detect=detect)  # another teacher: run again
    assert len(calls) == 3 and json.loads(cache.read_text())["teacher"] == "teacher-b"


def test_config_teacher_path_with_a_real_detector(tmp_path, capsys):
    """data.teacher = a RetinaFace checkpoint (random weights): its confident detections, minus those on
    annotated faces, are added to the training images only, and cached beside the config."""
    g = np.random.default_rng(0)
    images = []
    for i in range(3):
        path = tmp_path / "images" / f"img{i}.png"
        path.parent.mkdir(exist_ok=True)
        write_image(path, g.integers(0, 255, (96, 128, 3), dtype=np.uint8))
        images.append(DetectionSample(str(path), [[10 + i, 10, 50, 60]], KEYPOINTS[None] - 15 + i))
    write_retinaface_labels(tmp_path / "train.txt", images[:2], tmp_path / "images")
    write_retinaface_labels(tmp_path / "val.txt", images[2:], tmp_path / "images")
    torch.manual_seed(0)
    torch.save(RetinaFace("mobilenet0.25").eval().state_dict(), tmp_path / "teacher.pth")
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "data:\n  train: [{format: retinaface, path: train.txt, image_root: images}]\n"
        "  val: [{format: retinaface, path: val.txt, image_root: images}]\n"
        "  teacher: teacher.pth\n  teacher_threshold: 0.3\n  teacher_cache: runs/teacher.json\n"
    )
    c = load_detection_config(config)
    assert c.data.teacher == str(tmp_path / "teacher.pth") and c.data.teacher_cache == str(
        tmp_path / "runs/teacher.json"
    )
    train, val = build_detection_samples(c)
    assert "teacher targets:" in capsys.readouterr().out
    teacher = Detector(tmp_path / "teacher.pth", threshold=0.3)
    for annotated, merged in zip(images[:2], train, strict=True):
        found = teacher.detect(read_image(annotated.image))
        expected = add_teacher_faces(annotated, np.concatenate([found.boxes, found.scores[:, None]], 1), 0.3)
        np.testing.assert_allclose(merged.boxes, expected.boxes, atol=2e-3)
        assert merged.has_keypoints.tolist() == expected.has_keypoints.tolist()
    assert sum(s.num_faces for s in train) > 2  # random weights find plenty of "faces"
    assert [s.num_faces for s in val] == [1]  # validation keeps its annotation only
    assert Path(c.data.teacher_cache).is_file()


def test_teacher_config_errors():
    with pytest.raises(ConfigError, match="teacher_threshold must be in"):
        detection_config_from_dict({"data": {"teacher_threshold": 0.1}})
    c = detection_config_from_dict({"data": {"teacher": "retinaface_mnet025"}}, base_dir="/somewhere")
    assert c.data.teacher == "retinaface_mnet025"  # a registry name is not a path
