"""Cumulative error distribution (CED) plots drawn with OpenCV, without matplotlib.

The figure is rendered at twice its size and shrunk with area averaging, which gives smooth lines
and legible Hershey text.  Errors are fractions of the normalising distance (as produced by
:func:`hrface.evaluation.landmarks.normalised_errors`); ``inf`` marks a missed face, which never
enters the curve, so that curve stays below 1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from hrface.evaluation.landmarks import EvaluationError, _errors, _threshold, auc, failure_rate
from hrface.io.image import write_image

__all__ = ["CURVE_COLORS", "plot_ced", "render_ced"]

CURVE_COLORS = (
    (180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
    (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23),
)
"""BGR line colours, used in order and cycled (matplotlib's "tab10" palette)."""

_S = 2  # supersampling factor
_SHIFT = 4  # fractional bits of the sub-pixel polyline coordinates
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK, _AXIS, _GRID = (40, 40, 40), (90, 90, 90), (228, 228, 228)


def _ascii(text: str, limit: int = 60) -> str:
    """Hershey fonts draw ASCII only; shorten long labels."""
    s = " ".join(str(text).encode("ascii", "replace").decode("ascii").split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _put(img: np.ndarray, text: str, x: float, y: float, scale: float, color=_INK, align: str = "left",
         thick: int = 1) -> None:
    """Draw ``text`` with its baseline at ``y`` (final-size pixels), anchored left/centre/right at ``x``."""
    (w, _), _ = cv2.getTextSize(text, _FONT, scale * _S, thick * _S)
    dx = {"left": 0.0, "center": -w / 2, "right": -w}[align]
    cv2.putText(img, text, (round(x * _S + dx), round(y * _S)), _FONT, scale * _S, color, thick * _S, cv2.LINE_AA)


def _text_size(text: str, scale: float, thick: int = 1) -> tuple[float, float]:
    (w, h), base = cv2.getTextSize(text, _FONT, scale * _S, thick * _S)
    return w / _S, (h + base) / _S


def _nice_ticks(upper: float, target: int = 5) -> tuple[np.ndarray, int]:
    """Ticks 0, step, ... <= upper with a 1-2-2.5-5 step; and the decimals their labels need."""
    raw = upper / target
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw * 0.999)
    ticks = np.arange(0.0, upper + step * 1e-6, step)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if round(step / mag, 3) == 2.5 else 0)
    return ticks, decimals


def _step_polyline(errors: np.ndarray, threshold: float) -> np.ndarray:
    """Vertices (M, 2) of the exact CED step function on [0, threshold] (x error, y fraction)."""
    n = errors.size
    values, counts = np.unique(errors[errors <= threshold], return_counts=True)
    frac = np.cumsum(counts) / n
    at_zero = frac[0] if values.size and values[0] <= 0 else 0.0
    if values.size and values[0] <= 0:
        values, frac = values[1:], frac[1:]
    before = np.concatenate([[at_zero], frac[:-1]]) if values.size else np.empty(0)
    xs = np.concatenate([[0.0], np.repeat(values, 2), [threshold]])
    ys = np.concatenate([[at_zero], np.column_stack([before, frac]).reshape(-1), [frac[-1] if frac.size else at_zero]])
    return np.column_stack([xs, ys])


def _rotated_label(img: np.ndarray, text: str, cx: float, cy: float, scale: float) -> None:
    """Draw ``text`` rotated 90° counter-clockwise, centred at (cx, cy) in final-size pixels."""
    (w, h), base = cv2.getTextSize(text, _FONT, scale * _S, _S)
    tile = np.full((h + base + 4 * _S, w + 4 * _S, 3), 255, np.uint8)
    cv2.putText(tile, text, (2 * _S, h + 2 * _S), _FONT, scale * _S, _INK, _S, cv2.LINE_AA)
    tile = np.ascontiguousarray(np.rot90(tile))
    th, tw = tile.shape[:2]
    y0, x0 = max(0, round(cy * _S - th / 2)), max(0, round(cx * _S - tw / 2))
    region = img[y0:y0 + th, x0:x0 + tw]
    np.minimum(region, tile[: region.shape[0], : region.shape[1]], out=region)


