"""hrface.io.draw.draw_faces: annotated copies, input untouched, size-aware drawing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from hrface.geometry.pose import Pose, pose_from_rotation
from hrface.io import draw_faces
from hrface.io.draw import AXIS_COLORS, BOX_COLOR, KEYPOINT_COLORS, TRACK_COLORS, track_color


@dataclass
class Face:
    box: tuple[float, float, float, float]
    score: float = 0.9
    keypoints: np.ndarray | None = None
    landmarks: np.ndarray | None = None


KPS = np.array([[40.2, 50.7], [70.4, 50.1], [55.5, 65.0], [43.0, 80.3], [68.9, 80.6]])


def test_draw_returns_annotated_copy():
    img = np.full((120, 110, 3), 50, np.uint8)
    before = img.copy()
    lms = np.stack([np.linspace(35, 75, 68), np.linspace(45, 90, 68)], axis=1)
    out = draw_faces(img, [Face((30.4, 35.6, 80.2, 95.9), 0.97, KPS, lms)])
    assert out is not img and not np.shares_memory(out, img)
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(img, before)  # input untouched
    assert (out[36, 30:81] != 50).any(axis=1).sum() > 40  # top edge drawn
    assert (out[40:90, 30] != 50).any(axis=1).all()  # left edge drawn
    for (x, y), color in zip(KPS, KEYPOINT_COLORS, strict=True):
        assert out[round(y), round(x)].tolist() == list(color)  # 5 distinct keypoint colours
    assert (out[110:, :] == 50).all()  # far from the face: untouched


def test_draw_optional_parts_and_edge_cases():
    img = np.zeros((100, 100, 3), np.uint8)
    out = draw_faces(img, [Face((10, 10, 60, 70), 0.5)])  # keypoints and landmarks None
    assert (out != 0).any() and not img.any()
    assert (out[:5] == 0).all()  # the score label stays inside the image, next to the box
    dict_face = {"box": [5.0, 5.0, 40.0, 40.0], "score": 0.1, "keypoints": None, "landmarks": None}
    assert (draw_faces(img, [dict_face]) != 0).any()
    weird = Face((-1e12, np.nan, 1e12, 50.0), float("nan"), np.full((5, 2), np.inf), np.zeros((0, 2)))
    draw_faces(img, [weird, Face((-500.0, -500.0, 1e9, 1e9))])  # off-image / non-finite: no crash
    empty = draw_faces(img, [])
    np.testing.assert_array_equal(empty, img)
    assert empty is not img
    grey = draw_faces(np.zeros((50, 60), np.uint8), [Face((5, 5, 30, 30))])
    assert grey.shape == (50, 60, 3)


@pytest.mark.parametrize("size", [100, 4000])
def test_draw_scales_with_image_size(size):
    img = np.zeros((size, size, 3), np.uint8)
    s = size / 100
    out = draw_faces(img, [Face((20 * s, 20 * s, 80 * s, 80 * s), 0.9, KPS * s)])
    column = out[int(40 * s) : int(60 * s), int(20 * s) - int(5 * s) : int(20 * s) + int(5 * s) + 1] != 0
    width = column.any(axis=2).sum(axis=1).max()  # thickness of the left box edge
    if size == 100:
        assert 1 <= width <= 3
    else:
        assert 6 <= width <= 14  # ~0.2 % of the image: visible on a big photo
        x, y = (KPS[2] * s).round().astype(int)
        assert out[y, x + 10].tolist() == list(KEYPOINT_COLORS[2])  # radius > 10 px


@dataclass
class TrackedFace(Face):
    track_id: int = -1
    pose: Pose | None = None


def frontal_pose(yaw: float = 0.0, pitch: float = 0.0) -> Pose:
    """A Pose of the documented angles (roll 0): R = F · Ry(yaw) Rx(−pitch) · F, F = diag(1, −1, −1)."""
    a, b = np.radians([-pitch, yaw])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    f = np.diag([1.0, -1.0, -1.0])
    return pose_from_rotation(f @ ry @ rx @ f)


BOX = (20.0, 30.0, 90.0, 100.0)


def colour_mask(out: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    """Pixels of ``color`` or of a darker shade of it (anti-aliased edges on a black background)."""
    pixels, c = out.astype(np.float64), np.array(color, np.float64)
    norm = np.linalg.norm(pixels, axis=2)
    cosine = pixels @ c / np.maximum(norm * np.linalg.norm(c), 1e-9)
    return (cosine > 0.995) & (norm > 0.4 * np.linalg.norm(c))


def test_faces_without_track_id_or_pose_draw_as_before():
    img = np.full((120, 110, 3), 50, np.uint8)
    lms = np.stack([np.linspace(35, 75, 68), np.linspace(45, 90, 68)], axis=1)
    plain = draw_faces(img, [Face(BOX, 0.97, KPS, lms)])
    absent = draw_faces(img, [TrackedFace(BOX, 0.97, KPS, lms)])  # track_id -1 (untracked), pose None
    mapping = draw_faces(img, [{"box": BOX, "score": 0.97, "keypoints": KPS, "landmarks": lms, "pose": None}])
    np.testing.assert_array_equal(absent, plain)
    np.testing.assert_array_equal(mapping, plain)
    assert colour_mask(plain, BOX_COLOR).sum() > 100  # the default green box and label
    flag = draw_faces(img, [TrackedFace(BOX, 0.97, KPS, lms, track_id=True)])  # not an int id
    np.testing.assert_array_equal(flag, plain)


def test_track_id_goes_in_the_label_and_gives_the_box_a_stable_colour():
    img = np.zeros((120, 110, 3), np.uint8)
    plain = draw_faces(img, [Face(BOX, 0.9)])
    tracked = draw_faces(img, [TrackedFace(BOX, 0.9, track_id=3)])
    again = draw_faces(img, [TrackedFace(BOX, 0.9, track_id=np.int64(3))])
    np.testing.assert_array_equal(again, tracked)  # the same colour in every frame
    color = track_color(3)
    assert color != BOX_COLOR and color == TRACK_COLORS[3]
    assert not colour_mask(tracked, BOX_COLOR).any()
    assert colour_mask(tracked[40:90, 18:23], color).any()  # the left box edge
    # the label "#3 0.90" is wider than "0.90": its filled background has more pixels, all in the track colour
    label_rows = slice(0, 30)
    assert colour_mask(tracked[label_rows], color).sum() > 1.3 * colour_mask(plain[label_rows], BOX_COLOR).sum()
    only_id = draw_faces(img, [TrackedFace(BOX, float("nan"), track_id=3)])  # no score: "#3" alone
    assert 0 < colour_mask(only_id[label_rows], color).sum() < colour_mask(tracked[label_rows], color).sum()


def test_two_tracks_get_different_box_colours():
    img = np.zeros((120, 220, 3), np.uint8)
    faces = [TrackedFace(BOX, 0.9, track_id=0), TrackedFace((120.0, 30.0, 190.0, 100.0), 0.9, track_id=1)]
    out = draw_faces(img, faces)
    assert track_color(0) != track_color(1)
    for face in faces:
        x = round(face.box[0])
        edge = out[45:90, x - 2 : x + 3]
        assert colour_mask(edge, track_color(face.track_id)).any()
        assert not colour_mask(edge, track_color(1 - face.track_id)).any()
    assert track_color(len(TRACK_COLORS) + 1) == track_color(1)  # the palette cycles


def axis_pixels(out: np.ndarray, before: np.ndarray, nose: np.ndarray, axis: int) -> np.ndarray:
    """(x, y) offsets from the nose of the pixels that changed to axis ``axis``'s colour."""
    ys, xs = np.nonzero(colour_mask(out, AXIS_COLORS[axis]) & ~colour_mask(before, AXIS_COLORS[axis]))
    return np.stack([xs - nose[0], ys - nose[1]], axis=1)


