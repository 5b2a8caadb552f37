"""Face crops for the landmark model: box -> square crop -> affine matrices -> warped crops.

Coordinate convention (whole project): 0-based pixel coordinates, the centre of pixel ``(row i,
column j)`` is at ``x = j, y = i``, so a pixel spans ``[x - 0.5, x + 0.5]`` and an image of width
``W`` spans ``[-0.5, W - 0.5]``.  Boxes are continuous ``x1, y1, x2, y2`` in that same frame.

The crop of an ``S x S`` output is the axis-aligned (before rotation) square of side ``size`` centred
at ``(cx, cy)``; its outer edges map exactly onto the crop's outer pixel edges ``-0.5`` and
``S - 0.5``.  With ``k = S / size`` and no rotation::

    u = (x - cx) * k + (S - 1) / 2          x = cx + (u - (S - 1) / 2) / k
                                              = cx - size / 2 + (u + 0.5) * size / S

(the same for ``y``/``v``), so the box centre lands on the crop centre ``(S - 1) / 2`` and the
square's corners on ``-0.5`` / ``S - 0.5``.  Rotation by ``theta`` (degrees) turns the image content
about the crop centre, counter-clockwise as displayed (y down), as ``cv2.getRotationMatrix2D``::

    [u, v] = k * R(theta) @ [x - cx, y - cy] + (S - 1) / 2,   R = [[cos, sin], [-sin, cos]]

so with ``theta = 90`` a point to the right of the centre ends up above it.  A flip mirrors the crop
horizontally afterwards (``u -> S - 1 - u``).  Matrices map image -> crop coordinates; the landmark
model's output is mapped back with :func:`invert_affine` + :func:`apply_affine`.

Inference and training must both use these functions so that their crops match.
"""

from __future__ import annotations

import cv2
import numpy as np

DEFAULT_ENLARGE = 1.25
"""Crop side = max(box width, box height) * 1.25, as in the reference HRNet face-landmark system."""

DEFAULT_CROP_SIZE = 256
"""Side of the landmark model's input crop in pixels."""

DEFAULT_HEATMAP_SIZE = 64
"""Side of the landmark model's output heatmaps in pixels."""


def crop_from_box(boxes: np.ndarray, enlarge: float = DEFAULT_ENLARGE) -> tuple[np.ndarray, np.ndarray]:
    """Square crop (centre, side) around face boxes.

    Args:
        boxes: ``(..., 4)`` boxes ``x1, y1, x2, y2`` in image pixels (e.g. ``(N, 4)`` or ``(4,)``).
        enlarge: side of the square as a multiple of the box's longer side.

    Returns:
        ``centers (..., 2)`` = box centres ``(x, y)`` and ``sizes (...)`` = ``max(w, h) * enlarge``,
        both float64 in image pixels (for ``(N, 4)`` input: ``(N, 2)`` and ``(N,)``).  The reference's
        ``scale`` is ``sizes / 200``.
    """
    b = np.asarray(boxes, dtype=np.float64)
    if b.shape[-1:] != (4,):
        raise ValueError(f"boxes must have shape (..., 4), got {b.shape}")
    if enlarge <= 0:
        raise ValueError(f"enlarge must be positive, got {enlarge}")
    centers = np.stack([(b[..., 0] + b[..., 2]) * 0.5, (b[..., 1] + b[..., 3]) * 0.5], axis=-1)
    sizes = np.maximum(b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]) * enlarge
    return centers, sizes


def crop_matrices(
    centers: np.ndarray,
    sizes: np.ndarray,
    output_size: int = DEFAULT_CROP_SIZE,
    rotations: np.ndarray | None = None,
    flips: np.ndarray | None = None,
) -> np.ndarray:
    """Affine matrices mapping image pixel coordinates to crop pixel coordinates (see module doc).

    Args:
        centers: ``(N, 2)`` crop centres ``(x, y)`` in image pixels.
        sizes: ``(N,)`` square sides in image pixels (> 0).
        output_size: crop side ``S`` in pixels.
        rotations: optional ``(N,)`` angles in degrees; the content turns counter-clockwise as
            displayed about the crop centre.
        flips: optional ``(N,)`` booleans; mirror the crop horizontally (``u -> S - 1 - u``).  A caller
            flipping landmarks must also swap their left/right indices.

    Returns:
        ``(N, 2, 3)`` float64 matrices ``M`` with ``[u, v] = M[:, :2] @ [x, y] + M[:, 2]``.
    """
    c = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    s = np.asarray(sizes, dtype=np.float64).reshape(-1)
    if s.shape[0] != c.shape[0]:
        raise ValueError(f"{c.shape[0]} centers but {s.shape[0]} sizes")
    if not np.all(s > 0):
        raise ValueError("crop sizes must be positive (empty or inverted box?)")
    n = c.shape[0]
    k = output_size / s
    if rotations is None:
        cos, sin = np.ones(n), np.zeros(n)
    else:
        theta = np.deg2rad(np.asarray(rotations, dtype=np.float64).reshape(-1))
        theta = np.broadcast_to(theta, (n,))
        cos, sin = np.cos(theta), np.sin(theta)
    a = np.empty((n, 2, 2))
    a[:, 0, 0], a[:, 0, 1] = k * cos, k * sin
    a[:, 1, 0], a[:, 1, 1] = -k * sin, k * cos
    half = (output_size - 1) * 0.5
    t = half - np.einsum("nij,nj->ni", a, c)
    m = np.concatenate([a, t[:, :, None]], axis=2)
    if flips is not None:
        f = np.broadcast_to(np.asarray(flips, dtype=bool).reshape(-1), (n,))
        m[f, 0, :] *= -1.0
        m[f, 0, 2] += output_size - 1
    return m


