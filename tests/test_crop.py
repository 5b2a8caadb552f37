"""Face crop geometry: box -> square -> affine matrices, and cv2 warping in the same convention."""

from __future__ import annotations

import numpy as np
import pytest

from hrface.landmarks.crop import (
    DEFAULT_ENLARGE,
    apply_affine,
    crop_from_box,
    crop_matrices,
    crop_matrix,
    invert_affine,
    warp_crops,
)

S = 256


def _corners(center: np.ndarray, size: float) -> np.ndarray:
    h = size / 2
    return center + np.array([[-h, -h], [h, -h], [h, h], [-h, h]])


def test_crop_from_box() -> None:
    boxes = np.array([[10.0, 20.0, 110.0, 100.0], [0.0, 0.0, 40.0, 80.0]])
    centers, sizes = crop_from_box(boxes)
    np.testing.assert_allclose(centers, [[60.0, 60.0], [20.0, 40.0]])
    np.testing.assert_allclose(sizes, [100 * DEFAULT_ENLARGE, 80 * DEFAULT_ENLARGE])
    c1, s1 = crop_from_box(boxes[0], enlarge=1.0)
    assert c1.shape == (2,) and s1.shape == () and float(s1) == 100.0


def test_centre_and_corners_map_to_crop_edges() -> None:
    center, size = np.array([123.4, 87.9]), 150.3
    m = crop_matrix(center, size, S)
    assert m.shape == (2, 3) and m.dtype == np.float64
    np.testing.assert_allclose(apply_affine(center[None], m), [[(S - 1) / 2, (S - 1) / 2]], atol=1e-9)
    expected = np.array([[-0.5, -0.5], [S - 0.5, -0.5], [S - 0.5, S - 0.5], [-0.5, S - 0.5]])
    np.testing.assert_allclose(apply_affine(_corners(center, size), m), expected, atol=1e-9)
    # documented inverse formula: x = cx - size/2 + (u + 0.5) * size / S
    u = np.array([[0.0, 17.0], [255.0, 3.5]])
    x = center - size / 2 + (u + 0.5) * size / S
    np.testing.assert_allclose(apply_affine(u, invert_affine(m)), x, atol=1e-9)


def test_invert_and_batch_agree() -> None:
    rng = np.random.default_rng(0)
    centers = rng.uniform(0, 500, (6, 2))
    sizes = rng.uniform(20, 400, 6)
    rots = rng.uniform(-180, 180, 6)
    flips = np.array([False, True, False, True, False, False])
    ms = crop_matrices(centers, sizes, S, rotations=rots, flips=flips)
    assert ms.shape == (6, 2, 3)
    for i in range(6):
        np.testing.assert_allclose(ms[i], crop_matrix(centers[i], sizes[i], S, rots[i], bool(flips[i])))
    pts = rng.uniform(-100, 600, (6, 68, 2))
    back = apply_affine(apply_affine(pts, ms), invert_affine(ms))
    np.testing.assert_allclose(back, pts, atol=1e-9)
    np.testing.assert_allclose(invert_affine(invert_affine(ms)), ms, atol=1e-9)
    # (K, 2) points broadcast against (N, 2, 3) matrices
    assert apply_affine(pts[0], ms).shape == (6, 68, 2)


def test_rotation_and_flip_directions() -> None:
    center, size = np.array([50.0, 50.0]), 40.0
    half, k = (S - 1) / 2, S / size
    right_of_centre = center + [[10.0, 0.0]]
    below_centre = center + [[0.0, 10.0]]
    m90 = crop_matrix(center, size, S, rotation_deg=90.0)
    # counter-clockwise as displayed (y down): right -> up, down -> right
    np.testing.assert_allclose(apply_affine(right_of_centre, m90), [[half, half - 10 * k]], atol=1e-9)
    np.testing.assert_allclose(apply_affine(below_centre, m90), [[half + 10 * k, half]], atol=1e-9)
    mflip = crop_matrix(center, size, S, flip=True)
    np.testing.assert_allclose(apply_affine(right_of_centre, mflip), [[half - 10 * k, half]], atol=1e-9)
    assert crop_matrix(center, size, S, rotation_deg=360.0) == pytest.approx(crop_matrix(center, size, S))


def _blob_image(h: int, w: int, x0: float, y0: float, sigma: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    g = 255.0 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    return np.repeat(np.round(g).astype(np.uint8)[:, :, None], 3, axis=2)


def _centroid(img: np.ndarray) -> np.ndarray:
    w = img.astype(np.float64)
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    return np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])


@pytest.mark.parametrize(("size", "rotation"), [(100.0, 0.0), (100.0, 33.0), (512.0, -70.0), (256.0, 0.0)])
def test_warp_puts_subpixel_blob_where_apply_affine_says(size: float, rotation: float) -> None:
    x0, y0 = 151.37, 118.62
    img = _blob_image(240, 320, x0, y0, sigma=6.0)
    center = np.array([x0 - 13.3, y0 + 7.9])
    m = crop_matrix(center, size, S, rotation_deg=rotation)
    crop = warp_crops(img, m[None], S)
    assert crop.shape == (1, S, S, 3) and crop.dtype == np.uint8
    expected = apply_affine(np.array([[x0, y0]]), m)[0]
    got = _centroid(crop[0, :, :, 0])
    assert np.abs(got - expected).max() < 0.05, (got, expected)


def test_warp_pixel_centre_convention_on_gradient() -> None:
    # I(x, y) = 2x + y is linear, so bilinear sampling is exact up to uint8 rounding
    yy, xx = np.mgrid[0:80, 0:100]
    img = np.repeat((2 * xx + yy).astype(np.uint8)[:, :, None], 3, axis=2)
    m = crop_matrix(np.array([50.3, 40.7]), 60.0, 64)
    crop = warp_crops(img, m, 64)[0, :, :, 1].astype(np.float64)
    vv, uu = np.mgrid[0:64, 0:64]
    xy = apply_affine(np.stack([uu, vv], -1).reshape(-1, 2), invert_affine(m)).reshape(64, 64, 2)
    np.testing.assert_allclose(crop, 2 * xy[..., 0] + xy[..., 1], atol=0.51)


def test_out_of_image_crop_is_black() -> None:
    img = np.full((60, 80, 3), 255, np.uint8)
    m = crop_matrix(np.array([5.0, 70.0]), 100.0, 128)
    crop = warp_crops(img, m, 128)[0]
    vv, uu = np.mgrid[0:128, 0:128]
    xy = apply_affine(np.stack([uu, vv], -1).reshape(-1, 2), invert_affine(m)).reshape(128, 128, 2)
    outside = (xy[..., 0] < -1) | (xy[..., 0] > 80) | (xy[..., 1] < -1) | (xy[..., 1] > 60)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] <= 79) & (xy[..., 1] >= 0) & (xy[..., 1] <= 59)
    assert outside.any() and inside.any()
    assert not crop[outside].any()
    assert (crop[inside] == 255).all()
    # several crops at once, grayscale too
    ms = crop_matrices(np.array([[40.0, 30.0], [5.0, 70.0]]), np.array([50.0, 100.0]), 128)
    both = warp_crops(img, ms, 128)
    assert both.shape == (2, 128, 128, 3) and np.array_equal(both[1], crop)
    assert warp_crops(img[:, :, 0], ms, 128).shape == (2, 128, 128)
