"""Evaluation plots drawn with matplotlib (the ``hrface[plot]`` extra): cumulative error distributions (CED)
of landmark errors and precision–recall curves of face detectors.

matplotlib is imported only when a figure is drawn, through :func:`hrface.extras.require`; without it the
drawing functions raise a one-line :class:`~hrface.extras.MissingExtraError`.  Figures are drawn on a
``matplotlib.figure.Figure`` with its own Agg canvas (no pyplot, no global state, thread-safe) and returned
as uint8 BGR images.  CED errors are fractions of the normalising distance (as produced by
:func:`hrface.evaluation.landmarks.normalised_errors`); ``inf`` marks a missed face, which never enters the
curve, so that curve stays below 1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from hrface.evaluation.landmarks import EvaluationError, _errors, _threshold, auc, failure_rate
from hrface.extras import require
from hrface.io.image import write_image

__all__ = ["CURVE_COLORS", "plot_ced", "plot_pr_curves", "render_ced", "render_pr_curves"]

CURVE_COLORS = (
    (180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
    (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23),
)  # fmt: skip
"""BGR line colours, used in order and cycled (matplotlib's "tab10" palette)."""

_DPI = 100
_MIN_SIZE = (320, 240)


def _label(text: object, limit: int = 60) -> str:
    """``text`` on one line, cut to ``limit`` characters, with ``$`` escaped (no mathtext from user names)."""
    s = " ".join(str(text).split())
    s = s if len(s) <= limit else s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def _rgb(i: int) -> tuple[float, float, float]:
    """The ``i``-th of :data:`CURVE_COLORS` (cycled) as a matplotlib RGB colour."""
    b, g, r = CURVE_COLORS[i % len(CURVE_COLORS)]
    return r / 255, g / 255, b / 255


def _new_axes(size: tuple[int, int], feature: str) -> tuple[Any, Any]:
    """A white ``Figure`` of ``size`` (width, height) px with one gridded ``Axes``; imports matplotlib
    (``MissingExtraError`` naming ``hrface[plot]`` and ``feature`` when it is not installed)."""
    width, height = int(size[0]), int(size[1])
    if width < _MIN_SIZE[0] or height < _MIN_SIZE[1]:
        raise EvaluationError(f"plot size must be at least {_MIN_SIZE[0]}x{_MIN_SIZE[1]}, got {width}x{height}")
    require("matplotlib", "plot", feature)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI, facecolor="white", layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, which="major", color="0.88", linewidth=0.8)
    ax.grid(True, which="minor", color="0.95", linewidth=0.6)
    ax.set_axisbelow(True)
    return fig, ax


def _finish(fig: Any, ax: Any, title: str, xlabel: str, ylabel: str, legend_title: str | None = None) -> np.ndarray:
    """Title, axis labels and a legend where the curves leave most room; the figure rendered by its Agg
    canvas as uint8 BGR ``height × width × 3``."""
    ax.set_title(_label(title, 90), fontsize=13)
    ax.set_xlabel(_label(xlabel, 90), fontsize=11)
    ax.set_ylabel(_label(ylabel, 70), fontsize=11)
    ax.legend(loc="best", fontsize=9, title=legend_title, title_fontsize=9, framealpha=0.85)
    canvas = fig.canvas
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    image = np.ascontiguousarray(rgba[:, :, 2::-1])
    width, height = round(fig.bbox.width), round(fig.bbox.height)
    if image.shape[:2] != (height, width):  # rounding of figsize × dpi; never more than a pixel
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return image


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


def _fraction_axis(axis: Any) -> None:
    """Ticks every 0.1 (labelled every 0.2 by the major ticks) on a 0–1 axis."""
    from matplotlib.ticker import MultipleLocator

    axis.set_major_locator(MultipleLocator(0.2))
    axis.set_minor_locator(MultipleLocator(0.1))


