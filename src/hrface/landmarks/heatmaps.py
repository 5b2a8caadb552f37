"""Gaussian landmark heatmaps: rendering (training targets) and sub-pixel decoding.

Coordinates are heatmap pixel coordinates ``(x, y)``: 0-based, the centre of heatmap pixel
``(row i, column j)`` is ``x = j, y = i`` (the project's pixel-centre convention); map them to crop
pixels with :func:`hrface.landmarks.crop.heatmap_to_crop`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .crop import apply_affine, heatmap_to_crop

DEFAULT_SIGMA = 1.0
"""Standard deviation (heatmap pixels) of the training targets' Gaussians (reference HRNet: 1.0)."""

DECODE_METHODS = ("argmax", "quarter", "dark")

_LOG_FLOOR = 1e-10


def render_gaussian_heatmaps(points: np.ndarray, size: int = 64, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
    """Unnormalised Gaussian heatmaps (peak 1) centred at sub-pixel points.

    Args:
        points: ``(..., K, 2)`` points ``(x, y)`` in heatmap pixels (not rounded).
        size: heatmap side in pixels.
        sigma: Gaussian standard deviation in heatmap pixels.

    Returns:
        ``(..., K, size, size)`` float32, ``exp(-((j - x)^2 + (i - y)^2) / (2 sigma^2))`` at pixel
        ``(i, j)``.  A point outside the map's area ``[-0.5, size - 0.5]`` (either axis) or with a
        non-finite coordinate gives an all-zero map (no target, as for an invisible landmark).
    """
    p = np.asarray(points, dtype=np.float64)
    if p.shape[-1:] != (2,):
        raise ValueError(f"points must have shape (..., 2), got {p.shape}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    inside = np.all(np.isfinite(p) & (p >= -0.5) & (p <= size - 0.5), axis=-1)
    p = np.where(inside[..., None], p, 0.0)
    grid = np.arange(size, dtype=np.float64)
    gx = np.exp(-((grid - p[..., 0:1]) ** 2) / (2.0 * sigma**2))  # (..., size) along x
    gy = np.exp(-((grid - p[..., 1:2]) ** 2) / (2.0 * sigma**2))  # (..., size) along y
    maps = gy[..., :, None] * gx[..., None, :] * inside[..., None, None]
    return maps.astype(np.float32)


def _blur_radius(sigma: float) -> int:
    return max(1, math.ceil(3.0 * sigma))


def _gaussian_blur_valid(hm: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (radius r = ceil(3 sigma)) of ``(M, H, W)`` maps, without padding: the
    ``(M, H - 2r, W - 2r)`` outputs whose kernel footprint lies inside the map."""
    r = _blur_radius(sigma)
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(t**2) / (2.0 * sigma**2))
    k = (k / k.sum()).astype(hm.dtype)
    windows = np.lib.stride_tricks.sliding_window_view
    x = windows(hm, 2 * r + 1, axis=2) @ k  # along x: (M, H, W - 2r)
    return windows(x, 2 * r + 1, axis=1) @ k  # along y: (M, H - 2r, W - 2r)


def _argmax(hm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer arg-max ``(ix, iy)`` (int64, ``(M,)`` each; the first maximum) and peak value of ``(M, H, W)`` maps."""
    w = hm.shape[-1]
    flat = hm.reshape(hm.shape[0], -1)
    idx = flat.argmax(axis=1)
    return idx % w, idx // w, flat[np.arange(len(flat)), idx]


def _quarter_offset(hm: np.ndarray, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Reference HRNet refinement: 0.25 px towards the larger neighbour per axis (0 on the border)."""
    m_idx = np.arange(hm.shape[0])
    h, w = hm.shape[-2:]
    xl, xr = np.clip(ix - 1, 0, w - 1), np.clip(ix + 1, 0, w - 1)
    yu, yd = np.clip(iy - 1, 0, h - 1), np.clip(iy + 1, 0, h - 1)
    dx = np.sign(hm[m_idx, iy, xr] - hm[m_idx, iy, xl]) * ((ix > 0) & (ix < w - 1))
    dy = np.sign(hm[m_idx, yd, ix] - hm[m_idx, yu, ix]) * ((iy > 0) & (iy < h - 1))
    return 0.25 * np.stack([dx, dy], axis=-1).astype(np.float64)


def _dark_offset(hm: np.ndarray, ix: np.ndarray, iy: np.ndarray, sigma: float) -> np.ndarray:
    """DARK refinement (Zhang et al., CVPR 2020): Newton step on the log of the smoothed map.

    A quadratic is fitted to ``log(blur(hm))`` on the 3x3 stencil around the arg-max (the stencil is
    shifted inwards at the border, i.e. one-sided differences there), and its stationary point
    ``c - H^-1 g`` is returned relative to the arg-max.  Where the blur's footprint around the
    stencil would reach past the map's edge (padding biases the peak), the raw map is used
    instead.  Where the Hessian ``H`` is not negative definite each axis falls back to its own 1-D
    quadratic (offset 0 where that is not concave either).  The offset is clamped to +-1 px; the
    log is floored so all-zero / negative maps give finite (zero) offsets.  The log of a Gaussian
    is exactly quadratic, so clean targets are recovered (up to the blur kernel's truncation).
    """
    m_count, h, w = hm.shape
    if h < 3 or w < 3:
        return np.zeros((m_count, 2))
    cx, cy = np.clip(ix, 1, w - 2), np.clip(iy, 1, h - 2)
    m_idx = np.arange(m_count)[:, None, None]
    r = _blur_radius(sigma)
    # Only the (2r + 3)² window around each stencil is blurred (not the whole map): for the stencils
    # that use the blur (``inner``) the window lies inside the map, so its unpadded blur equals the
    # full map's blur there; elsewhere the window is clamped and its result unused.
    d = np.arange(-(r + 1), r + 2)
    rows = np.clip(cy[:, None] + d, 0, h - 1)[:, :, None]
    cols = np.clip(cx[:, None] + d, 0, w - 1)[:, None, :]
    window = hm[m_idx, rows, cols]  # (M, 2r + 3, 2r + 3)
    blurred = np.log(np.maximum(_gaussian_blur_valid(window, sigma), _LOG_FLOOR))  # (M, 3, 3)
    raw = np.log(np.maximum(window[:, r : r + 3, r : r + 3], _LOG_FLOOR))
    # Near the border the blur would mix in padding and bias the peak: use the raw map there.
    inner = (cx > r) & (cx < w - 1 - r) & (cy > r) & (cy < h - 1 - r)
    patch = np.where(inner[:, None, None], blurred, raw).astype(np.float64)  # (M, 3, 3) [y, x]
    f0 = patch[:, 1, 1]
    gx = 0.5 * (patch[:, 1, 2] - patch[:, 1, 0])
    gy = 0.5 * (patch[:, 2, 1] - patch[:, 0, 1])
    hxx = patch[:, 1, 2] - 2.0 * f0 + patch[:, 1, 0]
    hyy = patch[:, 2, 1] - 2.0 * f0 + patch[:, 0, 1]
    hxy = 0.25 * (patch[:, 2, 2] - patch[:, 0, 2] - patch[:, 2, 0] + patch[:, 0, 0])
    det = hxx * hyy - hxy * hxy
    neg_def = (hxx < 0) & (det > 0)
    safe_det = np.where(neg_def, det, 1.0)
    # Newton: c - H^-1 g with H^-1 = [[hyy, -hxy], [-hxy, hxx]] / det
    sx_2d = -(hyy * gx - hxy * gy) / safe_det
    sy_2d = -(-hxy * gx + hxx * gy) / safe_det
    # 1-D fallback per axis; an axis that is not concave either stays at the arg-max
    dx0, dy0 = (ix - cx).astype(np.float64), (iy - cy).astype(np.float64)
    sx_1d = np.where(hxx < 0, -gx / np.where(hxx < 0, hxx, -1.0), dx0)
    sy_1d = np.where(hyy < 0, -gy / np.where(hyy < 0, hyy, -1.0), dy0)
    sx = np.where(neg_def, sx_2d, sx_1d)
    sy = np.where(neg_def, sy_2d, sy_1d)
    off = np.stack([(cx - ix) + sx, (cy - iy) + sy], axis=-1)
    return np.clip(np.nan_to_num(off, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)


def as_numpy(values: Any) -> np.ndarray:
    """A NumPy view or copy of an array-like: a torch tensor (any device, autograd or not) comes back to
    the CPU; other inputs go through ``np.asarray``."""
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu()
        if not values.dtype.is_floating_point or values.dtype.itemsize >= 4:
            return values.numpy()
        return values.float().numpy()  # float16 / bfloat16
    return np.asarray(values)


def decode_heatmaps(heatmaps: Any, method: str = "dark", sigma: float = DEFAULT_SIGMA) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel landmark coordinates from ``(N, K, H, W)`` heatmaps.

    Args:
        heatmaps: model output, a NumPy array or a torch tensor (any device).
        method: ``"argmax"`` (integer peak), ``"quarter"`` (the reference's: peak moved 0.25 px
            towards the larger neighbour per axis) or ``"dark"`` (distribution-aware Taylor
            refinement of the log of the Gaussian-smoothed map, see :func:`_dark_offset`).
        sigma: Gaussian sigma of the training targets in heatmap pixels (``"dark"`` smoothing).

    Returns:
        ``coords (N, K, 2)`` float32 ``(x, y)`` in heatmap pixels and ``scores (N, K)`` float32 =
        each map's peak value, NumPy arrays.  Non-finite map values are treated as 0.
    """
    if method not in DECODE_METHODS:
        raise ValueError(f"unknown decode method {method!r}; expected one of {DECODE_METHODS}")
    hm = as_numpy(heatmaps)
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must have shape (N, K, H, W), got {tuple(hm.shape)}")
    n, k, h, w = hm.shape
    hm = np.nan_to_num(hm.astype(np.float32).reshape(n * k, h, w), nan=0.0, posinf=0.0, neginf=0.0)
    if hm.shape[0] == 0:
        return np.zeros((n, k, 2), np.float32), np.zeros((n, k), np.float32)
    ix, iy, scores = _argmax(hm)
    coords = np.stack([ix, iy], axis=-1).astype(np.float64)
    if method == "quarter":
        coords = coords + _quarter_offset(hm, ix, iy)
    elif method == "dark":
        coords = coords + _dark_offset(hm, ix, iy, sigma)
    return coords.astype(np.float32).reshape(n, k, 2), scores.reshape(n, k)


def heatmaps_to_image(
    heatmaps: Any,
    crop_to_image: np.ndarray,
    input_size: int,
    method: str = "dark",
    sigma: float = DEFAULT_SIGMA,
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks in image pixels from the heatmaps of crops.

    Args:
        heatmaps: (N, K, H, W) model output for N crops of ``input_size`` pixels (NumPy or torch).
        crop_to_image: (N, 2, 3) affine matrices mapping crop pixels back to image pixels (the inverse
            of the crop matrices, :func:`hrface.landmarks.crop.invert_affine`).
        method, sigma: as for :func:`decode_heatmaps`.

    Returns:
        ``points (N, K, 2)`` float64 ``(x, y)`` image pixels and ``scores (N, K)`` float64 peak values.
    """
    hm = as_numpy(heatmaps)
    coords, scores = decode_heatmaps(hm, method=method, sigma=sigma)
    in_crop = heatmap_to_crop(coords.astype(np.float64), hm.shape[-1], input_size)
    return apply_affine(in_crop, crop_to_image), scores.astype(np.float64)