@pytest.mark.parametrize("size", [120, 1200])
def test_pose_axes_are_drawn_from_the_nose_along_the_documented_directions(size):
    s = size / 120
    img = np.zeros((size, size, 3), np.uint8)
    box, kps = np.array(BOX) * s, KPS * s
    nose = kps[2]
    before = draw_faces(img, [Face(box, 0.9, kps)])
    frontal = draw_faces(img, [TrackedFace(box, 0.9, kps, pose=frontal_pose())])
    half = (box[2] - box[0]) / 2
    x_axis, y_axis = axis_pixels(frontal, before, nose, 0), axis_pixels(frontal, before, nose, 1)
    assert len(x_axis) > 0.5 * half and len(y_axis) > 0.5 * half
    assert x_axis[:, 0].max() > 0.8 * half and np.abs(x_axis[:, 1]).max() < 0.25 * half  # x: to the right
    assert y_axis[:, 1].min() < -0.8 * half and np.abs(y_axis[:, 0]).max() < 0.25 * half  # y: up
    assert (np.linalg.norm(x_axis, axis=1) < 1.1 * half).all()  # half the box width long
    # yaw > 0: the z axis (the nose's direction) points to the image's right; pitch > 0: up
    turned = draw_faces(img, [TrackedFace(box, 0.9, kps, pose=frontal_pose(yaw=40))])
    z_axis = axis_pixels(turned, before, nose, 2)
    assert len(z_axis) and z_axis[:, 0].max() > 0.5 * half and np.abs(z_axis[:, 1]).max() < 0.25 * half
    assert z_axis[:, 0].min() > -0.1 * half
    raised = draw_faces(img, [TrackedFace(box, 0.9, kps, pose=frontal_pose(pitch=40))])
    z_axis = axis_pixels(raised, before, nose, 2)
    assert len(z_axis) and z_axis[:, 1].min() < -0.5 * half and z_axis[:, 1].max() < 0.1 * half
    # landmark 30 of 68 landmarks is the origin when there are landmarks (not keypoint 2)
    lms = np.stack([np.linspace(35, 75, 68), np.linspace(45, 90, 68)], axis=1) * s
    lms[30] = nose + [12 * s, 10 * s]
    with_lms = draw_faces(img, [TrackedFace(box, 0.9, kps, lms, pose=frontal_pose())])
    y_axis = axis_pixels(with_lms, draw_faces(img, [Face(box, 0.9, kps, lms)]), lms[30], 1)
    assert y_axis[:, 1].min() < -0.8 * half and np.abs(y_axis[:, 0]).max() < 0.25 * half
    # no nose tip (no points) or no usable rotation: no axes
    no_points = draw_faces(img, [TrackedFace(box, 0.9, None, pose=frontal_pose())])
    np.testing.assert_array_equal(no_points, draw_faces(img, [Face(box, 0.9, None)]))
    broken = pose_from_rotation(np.full((3, 3), np.nan))
    np.testing.assert_array_equal(draw_faces(img, [TrackedFace(box, 0.9, kps, pose=broken)]), before)
