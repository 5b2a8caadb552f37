"""hrface.io.draw.draw_faces: annotated copies, input untouched, size-aware drawing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from hrface.io import draw_faces
from hrface.io.draw import KEYPOINT_COLORS


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
