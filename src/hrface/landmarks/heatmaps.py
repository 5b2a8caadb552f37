"""Gaussian landmark heatmaps: rendering (training targets) and sub-pixel decoding.

Coordinates are heatmap pixel coordinates ``(x, y)``: 0-based, the centre of heatmap pixel
``(row i, column j)`` is ``x = j, y = i`` (the project's pixel-centre convention); map them to crop
pixels with :func:`hrface.landmarks.crop.heatmap_to_crop`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

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


def _gaussian_blur_valid(hm: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (radius r = ceil(3 sigma)) of ``(M, H, W)`` maps, without padding: the
    ``(M, H - 2r, W - 2r)`` outputs whose kernel footprint lies inside the map."""
    r = _blur_radius(sigma)
    t = torch.arange(-r, r + 1, dtype=hm.dtype, device=hm.device)
    k = torch.exp(-(t**2) / (2.0 * sigma**2))
    k = k / k.sum()
    x = F.conv2d(hm[:, None], k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    return x[:, 0]


def _argmax(hm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integer arg-max ``(ix, iy)`` (int64, ``(M,)`` each) and peak value of ``(M, H, W)`` maps."""
    w = hm.shape[-1]
    score, idx = hm.flatten(1).max(dim=1)
    return idx % w, idx // w, score


def _quarter_offset(hm: torch.Tensor, ix: torch.Tensor, iy: torch.Tensor) -> torch.Tensor:
    """Reference HRNet refinement: 0.25 px towards the larger neighbour per axis (0 on the border)."""
    m_idx = torch.arange(hm.shape[0], device=hm.device)
    h, w = hm.shape[-2:]
    xl, xr = (ix - 1).clamp(0, w - 1), (ix + 1).clamp(0, w - 1)
    yu, yd = (iy - 1).clamp(0, h - 1), (iy + 1).clamp(0, h - 1)
    dx = torch.sign(hm[m_idx, iy, xr] - hm[m_idx, iy, xl])
    dy = torch.sign(hm[m_idx, yd, ix] - hm[m_idx, yu, ix])
    dx = torch.where((ix > 0) & (ix < w - 1), dx, torch.zeros_like(dx))
    dy = torch.where((iy > 0) & (iy < h - 1), dy, torch.zeros_like(dy))
    return 0.25 * torch.stack([dx, dy], dim=-1)


def _dark_offset(hm: torch.Tensor, ix: torch.Tensor, iy: torch.Tensor, sigma: float) -> torch.Tensor:
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
        return torch.zeros(m_count, 2, dtype=torch.float64, device=hm.device)
    cx, cy = ix.clamp(1, w - 2), iy.clamp(1, h - 2)
    m_idx = torch.arange(m_count, device=hm.device)[:, None, None]
    r = _blur_radius(sigma)
    # Only the (2r + 3)² window around each stencil is blurred (not the whole map): for the stencils
    # that use the blur (``inner``) the window lies inside the map, so its unpadded blur equals the
    # full map's blur there; elsewhere the window is clamped and its result unused.
    d = torch.arange(-(r + 1), r + 2, device=hm.device)
    rows, cols = (cy[:, None] + d).clamp(0, h - 1)[:, :, None], (cx[:, None] + d).clamp(0, w - 1)[:, None, :]
    window = hm[m_idx, rows, cols]  # (M, 2r + 3, 2r + 3)
    blurred = torch.log(_gaussian_blur_valid(window, sigma).clamp_min(_LOG_FLOOR))  # (M, 3, 3)
    raw = torch.log(window[:, r : r + 3, r : r + 3].clamp_min(_LOG_FLOOR))
    # Near the border the blur would mix in padding and bias the peak: use the raw map there.
    inner = (cx > r) & (cx < w - 1 - r) & (cy > r) & (cy < h - 1 - r)
    patch = torch.where(inner[:, None, None], blurred, raw).to(torch.float64)  # (M, 3, 3) [y, x]
    f0 = patch[:, 1, 1]
    gx = 0.5 * (patch[:, 1, 2] - patch[:, 1, 0])
    gy = 0.5 * (patch[:, 2, 1] - patch[:, 0, 1])
    hxx = patch[:, 1, 2] - 2.0 * f0 + patch[:, 1, 0]
    hyy = patch[:, 2, 1] - 2.0 * f0 + patch[:, 0, 1]
    hxy = 0.25 * (patch[:, 2, 2] - patch[:, 0, 2] - patch[:, 2, 0] + patch[:, 0, 0])
    det = hxx * hyy - hxy * hxy
    neg_def = (hxx < 0) & (det > 0)
    safe_det = torch.where(neg_def, det, torch.ones_like(det))
    # Newton: c - H^-1 g with H^-1 = [[hyy, -hxy], [-hxy, hxx]] / det
    sx_2d = -(hyy * gx - hxy * gy) / safe_det
    sy_2d = -(-hxy * gx + hxx * gy) / safe_det
    # 1-D fallback per axis; an axis that is not concave either stays at the arg-max
    dx0, dy0 = (ix - cx).to(torch.float64), (iy - cy).to(torch.float64)
    sx_1d = torch.where(hxx < 0, -gx / torch.where(hxx < 0, hxx, -torch.ones_like(hxx)), dx0)
    sy_1d = torch.where(hyy < 0, -gy / torch.where(hyy < 0, hyy, -torch.ones_like(hyy)), dy0)
    sx = torch.where(neg_def, sx_2d, sx_1d)
    sy = torch.where(neg_def, sy_2d, sy_1d)
    off = torch.stack([(cx - ix) + sx, (cy - iy) + sy], dim=-1)
    off = torch.nan_to_num(off, nan=0.0, posinf=0.0, neginf=0.0)
    return off.clamp(-1.0, 1.0)


def decode_heatmaps(
    heatmaps: torch.Tensor | np.ndarray, method: str = "dark", sigma: float = DEFAULT_SIGMA
) -> tuple[torch.Tensor, torch.Tensor] | tuple[np.ndarray, np.ndarray]:
    """Sub-pixel landmark coordinates from ``(N, K, H, W)`` heatmaps.

    Args:
        heatmaps: model output, torch tensor (any device) or numpy array.
        method: ``"argmax"`` (integer peak), ``"quarter"`` (the reference's: peak moved 0.25 px
            towards the larger neighbour per axis) or ``"dark"`` (distribution-aware Taylor
            refinement of the log of the Gaussian-smoothed map, see :func:`_dark_offset`).
        sigma: Gaussian sigma of the training targets in heatmap pixels (``"dark"`` smoothing).

    Returns:
        ``coords (N, K, 2)`` float32 ``(x, y)`` in heatmap pixels and ``scores (N, K)`` float32 =
        each map's peak value; torch tensors on the input's device for torch input, numpy arrays
        for numpy input.  Non-finite map values are treated as 0.
    """
    if method not in DECODE_METHODS:
        raise ValueError(f"unknown decode method {method!r}; expected one of {DECODE_METHODS}")
    is_numpy = not isinstance(heatmaps, torch.Tensor)
    hm = torch.from_numpy(np.asarray(heatmaps)) if is_numpy else heatmaps.detach()
    if hm.dim() != 4:
        raise ValueError(f"heatmaps must have shape (N, K, H, W), got {tuple(hm.shape)}")
    n, k, h, w = hm.shape
    hm = torch.nan_to_num(hm.float().reshape(n * k, h, w), nan=0.0, posinf=0.0, neginf=0.0)
    if hm.shape[0] == 0:
        coords, scores = hm.new_zeros(n, k, 2), hm.new_zeros(n, k)
    else:
        ix, iy, scores = _argmax(hm)
        coords = torch.stack([ix, iy], dim=-1).to(torch.float64)
        if method == "quarter":
            coords = coords + _quarter_offset(hm, ix, iy)
        elif method == "dark":
            coords = coords + _dark_offset(hm, ix, iy, sigma)
        coords, scores = coords.float().reshape(n, k, 2), scores.reshape(n, k)
    if is_numpy:
        return coords.numpy(), scores.numpy()
    return coords, scores


def heatmaps_to_image(
    heatmaps: torch.Tensor,
    crop_to_image: np.ndarray,
    input_size: int,
    method: str = "dark",
    sigma: float = DEFAULT_SIGMA,
) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks in image pixels from the heatmaps of crops.

    Args:
        heatmaps: (N, K, H, W) model output for N crops of ``input_size`` pixels.
        crop_to_image: (N, 2, 3) affine matrices mapping crop pixels back to image pixels (the inverse
            of the crop matrices, :func:`hrface.landmarks.crop.invert_affine`).
        method, sigma: as for :func:`decode_heatmaps`.

    Returns:
        ``points (N, K, 2)`` float64 ``(x, y)`` image pixels and ``scores (N, K)`` float64 peak values.
    """
    coords, scores = decode_heatmaps(heatmaps.float(), method=method, sigma=sigma)
    in_crop = heatmap_to_crop(coords.cpu().numpy().astype(np.float64), heatmaps.shape[-1], input_size)
    return apply_affine(in_crop, crop_to_image), scores.cpu().numpy().astype(np.float64)
