"""Heatmap rendering and sub-pixel decoding (argmax / quarter / DARK)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrface.landmarks.crop import crop_to_heatmap, heatmap_to_crop
from hrface.landmarks.heatmaps import decode_heatmaps, render_gaussian_heatmaps

SIZE = 64


def _mean_errors(points: np.ndarray, maps: np.ndarray, sigma: float) -> dict[str, float]:
    errors = {}
    for method in ("argmax", "quarter", "dark"):
        coords, _ = decode_heatmaps(maps[None], method=method, sigma=sigma)
        errors[method] = float(np.linalg.norm(coords[0] - points, axis=-1).mean())
    return errors


def test_render_peak_and_shape() -> None:
    pts = np.array([[10.3, 20.7], [0.0, 63.0], [-3.0, 5.0], [5.0, 64.0], [np.nan, 1.0]])
    maps = render_gaussian_heatmaps(pts, SIZE, sigma=1.0)
    assert maps.shape == (5, SIZE, SIZE) and maps.dtype == np.float32
    assert maps[0].max() <= 1.0 and maps[0, 21, 10] == pytest.approx(np.exp(-(0.3**2 + 0.3**2) / 2), 1e-6)
    assert maps[1, 63, 0] == pytest.approx(1.0)
    assert not maps[2:].any()  # outside the map / non-finite -> all zero
    batched = render_gaussian_heatmaps(np.stack([pts[:2], pts[:2]]), SIZE, sigma=1.0)
    assert batched.shape == (2, 2, SIZE, SIZE) and np.array_equal(batched[1], maps[:2])


@pytest.mark.parametrize("sigma", [1.0, 1.5])
def test_decode_accuracy_ordering(sigma: float) -> None:
    rng = np.random.default_rng(1234)
    points = rng.uniform(0.0, SIZE - 1.0, size=(500, 2))
    maps = render_gaussian_heatmaps(points, SIZE, sigma=sigma)
    err = _mean_errors(points, maps, sigma)
    print(f"\nsigma={sigma}: mean error (heatmap px) " + ", ".join(f"{k}={v:.6f}" for k, v in err.items()))
    assert err["dark"] < 0.05
    assert err["dark"] < err["quarter"] < err["argmax"]


@pytest.mark.parametrize("sigma", [1.0, 1.5])
def test_decode_noise_robustness(sigma: float) -> None:
    rng = np.random.default_rng(99)
    points = rng.uniform(0.0, SIZE - 1.0, size=(500, 2))
    maps = render_gaussian_heatmaps(points, SIZE, sigma=sigma)
    maps = maps + rng.normal(0.0, 0.02, maps.shape).astype(np.float32)
    err = _mean_errors(points, maps, sigma)
    print(f"\nsigma={sigma} + noise 0.02: " + ", ".join(f"{k}={v:.6f}" for k, v in err.items()))
    assert err["dark"] < err["quarter"] < err["argmax"]


@pytest.mark.parametrize("method", ["argmax", "quarter", "dark"])
def test_decode_border_and_degenerate_maps(method: str) -> None:
    pts = np.array([[0.0, 30.2], [63.0, 12.6], [0.0, 0.0], [63.0, 63.0], [0.3, 62.8], [1.7, 2.4]])
    maps = render_gaussian_heatmaps(pts, SIZE, sigma=1.0)
    zero = np.zeros((1, SIZE, SIZE), np.float32)
    negative = -np.ones((1, SIZE, SIZE), np.float32)
    spike = np.zeros((1, SIZE, SIZE), np.float32)
    spike[0, 40, 7] = 1.0  # a lone pixel: log of its neighbours hits the floor
    all_maps = np.concatenate([maps, zero, negative, spike])[None]
    coords, scores = decode_heatmaps(all_maps, method=method)
    assert np.isfinite(coords).all() and np.isfinite(scores).all()
    assert np.all(np.abs(coords[0, :6] - pts) <= 0.5)
    if method == "dark":
        np.testing.assert_allclose(coords[0, :6], pts, atol=1e-3)
    np.testing.assert_allclose(coords[0, 6:8], 0.0)  # flat maps: first pixel, no offset
    assert np.all(np.abs(coords[0, 8] - [7.0, 40.0]) <= 1.0)
    np.testing.assert_allclose(scores[0, [2, 3, 6, 7, 8]], [1, 1, 0, -1, 1], rtol=1e-6)


def test_decode_shapes_and_input_types() -> None:
    rng = np.random.default_rng(5)
    points = rng.uniform(2.0, 60.0, size=(3, 7, 2))
    maps = render_gaussian_heatmaps(points, SIZE, sigma=1.0) * 0.8
    c_np, s_np = decode_heatmaps(maps)
    assert isinstance(c_np, np.ndarray) and c_np.shape == (3, 7, 2) and s_np.shape == (3, 7)
    c_t, s_t = decode_heatmaps(torch.from_numpy(maps))  # torch input: NumPy results too
    assert isinstance(c_t, np.ndarray) and c_t.shape == (3, 7, 2) and s_t.shape == (3, 7)
    np.testing.assert_allclose(c_t, c_np, atol=1e-6)
    np.testing.assert_allclose(c_np, points, atol=1e-3)
    assert np.all((s_np <= 0.8) & (s_np >= 0.8 * np.exp(-0.5)))
    c64, _ = decode_heatmaps(maps.astype(np.float64), method="quarter")
    assert c64.shape == (3, 7, 2)
    empty, empty_s = decode_heatmaps(np.zeros((0, 7, SIZE, SIZE), np.float32))
    assert empty.shape == (0, 7, 2) and empty_s.shape == (0, 7)
    with pytest.raises(ValueError):
        decode_heatmaps(maps, method="bogus")


def test_heatmap_to_crop_round_trip() -> None:
    crop_pts = np.array([[127.5, 127.5], [-0.5, -0.5], [255.5, 255.5], [37.25, 201.9]])
    hm_pts = crop_to_heatmap(crop_pts)
    np.testing.assert_allclose(hm_pts[:3], [[31.5, 31.5], [-0.5, -0.5], [63.5, 63.5]])
    np.testing.assert_allclose(heatmap_to_crop(hm_pts), crop_pts, atol=1e-12)
    # a crop-level landmark rendered on the heatmap and decoded comes back at its crop position
    maps = render_gaussian_heatmaps(hm_pts[3:], SIZE, sigma=1.5)
    coords, _ = decode_heatmaps(maps[None], sigma=1.5)
    np.testing.assert_allclose(heatmap_to_crop(coords[0]), crop_pts[3:], atol=4 * 1e-3)


def test_windowed_blur_equals_the_whole_map_blur_inside() -> None:
    # DARK blurs only a window around each peak; inside the map that must equal blurring the whole map.
    from scipy.ndimage import correlate1d

    from hrface.landmarks.heatmaps import _blur_radius, _gaussian_blur_valid

    sigma, r = 1.5, _blur_radius(1.5)
    maps = np.random.default_rng(0).random((3, 20, 24))
    t = np.arange(-r, r + 1)
    k = np.exp(-(t**2) / (2 * sigma**2))
    k /= k.sum()
    whole = correlate1d(correlate1d(maps, k, axis=2, mode="nearest"), k, axis=1, mode="nearest")
    valid = _gaussian_blur_valid(maps, sigma)
    assert valid.shape == (3, 20 - 2 * r, 24 - 2 * r)
    np.testing.assert_allclose(valid, whole[:, r:-r, r:-r], rtol=1e-12, atol=1e-12)
