"""The small-face test (mosaics of held-out photos) and ``eval-detector`` on it and on WIDER FACE boxes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import published_detector, shared_path
from hrface.cli.main import main
from hrface.data.detection import DetectionSample, read_retinaface_labels
from hrface.evaluation.false_faces import false_face_table, false_faces
from hrface.evaluation.small_faces import CANVAS, small_face_image, small_face_test
from hrface.io.image import read_image, write_image
from hrface.ops import box_sizes
from hrface.runtime.detector import DEFAULT_DETECTOR

POINTS = np.array([[30, 40], [50, 40], [40, 50], [32, 60], [48, 60]], np.float32)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[DetectionSample]:
    """5 photos (600 × 480 px) with a bright 200 × 250 face (224 px) and its 5 keypoints each."""
    root = tmp_path_factory.mktemp("photos")
    out = []
    for i in range(5):
        image = np.full((480, 600, 3), 20 * i, np.uint8)
        image[100:350, 150:350] = 230
        path = root / f"p{i}.png"
        write_image(path, image)
        out.append(DetectionSample(str(path), [[150, 100, 350, 350]], (POINTS * 5 + [50, 0])[None], photo=f"p{i}"))
    return out


def test_each_test_image_depends_on_seed_and_index_only(photos):
    image, truth = small_face_image(photos, 3, seed=1)
    assert image.shape == (CANVAS[1], CANVAS[0], 3) and truth.num_faces >= 4  # a 2x2 grid at least
    again = list(small_face_test(photos, 5, seed=1))[3]
    np.testing.assert_array_equal(again[0], image)
    np.testing.assert_array_equal(again[1].boxes, truth.boxes)
    other, _ = small_face_image(photos, 3, seed=2)
    assert not np.array_equal(other, image)
    assert ((truth.boxes >= 0) & (truth.boxes <= np.tile(CANVAS, 2))).all() and truth.has_keypoints.all()


def test_faces_fall_in_every_size_bucket(photos):
    sizes = np.concatenate([box_sizes(t.boxes) for _, t in small_face_test(photos, 12)])
    counts = np.histogram(sizes, bins=[8, 24, 48, 96, 1e9])[0]
    assert sizes.min() >= 8 and (counts >= 0.1 * len(sizes)).all(), counts
    for image, truth in small_face_test(photos, 2):  # the faces are where the boxes are: bright, on a grey canvas
        for box in truth.boxes:
            x1, y1, x2, y2 = np.round(box).astype(int)
            assert image[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].min() > 200


def test_eval_detector_small_faces_and_saved_test(tmp_path):
    """Two mosaics of 3 held-out AFW photos: JSON with recall by size; the saved test matches the in-memory one."""
    afw = shared_path("data", "300w", "afw")
    val = ["111076519", "1051618982", "1130084326"]
    photos = sorted({p.stem.rsplit("_", 1)[0] for p in afw.glob("*.pts")})
    split = {"format": "hrface-landmark-split", "version": 1, "val": [f"afw/{p}" for p in val]}
    split["train"] = [f"afw/{p}" for p in photos if p not in val]
    (tmp_path / "split.json").write_text(json.dumps(split))
    weights = str(published_detector())
    args = ["eval-detector", "--model", weights, "--pts-dir", str(afw), "--split-file", str(tmp_path / "split.json")]
    args += ["--small-faces", "2", "--max-size", "800", "none", "--save-test", str(tmp_path / "test")]
    assert main([*args, "--json", str(tmp_path / "a.json")]) == 0
    doc = json.loads((tmp_path / "a.json").read_text())
    assert set(doc) == {f"{weights} @800", f"{weights} @none"}
    full, small = doc[f"{weights} @none"], doc[f"{weights} @800"]
    assert [b["size"] for b in full["by_size"]] == ["<24", "24-48", "48-96", ">=96"]
    assert sum(b["faces"] for b in full["by_size"]) == full["faces"] >= 8
    assert full["photos"] == 2 and full["recall"] >= small["recall"]  # downscaling loses small faces
    assert full["by_size"][3]["recall"] == 1.0  # large faces are all found
    saved = read_retinaface_labels(tmp_path / "test" / "label.txt")
    assert [s.num_faces for s in saved] and sum(s.num_faces for s in saved) == full["faces"]
    assert read_image(saved[0].image).shape == (CANVAS[1], CANVAS[0], 3)
    assert main([*args[:-2], "--json", str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text()) == doc  # reproducible


def test_eval_detector_on_wider_face_boxes(tmp_path, capsys):
    gt = shared_path("data", "widerface", "train_samples", "wider_face_train_bbx_gt_samples.txt")
    out = tmp_path / "wider.json"
    args = ["eval-detector", "--wider-gt", str(gt), "--model", str(published_detector()), "--max-size", "none"]
    args += ["--single-pass", "--threads", "1"]
    assert main([*args, "--json", str(out)]) == 0
    m = next(iter(json.loads(out.read_text()).values()))
    assert m["photos"] == 3 and m["faces"] == sum(b["faces"] for b in m["by_size"]) and m["keypoint_faces"] == 0
    assert m["recall"] > 0.5
    assert "keypoint NME" not in capsys.readouterr().out.split("recall by face size")[1]  # boxes only
    assert main(["eval-detector", "--wider-gt", str(gt), "--small-faces", "3", "--model", "x"]) == 2
    assert main(["eval-detector", "--pts-dir", str(tmp_path)]) == 2  # no detector


def test_false_faces_match_neither_the_annotation_nor_the_reference() -> None:
    boxes = np.array([[0, 0, 10, 10], [100, 100, 120, 120], [200, 200, 230, 230], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.95, 0.85, 0.55, 0.4])
    annotated, reference = np.array([[1, 1, 10, 11]]), np.array([[101, 99, 121, 119]])
    # Box 0 is annotated, box 1 a face the reference found; box 2 (0.55) is false, box 3 is under every threshold.
    assert false_faces(boxes, scores, [annotated, reference]) == [1, 0, 0, 0, 0]
    assert false_faces(boxes, scores, [annotated]) == [2, 1, 1, 1, 0]
    assert false_faces(boxes, scores, []) == [3, 2, 2, 2, 1]
    assert false_faces(boxes[:0], scores[:0], [annotated]) == [0] * 5
    assert "| a | 1 | 0 | 0 | 0 | 0 |" in false_face_table({"a": [1, 0, 0, 0, 0]})


def test_eval_detector_counts_false_faces_against_a_reference(tmp_path, capsys):
    # A detector is its own reference: none of its faces can be false; the shipped one gets a count per score.
    gt = shared_path("data", "widerface", "train_samples", "wider_face_train_bbx_gt_samples.txt")
    published = str(published_detector())
    args = ["eval-detector", "--wider-gt", str(gt), "--model", published, "--model", DEFAULT_DETECTOR]
    args += ["--reference", published, "--threads", "1", "--json", str(tmp_path / "r.json")]
    assert main(args) == 0
    assert "false faces (detectors run at --threshold 0.5)" in capsys.readouterr().out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc[published]["false_faces"] == {"reference": published, "0.5": 0, "0.6": 0, "0.7": 0, "0.8": 0, "0.9": 0}
    counts = [doc[DEFAULT_DETECTOR]["false_faces"][t] for t in ("0.5", "0.6", "0.7", "0.8", "0.9")]
    assert counts == sorted(counts, reverse=True)
