"""Hard negatives for detector training (issue 34): face-free cuts hold no known face, mined false faces are cut
with context, face-free images train as images without faces, canvases can lie on them, and ``eval-detector
--face-free`` counts every detection on face-free images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hrface.cli.main import main
from hrface.data.detection import DetectionSample
from hrface.data.detection.canvas import CanvasOptions, Faces, build_canvas
from hrface.errors import ConfigError
from hrface.evaluation.small_faces import small_face_image
from hrface.io.image import read_image, write_image
from hrface.runtime.detector import DEFAULT_DETECTOR
from hrface.training.detection.config import DetectionAugmentConfig
from hrface.training.detection.dataset import DetectionTrainDataset
from hrface.training.detection.negatives import (
    background_cuts,
    face_free,
    false_face_cuts,
    texture,
    write_negatives,
)
from hrface.training.detection.sources import face_free_samples

SHARED = Path(__file__).resolve().parents[2] / "shared"


def test_face_free_allows_a_sliver_of_a_face_only() -> None:
    face = np.array([[100.0, 100.0, 200.0, 200.0]])
    assert face_free(np.array([0, 0, 100, 100]), face)  # touches the corner: nothing inside
    assert face_free(np.array([0, 0, 110, 300]), face)  # 10 % of the face
    assert not face_free(np.array([0, 0, 150, 300]), face)  # half of it
    assert not face_free(np.array([120, 120, 180, 180]), face)  # inside the face
    assert face_free(np.array([0, 0, 50, 50]), np.zeros((0, 4)))


def test_false_faces_are_cut_with_context_and_never_around_a_known_face() -> None:
    known = np.array([[300.0, 300.0, 400.0, 400.0]])
    boxes = np.array([[50.0, 50.0, 90.0, 90.0], [300.0, 305.0, 400.0, 400.0], [405.0, 300.0, 445.0, 340.0]])
    scores = np.array([0.9, 0.95, 0.8])
    cuts = false_face_cuts(boxes, scores, known, 640, 480, threshold=0.5)
    # the 2nd detection is the known face; the 3rd sits beside it: its 3x square holds 28 % of the face, 2x 9 %
    rois = [roi for roi, _ in cuts]
    assert len(cuts) == 2 and [s for _, s in cuts] == [0.9, 0.8]
    np.testing.assert_array_equal(rois[0], [10, 10, 130, 130])  # 3 x 40 px, centred on (70, 70)
    np.testing.assert_array_equal(rois[1], [385, 280, 465, 360])
    assert false_face_cuts(boxes, scores, known, 640, 480, threshold=0.95) == []  # below the threshold


def test_background_cuts_and_textures_are_reproducible() -> None:
    known = np.array([[0.0, 0.0, 320.0, 240.0]])
    cuts = background_cuts(known, 640, 480, 3, np.random.default_rng(1))
    assert len(cuts) == 3 and all(face_free(c, known) for c in cuts)
    again = background_cuts(known, 640, 480, 3, np.random.default_rng(1))
    assert all((a == b).all() for a, b in zip(cuts, again, strict=True))
    images = [texture(np.random.default_rng(seed), 64) for seed in range(8)]
    assert all(i.shape == (64, 64, 3) and i.dtype == np.uint8 for i in images)
    assert len({i.tobytes() for i in images}) == 8 and min(i.std() for i in images) > 1


def test_write_negatives_lists_every_file(tmp_path: Path) -> None:
    photo = np.full((240, 320, 3), 90, np.uint8)
    write_image(tmp_path / "photo.png", photo)
    sample = DetectionSample(str(tmp_path / "photo.png"), np.array([[10.0, 10.0, 60.0, 60.0]]))
    reference = {sample.image: np.array([[250.0, 150.0, 300.0, 200.0]])}  # an unannotated face

    def detect(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # one false face, the two faces found too
        return np.array([[150.0, 100.0, 180.0, 130.0], [10.0, 10.0, 60.0, 60.0], [250.0, 150.0, 300.0, 200.0]]), (
            np.array([0.7, 0.99, 0.9])
        )

    cuts = write_negatives(tmp_path / "neg", [sample], reference, detect, 0.3, 1, 2, seed=0)
    kinds = [c.kind for c in cuts]
    assert kinds.count("false_face") == 1 and kinds.count("texture") == 2 and kinds.count("background") <= 1
    listed = json.loads((tmp_path / "neg" / "negatives.json").read_text())
    assert [c["file"] for c in listed] == [c.file for c in cuts]
    mined = next(c for c in cuts if c.kind == "false_face")
    assert mined.score == 0.7 and mined.roi == (120, 70, 210, 160)
    assert read_image(tmp_path / "neg" / mined.file).shape == (90, 90, 3)
    samples = face_free_samples([str(tmp_path / "neg")])
    assert len(samples) == len(cuts) and all(s.num_faces == 0 for s in samples)
    with pytest.raises(ConfigError, match="not a folder"):
        face_free_samples([str(tmp_path / "missing")])


def test_face_free_images_train_as_images_without_faces_and_lie_under_canvases(tmp_path: Path) -> None:
    wall = np.zeros((100, 100, 3), np.uint8)
    wall[:, :, 2] = 250  # pure red: the canvas fill (the mean colour) never is
    write_image(tmp_path / "wall.png", wall)
    face_photo = np.full((200, 200, 3), 60, np.uint8)
    write_image(tmp_path / "face.png", face_photo)
    samples = [
        DetectionSample(str(tmp_path / "face.png"), np.array([[50.0, 50.0, 150.0, 150.0]])),
        DetectionSample(str(tmp_path / "wall.png"), np.zeros((0, 4))),
    ]
    plain = DetectionTrainDataset(samples, 64, seed=0)
    image, targets = plain[1]
    assert image.shape == (3, 64, 64) and targets.shape == (0, 15)
    canvases = DetectionAugmentConfig(mosaic_prob=0.0, zoom_out_prob=1.0, background_prob=1.0)
    laid = DetectionTrainDataset(samples, 64, seed=0, augmentation=canvases)
    image, targets = laid[0]
    red = (image[2] + 123 > 200) & (image[0] + 104 < 60)  # red on the canvas outside the pasted photo
    assert red.float().mean() > 0.2 and len(targets) == 1
    mosaics = DetectionTrainDataset(samples, 64, seed=0, augmentation=DetectionAugmentConfig(mosaic_prob=1.0))
    for epoch in range(4):  # every cell holds the photo with a face; the wall stays a plain item
        mosaics.set_epoch(epoch)
        image, targets = mosaics[0]
        grid_cells = len(targets)
        assert grid_cells in (4, 9, 16), grid_cells
        assert mosaics[1][1].shape == (0, 15)
    all_free = DetectionAugmentConfig(mosaic_prob=1.0, negative_cell_prob=1.0)
    assert len(DetectionTrainDataset(samples, 64, seed=0, augmentation=all_free)[0][1]) == 1  # its own face only
    flat = DetectionTrainDataset(samples, 64, seed=0, augmentation=DetectionAugmentConfig(zoom_out_prob=1.0))
    assert not ((flat[0][0][2] + 123 > 200) & (flat[0][0][0] + 104 < 60)).any()


def test_canvas_background_keeps_the_faces_where_they_were() -> None:
    photo = np.full((120, 120, 3), 30, np.uint8)
    faces = Faces(np.array([[40.0, 40.0, 80.0, 80.0]]), np.full((1, 5, 2), 60.0), np.ones(1, bool))
    background = np.full((50, 70, 3), 200, np.uint8)
    plain, plain_faces = build_canvas([(photo, faces)], (200, 160), 1, np.random.default_rng(3), CanvasOptions())
    laid, laid_faces = build_canvas(
        [(photo, faces)], (200, 160), 1, np.random.default_rng(3), CanvasOptions(), background=background
    )
    np.testing.assert_array_equal(plain_faces.boxes, laid_faces.boxes)
    assert (laid == 200).all(axis=2).mean() > 0.2 and not (plain == 200).all(axis=2).any()


@pytest.mark.skipif(not (SHARED / "data" / "300w" / "afw").is_dir(), reason="needs ../shared")
def test_small_face_test_on_backgrounds_keeps_its_faces(tmp_path: Path) -> None:
    from hrface.data.detection.convert import detection_samples_from_landmarks
    from hrface.data.landmarks import read_300w_folder

    photos = detection_samples_from_landmarks(read_300w_folder(SHARED / "data" / "300w" / "afw")[:6])
    write_image(tmp_path / "bg.png", np.full((30, 40, 3), 250, np.uint8))
    plain, truth = small_face_image(photos, 0, seed=5)
    laid, laid_truth = small_face_image(photos, 0, seed=5, backgrounds=[tmp_path / "bg.png"])
    np.testing.assert_array_equal(truth.boxes, laid_truth.boxes)
    assert (laid == 250).all(axis=2).sum() > (plain == 250).all(axis=2).sum()


def test_eval_detector_counts_false_faces_on_face_free_images(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "free"
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(folder / f"t{i}.png", texture(rng, 96))
    out = tmp_path / "ff.json"
    assert main(["eval-detector", "--model", DEFAULT_DETECTOR, "--face-free", str(folder),
                 "--threshold", "0.02", "--json", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "false faces on 2 face-free images" in text
    row = json.loads(out.read_text())[DEFAULT_DETECTOR]
    counts = row["false_faces"]
    assert row["images"] == 2 and list(counts) == ["0.02", "0.5", "0.6", "0.7", "0.8", "0.9"]
    assert counts["0.02"] >= counts["0.5"] >= counts["0.9"] >= 0
    assert main(["eval-detector", "--model", "x", "--face-free", str(tmp_path / "none")]) == 2
    assert main(["eval-detector", "--model", "x", "--face-free", str(folder), "--small-faces", "1"]) == 2


@pytest.mark.skipif(not (SHARED / "data" / "widerface").is_dir(), reason="needs ../shared")
def test_eval_detector_by_threshold_trades_recall_for_precision(tmp_path: Path, capsys) -> None:
    gt = SHARED / "data" / "widerface" / "train_samples" / "wider_face_train_bbx_gt_samples.txt"
    out = tmp_path / "pr.json"
    args = ["eval-detector", "--wider-gt", str(gt), "--model", DEFAULT_DETECTOR, "--by-threshold"]
    assert main([*args, "--max-size", "480", "--json", str(out)]) == 0
    assert "recall / precision by score" in capsys.readouterr().out
    by_t = json.loads(out.read_text())[DEFAULT_DETECTOR]["by_threshold"]
    assert list(by_t) == ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]
    recalls = [row["recall"] for row in by_t.values()]
    assert recalls == sorted(recalls, reverse=True) and recalls[0] > recalls[-1] > 0
    assert all(0 < row["precision"] <= 1 for row in by_t.values())