def render_ced(
    curves: Mapping[str, Any],
    threshold: float = 0.10,
    title: str = "Cumulative error distribution",
    *,
    xlabel: str = "Normalised mean error",
    size: tuple[int, int] = (800, 600),
) -> np.ndarray:
    """The CED figure as a uint8 BGR image of ``size`` (width, height); see :func:`plot_ced`."""
    t = _threshold(threshold)
    if not curves:
        raise EvaluationError("plot_ced needs at least one curve")
    width, height = int(size[0]), int(size[1])
    if width < 320 or height < 240:
        raise EvaluationError(f"plot size must be at least 320x240, got {width}x{height}")
    img = np.full((height * _S, width * _S, 3), 255, np.uint8)
    left, right, top, bottom = 78, width - 24, 52, height - 62

    def px(x: np.ndarray | float) -> np.ndarray:
        return left + np.asarray(x) / t * (right - left)

    def py(f: np.ndarray | float) -> np.ndarray:
        return bottom - np.asarray(f) * (bottom - top)

    def line(p: tuple[float, float], q: tuple[float, float], color, thick: int = 1) -> None:
        a = (round(p[0] * _S), round(p[1] * _S))
        b = (round(q[0] * _S), round(q[1] * _S))
        cv2.line(img, a, b, color, thick * _S, cv2.LINE_AA)

    # grid, ticks and tick labels
    xticks, xdec = _nice_ticks(t)
    for v in xticks:
        x = float(px(v))
        line((x, top), (x, bottom), _GRID)
        line((x, bottom), (x, bottom + 5), _AXIS)
        _put(img, f"{v:.{xdec}f}", x, bottom + 22, 0.45, align="center")
    for v in np.linspace(0.0, 1.0, 6):
        y = float(py(v))
        line((left, y), (right, y), _GRID)
        line((left - 5, y), (left, y), _AXIS)
        _put(img, f"{v:.1f}", left - 9, y + 5, 0.45, align="right")

    cv2.rectangle(img, (left * _S, top * _S), (right * _S, bottom * _S), _AXIS, _S, cv2.LINE_AA)

    # curves: exact step functions, drawn with sub-pixel precision over the frame
    names, stats, mask = [], [], np.zeros(img.shape[:2], np.uint8)
    for i, (name, errors) in enumerate(curves.items()):
        e = _errors(errors)
        if not e.size:
            raise EvaluationError(f"curve {name!r} has no errors")
        verts = _step_polyline(e, t)
        pts = np.column_stack([px(verts[:, 0]), py(verts[:, 1])]) * _S
        fixed = np.rint(pts * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        color = CURVE_COLORS[i % len(CURVE_COLORS)]
        cv2.polylines(img, [fixed], False, color, 2 * _S, cv2.LINE_AA, _SHIFT)
        cv2.polylines(mask, [fixed], False, 255, 2 * _S, cv2.LINE_8, _SHIFT)
        names.append(_ascii(name, 32))
        stats.append((color, auc(e, t), failure_rate(e, t)))

    # legend in the corner of the plot area that the curves cross least
    labels = [f"{n}  (AUC {100 * a:.1f}%, FR {100 * f:.1f}%)" for n, (_, a, f) in zip(names, stats, strict=True)]
    row = 20
    text_w = max(_text_size(s, 0.42)[0] for s in labels)
    box_w, box_h = 12 + 30 + 8 + text_w + 12, 10 + row * len(labels) + 4
    pad = 10
    corners = [(right - pad - box_w, bottom - pad - box_h), (left + pad, top + pad),
               (right - pad - box_w, top + pad), (left + pad, bottom - pad - box_h)]

    def overlap(c: tuple[float, float]) -> int:
        x0, y0 = max(0, round(c[0] * _S)), max(0, round(c[1] * _S))
        return int(np.count_nonzero(mask[y0:y0 + round(box_h * _S), x0:x0 + round(box_w * _S)]))

    bx, by = min(corners, key=overlap)  # min() keeps the first corner on ties: lower right
    p0, p1 = (round(bx * _S), round(by * _S)), (round((bx + box_w) * _S), round((by + box_h) * _S))
    box = img[p0[1]:p1[1], p0[0]:p1[0]]
    box[:] = (box * 0.15 + 255 * 0.85).astype(np.uint8)  # translucent white, curves stay faintly visible
    cv2.rectangle(img, p0, p1, (170, 170, 170), _S, cv2.LINE_AA)
    for j, (label, (color, _, _)) in enumerate(zip(labels, stats, strict=True)):
        y = by + 10 + row * j + row / 2
        line((bx + 12, y), (bx + 42, y), color, 2)
        _put(img, label, bx + 50, y + 5, 0.42)

    # title and axis labels
    _put(img, _ascii(title, 70), width / 2, 32, 0.65, align="center", thick=1)
    _put(img, _ascii(xlabel, 70), (left + right) / 2, height - 16, 0.5, align="center")
    _rotated_label(img, "Fraction of faces", 20, (top + bottom) / 2, 0.5)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def plot_ced(
    curves: Mapping[str, Any],
    path: str | os.PathLike[str],
    threshold: float = 0.10,
    title: str = "Cumulative error distribution",
    *,
    xlabel: str = "Normalised mean error",
    size: tuple[int, int] = (800, 600),
) -> np.ndarray:
    """Draw the CED of each ``curves`` entry (name → per-face errors, fractions) and write it.

    x: error from 0 to ``threshold``; y: fraction of faces with error <= x (0–1).  One coloured
    line per curve (the exact step function), a grid, ticks, a legend giving each curve's AUC and
    failure rate at ``threshold`` in percent (placed in the corner the curves cross least), the
    title and axis labels.  Text is drawn in ASCII (other characters become ``?``).  The image is
    written atomically with :func:`hrface.io.image.write_image` (format from the suffix, PNG
    recommended) and returned as uint8 BGR ``height × width × 3``.
    """
    image = render_ced(curves, threshold, title, xlabel=xlabel, size=size)
    write_image(path, image)
    return image
