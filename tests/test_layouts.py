"""Landmark layouts: flip permutations, eye distances and the 5-point summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from hrface.errors import ConfigError
from hrface.landmarks.layouts import LAYOUTS, LandmarkLayout, get_layout

ALL_LAYOUTS = sorted(LAYOUTS.values(), key=lambda layout: layout.num_points)
SWAP_FIVE = [1, 0, 2, 4, 3]  # 5-point order after a mirror: eyes and mouth corners trade places


def read_pts(path: Path) -> np.ndarray:
    """Minimal 300W ``.pts`` reader: (n_points, 2) float64."""
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    n = int(next(line for line in lines if line.startswith("n_points")).split(":")[1])
    start = lines.index("{") + 1
    return np.array([[float(v) for v in line.split()] for line in lines[start : start + n]])


@pytest.fixture(scope="module")
def afw_faces() -> np.ndarray:
    """All 68-point faces of the 300W AFW subset: (F, 68, 2)."""
    files = sorted(shared_path("data", "300w", "afw").glob("*.pts"))
    assert files, "no .pts files in data/300w/afw"
    return np.stack([read_pts(p) for p in files])


def mirror(points: np.ndarray) -> np.ndarray:
    out = np.array(points, dtype=np.float64)
    out[..., 0] = -out[..., 0]
    return out


def similarity_residual(src: np.ndarray, dst: np.ndarray) -> float:
    """Mean point distance after the best rotation+scale+translation (no reflection) of src onto dst."""
    a = src - src.mean(axis=0)
    b = dst - dst.mean(axis=0)
    za, zb = a[:, 0] + 1j * a[:, 1], b[:, 0] + 1j * b[:, 1]
    s = np.vdot(za, zb) / np.vdot(za, za)  # least-squares complex scale = rotation·scale
    return float(np.abs(s * za - zb).mean())


@pytest.mark.parametrize("layout", ALL_LAYOUTS, ids=lambda layout: layout.name)
def test_flip_permutation_is_an_involution_over_all_points(layout: LandmarkLayout) -> None:
    perm = layout.flip_permutation()
    assert perm.shape == (layout.num_points,)
    assert sorted(perm.tolist()) == list(range(layout.num_points))
    np.testing.assert_array_equal(perm[perm], np.arange(layout.num_points))
    pairs = {frozenset(p) for p in layout.flip_pairs}
    assert len(pairs) == len(layout.flip_pairs)  # each pair listed once


@pytest.mark.parametrize("layout", ALL_LAYOUTS, ids=lambda layout: layout.name)
def test_named_parts_are_mirror_images(layout: LandmarkLayout) -> None:
    perm = layout.flip_permutation()
    assert sorted(perm[list(layout.left_eye)].tolist()) == sorted(layout.right_eye)
    a, b = layout.outer_eye_corners
    assert perm[a] == b
    assert perm[layout.nose_tip] == layout.nose_tip
    m1, m2 = layout.mouth_corners
    assert perm[m1] == m2
    if layout.pupils is not None:
        assert perm[layout.pupils[0]] == layout.pupils[1]


@pytest.mark.parametrize("layout", ALL_LAYOUTS, ids=lambda layout: layout.name)
def test_five_points_follow_a_mirror(layout: LandmarkLayout) -> None:
    """Mirroring then re-indexing gives the mirrored 5 points with left and right exchanged."""
    points = np.random.default_rng(layout.num_points).uniform(0, 100, (3, layout.num_points, 2))
    flipped = mirror(points)[..., layout.flip_permutation(), :]
    five = layout.five_points(points)
    assert five.shape == (3, 5, 2)
    np.testing.assert_allclose(layout.five_points(flipped), mirror(five)[..., SWAP_FIVE, :])
    np.testing.assert_allclose(layout.interocular(flipped), layout.interocular(points))
    np.testing.assert_allclose(layout.interpupil(flipped), layout.interpupil(points))


def test_distances_broadcast_over_leading_dims() -> None:
    layout = get_layout(68)
    points = np.zeros((2, 3, 68, 2))
    points[..., 36:42, 0] = 1.0  # eye contours: centres at x = 1 and x = 7
    points[..., 42:48, 0] = 7.0
    points[..., 36, :] = (0.0, 0.0)  # outer corners 5 apart; contour means unchanged
    points[..., 39, :] = (2.0, 0.0)
    points[..., 45, :] = (3.0, 4.0)
    points[..., 42, :] = (11.0, -4.0)
    assert layout.interocular(points).shape == (2, 3)
    np.testing.assert_allclose(layout.interocular(points), 5.0)
    np.testing.assert_allclose(layout.interpupil(points), 6.0)
    with pytest.raises(ValueError, match="68"):
        layout.interocular(np.zeros((98, 2)))


def test_get_layout() -> None:
    assert get_layout(98).name == "WFLW" and get_layout(98).outer_eye_corners == (60, 72)
    assert get_layout(29).pupils == (16, 17)
    assert set(LAYOUTS) == {19, 29, 68, 98}
    with pytest.raises(ConfigError, match="known layouts"):
        get_layout(5)


def test_layout_rejects_bad_indices() -> None:
    with pytest.raises(ConfigError):
        LandmarkLayout("bad", 4, ((0, 1), (1, 2)), (0,), (1,), (0, 1), 3, (0, 1))
    with pytest.raises(ConfigError):
        LandmarkLayout("bad", 4, ((0, 4),), (0,), (1,), (0, 1), 3, (0, 1))


def test_68_flip_permutation_on_real_faces(afw_faces: np.ndarray) -> None:
    """A mirrored, re-indexed face aligns with the original far better than without re-indexing."""
    layout = get_layout(68)
    perm = layout.flip_permutation()
    scale = layout.interocular(afw_faces)
    with_perm = np.array([similarity_residual(mirror(f)[perm], f) for f in afw_faces]) / scale
    without = np.array([similarity_residual(mirror(f), f) for f in afw_faces]) / scale
    assert np.median(with_perm) < 0.2  # faces are roughly symmetric (residual mostly from pose)
    assert np.median(with_perm) < 0.35 * np.median(without)
    assert (with_perm < without).all()


def test_68_five_points_on_real_faces(afw_faces: np.ndarray) -> None:
    layout = get_layout(68)
    five = layout.five_points(afw_faces)
    left_eye, right_eye, nose, mouth_left, mouth_right = (five[:, k] for k in range(5))
    assert (left_eye[:, 0] < right_eye[:, 0]).all()
    assert (mouth_left[:, 0] < mouth_right[:, 0]).all()
    # In the face's own frame (x along the eye line, y perpendicular, pointing down the face):
    # the nose tip between the eyes (in frontal faces) and below them, the mouth corners lower still.
    across = right_eye - left_eye
    across /= np.linalg.norm(across, axis=-1, keepdims=True)
    down = np.stack([-across[:, 1], across[:, 0]], axis=-1)

    def in_face_frame(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = p - left_eye
        return (d * across).sum(-1), (d * down).sum(-1)

    (nose_x, nose_y), (right_x, _) = in_face_frame(nose), in_face_frame(right_eye)
    frontal = (nose_x > 0.3 * right_x) & (nose_x < 0.7 * right_x)
    assert frontal.sum() > 100
    assert (nose_y[frontal] > 0).all()
    mouth_y = in_face_frame((mouth_left + mouth_right) / 2)[1]
    assert (mouth_y > 0).all()
    # Not always: broad smiles (or a head tilted back) lift the mouth corners to the nose tip's level.
    assert (mouth_y[frontal] > nose_y[frontal]).mean() > 0.95
    assert (in_face_frame(mouth_left)[0] < in_face_frame(mouth_right)[0]).all()
    # Eye centres are the contour means, inside the eye-corner span.
    np.testing.assert_allclose(left_eye, afw_faces[:, 36:42].mean(axis=1))
    assert (layout.interpupil(afw_faces) < layout.interocular(afw_faces)).all()
