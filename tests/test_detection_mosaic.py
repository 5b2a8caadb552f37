"""Mosaic and zoom-out training images: faces land where their targets say, items are seeded per
(seed, epoch, index), face sizes follow the configured range, and the defaults change nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hrface.data.detection import DetectionSample
from hrface.data.detection.canvas import CanvasOptions, Faces, build_canvas
from hrface.errors import ConfigError
from hrface.io.image import read_image, write_image
from hrface.ops import BGR_MEAN, box_sizes
from hrface.training.detection.config import DetectionAugmentConfig, detection_config_from_dict
from hrface.training.detection.dataset import DetectionTrainDataset
from hrface.training.detection.mosaic import choose_grid

COLOURS = [(40, 200, 90), (200, 60, 160), (90, 120, 230)]  # one BGR colour per face; the background is 0
MARK = 255  # a white square on each face's nose keypoint


def synthetic_photo(width: int, height: int, boxes: list[list[float]]) -> tuple[np.ndarray, Faces]:
    """A black photo with flat-coloured face boxes, a white 8 × 8 mark centred on each nose keypoint."""
    image = np.zeros((height, width, 3), np.uint8)
    keypoints = []
    for (x1, y1, x2, y2), colour in zip(boxes, COLOURS, strict=False):
        image[int(y1) : int(y2), int(x1) : int(x2)] = colour
        w, h = x2 - x1, y2 - y1
        points = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.55], [0.35, 0.8], [0.65, 0.8]]) * [w, h] + [x1, y1]
        nose = np.round(points[2]).astype(int)
        image[nose[1] - 4 : nose[1] + 4, nose[0] - 4 : nose[0] + 4] = MARK
        points[2] = nose  # the mark's centre (continuous coordinates: pixels nose-4 … nose+3)
        keypoints.append(points)
    b = np.asarray(boxes, np.float64)
    return image, Faces(b, np.stack(keypoints), np.ones(len(b), bool))


def region_box(canvas: np.ndarray, colour: tuple[int, int, int], within: np.ndarray) -> np.ndarray:
    """Pixel-edge box of the pixels of ``colour`` (±12 per channel) inside ``within`` (xyxy, grown by 3 px)."""
    x1, y1 = (max(0, int(v) - 3) for v in within[:2])
    x2, y2 = (int(v) + 3 for v in within[2:])
    patch = canvas[y1:y2, x1:x2].astype(int)
    ys, xs = np.nonzero((np.abs(patch - np.asarray(colour)) <= 12).all(axis=2))
    return np.array([xs.min() + x1, ys.min() + y1, xs.max() + 1 + x1, ys.max() + 1 + y1], np.float64)


def mark_centre(canvas: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Centroid (continuous coordinates) of the white mark inside ``box``, weighted by brightness above the face."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    patch = canvas[y1:y2, x1:x2].astype(np.float64).min(axis=2)
    weight = np.clip(patch - 200, 0, None)
    ys, xs = np.mgrid[y1:y2, x1:x2]
    return np.array([(weight * (xs + 0.5)).sum(), (weight * (ys + 0.5)).sum()]) / weight.sum()


def test_faces_land_on_the_pixels_their_targets_describe():
    photos = [
        synthetic_photo(200, 160, [[20, 30, 80, 100], [120, 40, 170, 110]]),
        synthetic_photo(160, 200, [[40, 50, 110, 140]]),
        synthetic_photo(180, 180, [[10, 10, 70, 90], [100, 90, 160, 170], [90, 10, 150, 80]]),
        synthetic_photo(120, 100, [[30, 20, 90, 90]]),
    ]
    options = CanvasOptions(face_size=(30.0, 60.0), min_face=1.0)
    checked = 0
    for seed in range(6):
        canvas, faces = build_canvas(photos, (400, 400), 2, np.random.default_rng(seed), options)
        assert canvas.shape == (400, 400, 3) and len(faces.boxes) == 7  # every photo fits its 200-px cell
        colours = [c for p in photos for c in COLOURS[: len(p[1].boxes)]]
        for box, points, colour in zip(faces.boxes, faces.keypoints, colours, strict=True):
            np.testing.assert_allclose(region_box(canvas, colour, box), box, atol=1.0)
            np.testing.assert_allclose(mark_centre(canvas, box), points[2], atol=0.6)
            checked += 1
        # outside the photos' pasted areas the canvas keeps the mean colour
        assert (canvas == np.asarray(BGR_MEAN, np.uint8)).all(axis=2).mean() > 0.2
    assert checked == 42


def test_a_window_clips_the_faces_it_cuts():
    # A 400 × 300 photo scaled so that one face is 100 px, on a 160-px canvas: only a window of it fits.
    image, faces = synthetic_photo(400, 300, [[150, 100, 250, 200], [20, 20, 80, 90], [300, 120, 390, 280]])
    options = CanvasOptions(face_size=(100.0, 100.0), min_face=1.0)
    clipped = 0
    for seed in range(8):
        canvas, out = build_canvas([(image, faces)], (160, 160), 1, np.random.default_rng(seed), options)
        assert len(out.boxes) >= 1  # the reference face is always inside its window
        assert ((out.boxes >= 0) & (out.boxes <= 160)).all()
        for box in out.boxes:
            pixel = canvas[int(box[1]) + 2, int(box[0]) + 2].astype(int)
            colour = COLOURS[int(np.argmin([np.abs(pixel - c).sum() for c in COLOURS]))]
            np.testing.assert_allclose(region_box(canvas, colour, box), box, atol=1.0)
        clipped += int(((out.boxes == 0) | (out.boxes == 160)).any())
    assert clipped  # some faces were cut by the canvas edge: their boxes are the visible part


def test_reference_faces_take_the_drawn_sizes_and_small_faces_are_dropped():
    photos = [synthetic_photo(300, 240, [[40, 40, 160, 190]]) for _ in range(9)]  # one 134-px face each
    options = CanvasOptions(face_size=(10.0, 100.0), min_face=0.0)
    sizes = []
    for seed in range(40):
        _, faces = build_canvas(photos, (640, 640), 3, np.random.default_rng(seed), options)
        sizes += box_sizes(faces.boxes).tolist()
    sizes = np.asarray(sizes)
    assert len(sizes) == 360 and sizes.min() >= 10 * 0.97 and sizes.max() <= 100 * 1.03
    # log-uniform: a quarter in each quarter of the log range, about
    quarters = np.histogram(np.log10(sizes), bins=4, range=(1, 2))[0] / len(sizes)
    assert (np.abs(quarters - 0.25) < 0.08).all(), quarters
    options = CanvasOptions(face_size=(10.0, 100.0), min_face=30.0)
    _, faces = build_canvas(photos, (640, 640), 3, np.random.default_rng(0), options)
    assert len(faces.boxes) and box_sizes(faces.boxes).min() >= 30


def test_choose_grid_draws_nothing_without_mosaics():
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert choose_grid(rng, 0.0, 0.0, [2, 3]) is None and rng.bit_generator.state == state
    layouts = [choose_grid(np.random.default_rng(s), 0.5, 0.25, [2, 3]) for s in range(400)]
    counts = {k: layouts.count(k) for k in (None, 1, 2, 3)}
    assert abs(counts[None] - 100) < 30 and abs(counts[1] - 100) < 30 and abs(counts[2] + counts[3] - 200) < 40


@pytest.fixture
def photos(tmp_path) -> list[DetectionSample]:
    out = []
    for i in range(4):
        image, faces = synthetic_photo(160 + 20 * i, 140, [[20, 20, 80, 90], [100, 40, 150, 100]])
        path = tmp_path / f"p{i}.png"
        write_image(path, image)
        has = np.array([True, i != 2])
        out.append(DetectionSample(str(path), faces.boxes, np.where(has[:, None, None], faces.keypoints, np.nan), has))
    return out


def test_mosaic_items_are_seeded_per_seed_epoch_and_index(photos):
    aug = DetectionAugmentConfig(mosaic_prob=0.6, zoom_out_prob=0.4, face_size=[12.0, 40.0], min_face=4.0)
    a = DetectionTrainDataset(photos, 96, seed=5, augmentation=aug)
    b = DetectionTrainDataset(list(photos), 96, seed=5, augmentation=aug)
    for index in range(4):
        (ia, ta), (ib, tb) = a[index], b[index]
        assert torch.equal(ia, ib) and torch.equal(ta, tb)
        assert ia.shape == (3, 96, 96) and ta.shape[1] == 15
        assert ((ta[:, :4] >= 0) & (ta[:, :4] <= 1)).all() and set(ta[:, 14].tolist()) <= {1.0, -1.0}
        sizes = box_sizes(ta[:, :4].numpy() * 96)
        assert (sizes >= 4).all()
    first = a[0][0]
    a.set_epoch(1)
    assert not torch.equal(a[0][0], first)
    a.set_epoch(0)
    assert torch.equal(a[0][0], first)
    assert not torch.equal(DetectionTrainDataset(photos, 96, seed=6, augmentation=aug)[0][0], first)


def test_cached_photos_give_the_same_items_and_stay_unchanged(photos):
    aug = DetectionAugmentConfig(mosaic_prob=0.5, zoom_out_prob=0.25, face_size=[12.0, 40.0], min_face=4.0)
    plain = DetectionTrainDataset(photos, 96, seed=3, augmentation=aug)
    budget = sum(read_image(p.image).nbytes for p in photos[:3])  # room for the first three photos only
    cached = DetectionTrainDataset(photos, 96, seed=3, augmentation=aug, cache_bytes=budget)
    assert sorted(cached.cached) == [0, 1, 2]
    copies = {i: photo.copy() for i, photo in cached.cached.items()}
    for epoch in range(6):  # every layout: reference crops, zoom-outs and mosaics (read-only photos)
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for index in range(len(photos)):
            (a, ta), (b, tb) = plain[index], cached[index]
            assert torch.equal(a, b) and torch.equal(ta, tb)
    assert all(np.array_equal(cached.cached[i], copies[i]) for i in copies)
    Path(photos[0].image).unlink()  # a cached photo is not read again
    cached.augmentation = DetectionAugmentConfig()  # reference crops: item 0 draws photo 0 only
    assert cached[0][0].shape == (3, 96, 96)
    assert DetectionTrainDataset(photos, 96, cache_bytes=0).cached == {}
    with pytest.raises(ConfigError, match="image_cache_mb"):
        detection_config_from_dict({"data": {"image_cache_mb": -1}})


def test_augmentation_config_defaults_and_errors():
    c = detection_config_from_dict({})
    assert (c.augmentation.mosaic_prob, c.augmentation.zoom_out_prob) == (0.0, 0.0)  # off: the reference recipe
    c = detection_config_from_dict({"augmentation": {"mosaic_prob": 0.5, "mosaic_grids": [2, 4]}})
    assert c.augmentation.mosaic_grids == [2, 4]
    for bad, match in (
        ({"mosaic_prob": 0.7, "zoom_out_prob": 0.5}, "sum of at most 1"),
        ({"mosaic_grids": [0]}, "mosaic_grids"),
        ({"face_size": [50, 10]}, "face_size"),
        ({"mosaic_grids": [2.5]}, "must be int"),
    ):
        with pytest.raises(ConfigError, match=match) as info:
            detection_config_from_dict({"augmentation": bad})
        assert "\n" not in str(info.value)