def crop_matrix(
    center: np.ndarray,
    size: float,
    output_size: int = DEFAULT_CROP_SIZE,
    rotation_deg: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """Single-crop version of :func:`crop_matrices`: ``(2,)`` centre, scalar side -> ``(2, 3)`` float64."""
    return crop_matrices(
        np.asarray(center, dtype=np.float64).reshape(1, 2),
        np.asarray([size], dtype=np.float64),
        output_size,
        rotations=np.asarray([rotation_deg]),
        flips=np.asarray([flip]),
    )[0]


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of ``(..., 2, 3)`` affine matrices (closed-form 2x2 inverse, float64)."""
    m = np.asarray(m, dtype=np.float64)
    a, b, tx = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    c, d, ty = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    det = a * d - b * c
    if np.any(det == 0):
        raise ValueError("singular affine matrix")
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    out = np.empty(m.shape, dtype=np.float64)
    out[..., 0, 0], out[..., 0, 1], out[..., 0, 2] = ia, ib, -(ia * tx + ib * ty)
    out[..., 1, 0], out[..., 1, 1], out[..., 1, 2] = ic, id_, -(ic * tx + id_ * ty)
    return out


def apply_affine(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply ``(..., 2, 3)`` affine matrices to ``(..., K, 2)`` points ``(x, y)``; leading dims broadcast.

    Returns float64 ``(..., K, 2)``.  Accepts anything ``np.asarray`` takes (CPU torch tensors too).
    """
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    return np.matmul(p, np.swapaxes(m[..., :2], -1, -2)) + m[..., None, :, 2]


def warp_crops(image_bgr: np.ndarray, matrices: np.ndarray, output_size: int = DEFAULT_CROP_SIZE) -> np.ndarray:
    """Cut ``N`` crops out of an image with bilinear interpolation; outside the image is black (0).

    Args:
        image_bgr: ``(H, W, 3)`` (or ``(H, W)`` / ``(H, W, C)``) uint8 image.
        matrices: ``(N, 2, 3)`` (or ``(2, 3)``) image -> crop matrices from :func:`crop_matrices`.
        output_size: crop side ``S``.

    Returns:
        ``(N, S, S, 3)`` crops of the image's dtype.  ``cv2.warpAffine`` samples
        ``dst(u, v) = src(M^-1 (u, v))`` with integer pixel centres on both sides, which is exactly
        this module's convention (checked in tests/test_crop.py).  Its bilinear weights are quantised
        to 1/32 pixel.
    """
    img = np.ascontiguousarray(image_bgr)
    mats = np.asarray(matrices, dtype=np.float64).reshape(-1, 2, 3)
    out = np.zeros((mats.shape[0], output_size, output_size, *img.shape[2:]), dtype=img.dtype)
    for i, mat in enumerate(mats):  # one cv2 call per crop (not per point)
        out[i] = cv2.warpAffine(
            img,
            mat,
            (output_size, output_size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        ).reshape(out.shape[1:])
    return out


def heatmap_to_crop(
    coords: np.ndarray, heatmap_size: int = DEFAULT_HEATMAP_SIZE, input_size: int = DEFAULT_CROP_SIZE
) -> np.ndarray:
    """Heatmap pixel coordinates -> crop (model input) pixel coordinates.

    A heatmap pixel covers ``stride = input_size / heatmap_size`` input pixels, so with both grids
    spanning the same area edge to edge: ``u = (h + 0.5) * stride - 0.5``.  Works on any ``(..., 2)``.
    """
    stride = input_size / heatmap_size
    return (np.asarray(coords, dtype=np.float64) + 0.5) * stride - 0.5


def crop_to_heatmap(
    coords: np.ndarray, heatmap_size: int = DEFAULT_HEATMAP_SIZE, input_size: int = DEFAULT_CROP_SIZE
) -> np.ndarray:
    """Inverse of :func:`heatmap_to_crop`: ``h = (u + 0.5) / stride - 0.5`` (for training targets)."""
    stride = input_size / heatmap_size
    return (np.asarray(coords, dtype=np.float64) + 0.5) / stride - 0.5
