"""RetinaFace training augmentation and the detection training dataset, on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrface.data.detection import DetectionSample
from hrface.io.image import read_image, write_image
from hrface.ops import BGR_MEAN
from hrface.training.detection.augment import (
    CROP_SCALES,
    Faces,
    augment,
    choose_crop,
    crop,
    distort_colors,
    mirror,
    pad_to_square,
    prepare,
)
from hrface.training.detection.dataset import DetectionTrainDataset, detection_collate, target_rows
from hrface.training.landmarks.dataset import sample_rng

# A frontal face: image-left eye, image-right eye, nose, image-left and image-right mouth corners.
FRONTAL = np.array([[130, 140], [170, 140], [150, 160], [135, 180], [165, 180]], np.float64)


def _faces(boxes, keypoints=None) -> Faces:
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if keypoints is None:
        keypoints = np.full((len(boxes), 5, 2), np.nan)
    keypoints = np.asarray(keypoints, np.float64).reshape(len(boxes), 5, 2)
    return Faces(boxes, keypoints, np.isfinite(keypoints).all(axis=(1, 2)))


def _bright_box(net_input: np.ndarray, threshold: float = 70.0) -> np.ndarray:
    """Box (x1 y1 x2 y2, pixel edges) of the grey pixels brighter than ``threshold`` in all channels
    (the padding's mean colour is not grey: its channels differ by up to 19)."""
    bgr = net_input.transpose(1, 2, 0) + np.asarray(BGR_MEAN, np.float32)
    grey = bgr.max(axis=2) - bgr.min(axis=2) < 6
    ys, xs = np.nonzero((bgr > threshold).all(axis=2) & grey)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def test_choose_crop_keeps_faces_with_centres_inside():
    g = np.random.default_rng(5)
    xy = g.uniform(0, 560, (40, 2))
    boxes = np.concatenate([xy, xy + g.uniform(8, 80, (40, 2))], axis=1)
    boxes[0] = [100, 100, 100, 130]  # no area: never kept
    width, height = 640, 480
    sides = {int(s * height) for s in CROP_SCALES}
    for seed in range(30):
        found = choose_crop(width, height, boxes, np.random.default_rng(seed), image_size=640)
        assert found is not None
        roi, keep = found
        assert roi[2] - roi[0] == roi[3] - roi[1] and roi[2] - roi[0] in sides
        assert roi[0] >= 0 and roi[2] <= width and roi[1] >= 0 and roi[3] <= height
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        expected = ((centres > roi[:2]) & (centres < roi[2:])).all(1)
        expected[0] = False
        np.testing.assert_array_equal(keep, expected)
        fully_inside = ((boxes[1:, :2] >= roi[:2]) & (boxes[1:, 2:] <= roi[2:])).all(1)
        assert fully_inside.any()
    # A minimum size at the training scale removes small faces (here: all of them).
    assert choose_crop(width, height, boxes, np.random.default_rng(0), image_size=640, min_face_size=500) is None


def test_crop_clips_boxes_and_clamps_keypoints():
    kps = np.array([FRONTAL, np.full((5, 2), np.nan)])
    kps[0, 0] = [90, 95]  # outside the crop
    faces = _faces([[90, 95, 190, 200], [120, 130, 140, 150]], kps)
    image = np.arange(300 * 300 * 3, dtype=np.uint8).reshape(300, 300, 3)
    out, cropped = crop(image, faces, np.array([100, 100, 180, 180]))
    np.testing.assert_array_equal(out, image[100:180, 100:180])
    np.testing.assert_array_equal(cropped.boxes, [[0, 0, 80, 80], [20, 30, 40, 50]])
    np.testing.assert_array_equal(cropped.keypoints[0, 0], [0, 0])
    np.testing.assert_array_equal(cropped.keypoints[0, 1], [70, 40])
    assert np.isnan(cropped.keypoints[1]).all() and cropped.has_keypoints.tolist() == [True, False]


def test_mirror_swaps_keypoints():
    image = np.zeros((200, 300, 3), np.uint8)
    image[:, :10] = 255
    faces = _faces([[120, 120, 180, 200]], FRONTAL[None])
    out, flipped = mirror(image, faces)
    assert (out[:, -10:] == 255).all() and (out[:, :-10] == 0).all()
    np.testing.assert_array_equal(flipped.boxes, [[120, 120, 180, 200]])  # 300 − 180, 300 − 120
    k = flipped.keypoints[0]
    assert k[0, 0] < k[1, 0] and k[3, 0] < k[4, 0]  # left eye / mouth corner still on the image's left
    np.testing.assert_array_equal(k, [[130, 140], [170, 140], [150, 160], [135, 180], [165, 180]])
    _, twice = mirror(out, flipped)
    np.testing.assert_array_equal(twice.keypoints, faces.keypoints)


def test_distort_colors_is_seeded_and_keeps_grey_grey():
    grey = np.full((8, 8, 3), 128, np.uint8)
    outs = [distort_colors(grey, np.random.default_rng(s)) for s in range(40)]
    assert all(o.dtype == np.uint8 and o.shape == grey.shape for o in outs)
    assert all((o == o[..., :1]).all() for o in outs)  # no saturation: hue and saturation change nothing
    values = np.array([o[0, 0, 0] for o in outs])
    assert values.min() >= int(128 * 0.5 - 32) and values.max() <= int(128 * 1.5 + 32)
    assert len(set(values.tolist())) > 10 and (values == 128).any()
    colour = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        distort_colors(colour, np.random.default_rng(3)), distort_colors(colour, np.random.default_rng(3))
    )
    assert (distort_colors(colour, np.random.default_rng(3)) != colour).any()