def render_ced(
    curves: Mapping[str, Any],
    threshold: float = 0.10,
    title: str = "Cumulative error distribution",
    *,
    xlabel: str = "Normalised mean error (fraction of the normalising distance)",
    size: tuple[int, int] = (800, 600),
) -> np.ndarray:
    """The CED figure as a uint8 BGR image of ``size`` (width, height); see :func:`plot_ced`."""
    t = _threshold(threshold)
    if not curves:
        raise EvaluationError("plot_ced needs at least one curve")
    errors = {name: _errors(e) for name, e in curves.items()}
    for name, e in errors.items():
        if not e.size:
            raise EvaluationError(f"curve {name!r} has no errors")
    fig, ax = _new_axes(size, "drawing the CED plot")
    for i, (name, e) in enumerate(errors.items()):
        verts = _step_polyline(e, t)
        label = f"{_label(name, 32)}  (AUC {100 * auc(e, t):.1f}%, FR {100 * failure_rate(e, t):.1f}%)"
        ax.plot(verts[:, 0], verts[:, 1], color=_rgb(i), linewidth=2, label=label)
    ax.set_xlim(0, t)
    ax.set_ylim(0, 1)
    _fraction_axis(ax.yaxis)
    ax.minorticks_on()
    legend_title = f"AUC and failure rate (FR) at {t:g}"
    return _finish(fig, ax, title, xlabel, "Fraction of faces with error ≤ x", legend_title=legend_title)


def plot_ced(
    curves: Mapping[str, Any],
    path: str | os.PathLike[str],
    threshold: float = 0.10,
    title: str = "Cumulative error distribution",
    *,
    xlabel: str = "Normalised mean error (fraction of the normalising distance)",
    size: tuple[int, int] = (800, 600),
) -> np.ndarray:
    """Draw the CED of each ``curves`` entry (name → per-face errors, fractions) and write it.

    x: error from 0 to ``threshold``; y: fraction of faces with error <= x (0–1).  One coloured
    line per curve (the exact step function), a grid, a legend giving each curve's AUC and failure
    rate at ``threshold`` in percent, the title and axis labels.  Needs matplotlib (``hrface[plot]``).
    The image is written atomically with :func:`hrface.io.image.write_image` (format from the suffix,
    PNG recommended) and returned as uint8 BGR ``height × width × 3``.
    """
    image = render_ced(curves, threshold, title, xlabel=xlabel, size=size)
    write_image(path, image)
    return image


def _pr_points(name: str, recall: Any, precision: Any) -> tuple[np.ndarray, np.ndarray]:
    """The defined (finite) points of one precision–recall curve, clipped to [0, 1]."""
    r, p = np.asarray(recall, np.float64).reshape(-1), np.asarray(precision, np.float64).reshape(-1)
    if r.shape != p.shape:
        raise EvaluationError(f"curve {name!r}: {r.size} recall values but {p.size} precision values")
    defined = np.isfinite(r) & np.isfinite(p)
    return np.clip(r[defined], 0, 1), np.clip(p[defined], 0, 1)


def render_pr_curves(
    curves: Mapping[str, tuple[Any, Any]],
    title: str = "Precision-recall",
    *,
    ap: Mapping[str, float] | None = None,
    size: tuple[int, int] = (800, 600),
) -> np.ndarray:
    """The precision–recall figure as a uint8 BGR image of ``size``; see :func:`plot_pr_curves`."""
    if not curves:
        raise EvaluationError("plot_pr_curves needs at least one curve")
    points = {name: _pr_points(name, r, p) for name, (r, p) in curves.items()}
    fig, ax = _new_axes(size, "drawing the precision-recall plot")
    for i, (name, (r, p)) in enumerate(points.items()):
        value = None if ap is None else ap.get(name)
        suffix = "" if value is None or not math.isfinite(value) else f"  (AP {100 * value:.2f}%)"
        ax.plot(r, p, color=_rgb(i), linewidth=2, label=_label(name, 32) + suffix)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    _fraction_axis(ax.xaxis)
    _fraction_axis(ax.yaxis)
    return _finish(fig, ax, title, "Recall (fraction of faces found)", "Precision (fraction of detections correct)")


def plot_pr_curves(
    curves: Mapping[str, tuple[Any, Any]],
    path: str | os.PathLike[str],
    title: str = "Precision-recall",
    *,
    ap: Mapping[str, float] | None = None,
    size: tuple[int, int] = (800, 600),
) -> np.ndarray:
    """Draw precision–recall curves and write the figure (PNG recommended, written atomically).

    ``curves`` maps a name to ``(recall, precision)``: equal-length 1-D arrays of fractions, one
    point per score threshold from the highest to the lowest (as in
    :attr:`hrface.evaluation.widerface.WiderFaceResult.recall` / ``precision``); points where either
    is NaN (no proposals above that threshold) are left out.  x: recall 0–1, y: precision 0–1; one
    coloured line per curve through its points, a legend with ``ap[name]`` in percent where given,
    the title and axis labels.  Needs matplotlib (``hrface[plot]``).  Returns the image (uint8 BGR
    ``height × width × 3``).
    """
    image = render_pr_curves(curves, title, ap=ap, size=size)
    write_image(path, image)
    return image
