"""Evaluation plots drawn with OpenCV, without matplotlib: cumulative error distributions (CED) of
landmark errors and precision–recall curves of face detectors.

Both are drawn on a :class:`~hrface.evaluation.plot_canvas.PlotCanvas` (supersampled, then shrunk
with area averaging).  CED errors are fractions of the normalising distance (as produced by
:func:`hrface.evaluation.landmarks.normalised_errors`); ``inf`` marks a missed face, which never
enters the curve, so that curve stays below 1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from hrface.evaluation.landmarks import EvaluationError, _errors, _threshold, auc, failure_rate
from hrface.evaluation.plot_canvas import CURVE_COLORS, PlotCanvas, ascii_label, nice_ticks
from hrface.io.image import write_image

__all__ = ["CURVE_COLORS", "plot_ced", "plot_pr_curves", "render_ced", "render_pr_curves"]

_FRACTION_TICKS = np.linspace(0.0, 1.0, 6)


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
    canvas = PlotCanvas(size, x_max=t)
    canvas.axes(*nice_ticks(t), _FRACTION_TICKS, 1)
    labels, colors = [], []
    for i, (name, errors) in enumerate(curves.items()):
        e = _errors(errors)
        if not e.size:
            raise EvaluationError(f"curve {name!r} has no errors")
        verts = _step_polyline(e, t)
        color = CURVE_COLORS[i % len(CURVE_COLORS)]
        canvas.curve(verts[:, 0], verts[:, 1], color)
        labels.append(f"{ascii_label(name, 32)}  (AUC {100 * auc(e, t):.1f}%, FR {100 * failure_rate(e, t):.1f}%)")
        colors.append(color)
    canvas.legend(labels, colors)
    canvas.labels(title, xlabel, "Fraction of faces")
    return canvas.image()


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
    canvas = PlotCanvas(size, x_max=1.0)
    canvas.axes(_FRACTION_TICKS, 1, _FRACTION_TICKS, 1)
    labels, colors = [], []
    for i, (name, (recall, precision)) in enumerate(curves.items()):
        r, p = np.asarray(recall, np.float64).reshape(-1), np.asarray(precision, np.float64).reshape(-1)
        if r.shape != p.shape:
            raise EvaluationError(f"curve {name!r}: {r.size} recall values but {p.size} precision values")
        defined = np.isfinite(r) & np.isfinite(p)
        color = CURVE_COLORS[i % len(CURVE_COLORS)]
        if defined.any():
            canvas.curve(np.clip(r[defined], 0, 1), np.clip(p[defined], 0, 1), color)
        value = None if ap is None else ap.get(name)
        suffix = "" if value is None or not math.isfinite(value) else f"  (AP {100 * value:.2f}%)"
        labels.append(ascii_label(name, 32) + suffix)
        colors.append(color)
    canvas.legend(labels, colors)
    canvas.labels(title, "Recall", "Precision")
    return canvas.image()


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
    coloured polyline per curve through its points, a legend with ``ap[name]`` in percent where
    given, the title and axis labels.  Returns the image (uint8 BGR ``height × width × 3``).
    """
    image = render_pr_curves(curves, title, ap=ap, size=size)
    write_image(path, image)
    return image