def test_pad_to_square_uses_the_mean_colour():
    image = np.zeros((20, 50, 3), np.uint8)
    out = pad_to_square(image)
    assert out.shape == (50, 50, 3) and (out[:20] == 0).all()
    np.testing.assert_array_equal(out[20:].reshape(-1, 3), np.tile(np.array(BGR_MEAN, np.uint8), (30 * 50, 1)))
    assert pad_to_square(out) is out


def test_augment_targets_follow_the_image():
    """A bright square on black: after any augmentation, it is where the target box says."""
    image = np.zeros((400, 400, 3), np.uint8)
    box = np.array([150, 170, 210, 250], np.float64)
    image[170:250, 150:210] = 255
    kps = np.array([[165, 190], [195, 190], [188, 210], [168, 230], [192, 230]], np.float64)  # nose off-centre
    size = 160
    mirrored = 0
    for seed in range(16):
        net_input, faces = augment(image, _faces(box, kps[None]), np.random.default_rng(seed), size)
        assert net_input.shape == (3, size, size) and net_input.dtype == np.float32
        assert len(faces.boxes) == 1  # a single face is always inside a successful crop
        target = faces.boxes[0] * size
        np.testing.assert_allclose(_bright_box(net_input), target, atol=2.0)
        k = faces.keypoints[0] * size
        assert k[0, 0] < k[1, 0] and k[3, 0] < k[4, 0]
        assert ((k >= target[:2]) & (k <= target[2:])).all()
        # relative keypoint positions inside the box are kept, mirrored or not
        rel = (k - target[:2]) / (target[2:] - target[:2])
        expected = (kps - box[:2]) / (box[2:] - box[:2])
        is_mirrored = not np.allclose(rel[2], expected[2], atol=0.02)
        mirrored += is_mirrored
        if is_mirrored:
            expected = expected[[1, 0, 2, 4, 3]] * [-1, 1] + [1, 0]
        np.testing.assert_allclose(rel, expected, atol=0.02)
    assert 0 < mirrored < 16


def test_augment_falls_back_to_the_whole_image():
    # No crop can hold the 90 px wide face of a 100 × 60 image: the whole image is used, padded to 100 × 100.
    image = np.zeros((60, 100, 3), np.uint8)
    image[5:55, 5:95] = 255
    net_input, faces = augment(image, _faces([5, 5, 95, 55]), np.random.default_rng(1), image_size=100)
    assert len(faces.boxes) == 1 and not faces.has_keypoints.any()
    np.testing.assert_allclose(_bright_box(net_input), faces.boxes[0] * 100, atol=2.0)
    np.testing.assert_allclose(faces.boxes[0, [1, 3]], [0.05, 0.55], atol=1e-9)


def test_prepare_pads_resizes_and_clips():
    image = np.zeros((50, 100, 3), np.uint8)
    image[10:30, 20:60] = 255
    faces = _faces([[20, 10, 60, 30], [90, 40, 110, 60], [5, 5, 5, 9]])
    net_input, out = prepare(image, faces, image_size=100)
    np.testing.assert_allclose(out.boxes, [[0.2, 0.1, 0.6, 0.3], [0.9, 0.4, 1.0, 0.5]])  # degenerate dropped
    np.testing.assert_array_equal(_bright_box(net_input), [20, 10, 60, 30])
    np.testing.assert_allclose(net_input[:, 55:, :], 0.0)  # padding is the mean colour


def test_target_rows_layout():
    faces = _faces([[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.6, 0.7]], np.stack([FRONTAL / 300, np.full((5, 2), np.nan)]))
    rows = target_rows(faces)
    assert rows.shape == (2, 15) and rows.dtype == np.float32
    np.testing.assert_allclose(rows[0, 4:6], FRONTAL[0] / 300, rtol=1e-6)
    np.testing.assert_allclose(rows[0, 12:14], FRONTAL[4] / 300, rtol=1e-6)
    assert rows[0, 14] == 1 and (rows[1, 4:] == -1).all()


@pytest.fixture
def photo(tmp_path) -> DetectionSample:
    g = np.random.default_rng(0)
    image = g.integers(0, 60, (120, 160, 3), dtype=np.uint8)
    image[30:70, 40:80] = 250
    path = tmp_path / "photo.png"
    write_image(path, image)
    kps = np.array([[50, 45], [70, 45], [60, 55], [52, 62], [68, 62]], np.float32)
    return DetectionSample(str(path), [[40, 30, 80, 70], [100, 80, 130, 115]], np.stack([kps, np.full((5, 2), np.nan)]))


def test_dataset_items_are_deterministic(photo):
    a, b = DetectionTrainDataset([photo, photo], image_size=64, seed=3), DetectionTrainDataset([photo], 64, seed=3)
    img, targets = a[0]
    assert img.shape == (3, 64, 64) and img.dtype == torch.float32 and targets.dtype == torch.float32
    assert targets.ndim == 2 and targets.shape[1] == 15 and 1 <= len(targets) <= 2
    same_img, same_targets = b[0]
    assert torch.equal(img, same_img) and torch.equal(targets, same_targets)
    # the item is augment() with the generator of (seed, epoch, index)
    expected_img, expected_faces = augment(read_image(photo.image), Faces.of(photo), sample_rng(3, 0, 0), 64)
    assert torch.equal(img, torch.from_numpy(expected_img))
    assert torch.equal(targets, torch.from_numpy(target_rows(expected_faces)))
    a.set_epoch(1)
    assert not torch.equal(a[0][0], img)  # another epoch, another augmentation
    a.set_epoch(0)
    assert torch.equal(a[0][0], img)
    assert ((targets[:, :4] >= 0) & (targets[:, :4] <= 1)).all()
    assert set(targets[:, 14].tolist()) <= {1.0, -1.0}


def test_dataset_eval_mode_and_collate(photo):
    ds = DetectionTrainDataset([photo, photo], image_size=80, train=False)
    img, targets = ds[0]
    np.testing.assert_allclose(targets[:, :4].numpy(), photo.boxes / 160, rtol=1e-6)
    assert targets[:, 14].tolist() == [1.0, -1.0] and (targets[1, 4:14] == -1).all()
    np.testing.assert_allclose(targets[0, 4:14].numpy(), photo.keypoints[0].reshape(-1) / 160, rtol=1e-6)
    images, target_list = detection_collate([ds[0], ds[1]])
    assert images.shape == (2, 3, 80, 80) and len(target_list) == 2 and torch.equal(target_list[1], targets)
