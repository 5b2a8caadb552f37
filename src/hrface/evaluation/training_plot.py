"""Training curves from a run's ``metrics.csv`` (one row per epoch, as the trainers write it), drawn on
a :class:`~hrface.evaluation.plot_canvas.PlotCanvas` without matplotlib."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hrface.evaluation.landmarks import EvaluationError
from hrface.evaluation.plot_canvas import CURVE_COLORS, PlotCanvas, nice_ticks
from hrface.io.image import write_image

__all__ = ["DEFAULT_COLUMNS", "PERCENT_COLUMNS", "plot_training", "read_metrics", "render_training_curves"]

DEFAULT_COLUMNS = ("val_nme", "val_ap")
"""The first of these that a run's CSV has values for is plotted when no column is named."""
HIGHER_IS_BETTER = frozenset({"val_ap", "val_recall", "val_keypoint_recall"})
PERCENT_COLUMNS = frozenset({"val_nme", "val_ap", "val_recall", "val_keypoint_nme", "val_keypoint_recall"})


def read_metrics(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The columns of a metrics CSV as float arrays (NaN for empty cells); ``EvaluationError`` with one line
    when the file is missing, empty or has no ``epoch`` column."""
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise EvaluationError(f"{path}: cannot read the metrics CSV ({exc.strerror or exc})") from None
    if not rows or "epoch" not in rows[0]:
        raise EvaluationError(f"{path}: no epochs yet (an empty metrics CSV or one without an 'epoch' column)")

    def number(text: str | None) -> float:
        try:
            return float(text) if text not in (None, "") else math.nan
        except ValueError:
            return math.nan

    return {key: np.array([number(r.get(key)) for r in rows]) for key in rows[0]}


def render_training_curves(
    metrics: dict[str, np.ndarray],
    columns: Sequence[str],
    title: str,
    size: tuple[int, int] = (800, 600),
) -> np.ndarray:
    """One curve per column against the epoch (percent for the ``PERCENT_COLUMNS``), the lowest value of
    each (highest for AP / recall) in the legend.  Returns a uint8 BGR image of ``size``."""
    epochs = metrics["epoch"]
    missing = [c for c in columns if c not in metrics]
    if missing:
        known = ", ".join(k for k in metrics if k != "epoch")
        raise EvaluationError(f"no column {missing[0]!r} in the metrics CSV; it has: {known}")
    percent = all(c in PERCENT_COLUMNS for c in columns)
    values = {c: metrics[c] * (100.0 if percent else 1.0) for c in columns}
    finite = np.concatenate([v[np.isfinite(v)] for v in values.values()])
    if finite.size == 0:
        raise EvaluationError(f"the metrics CSV has no values yet for {', '.join(columns)}")
    y_ticks, y_decimals = _ticks_above(float(finite.max()))
    x_ticks, _ = _ticks_above(max(float(np.nanmax(epochs)), 1.0))
    y_top, x_top = float(y_ticks[-1]), float(x_ticks[-1])
    canvas = PlotCanvas(size, x_max=x_top)
    canvas.axes(x_ticks, 0, y_ticks, y_decimals, y_max=y_top)
    labels, colors = [], []
    for i, (name, v) in enumerate(values.items()):
        ok = np.isfinite(v)
        color = CURVE_COLORS[i % len(CURVE_COLORS)]
        if ok.any():  # a single epoch is drawn as a dot (a two-point polyline of one point)
            xs, ys = np.resize(epochs[ok], max(2, ok.sum())), np.resize(v[ok] / y_top, max(2, ok.sum()))
            canvas.curve(xs, ys, color)
            best = int(np.nanargmax(v) if name in HIGHER_IS_BETTER else np.nanargmin(v))
            value = f"{v[best]:.2f}%" if percent else f"{v[best]:.4g}"
            name = f"{name}  (best {value} at epoch {int(epochs[best])})"
        labels.append(name)
        colors.append(color)
    canvas.legend(labels, colors)
    canvas.labels(title, "Epoch", "Percent" if percent else "Value")
    return canvas.image()


def _ticks_above(upper: float) -> tuple[np.ndarray, int]:
    """Nice ticks from 0 whose last one is at or above ``upper``."""
    ticks, decimals = nice_ticks(upper if upper > 0 else 1.0)
    if ticks[-1] < upper:
        ticks = np.append(ticks, ticks[-1] + (ticks[1] - ticks[0]))
    return ticks, decimals


def plot_training(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    columns: Sequence[str] | None = None,
) -> Path:
    """Draw ``run_dir/metrics.csv`` to ``out`` (default ``run_dir/training.png``, written atomically);
    returns the PNG path.  ``columns`` default: the first of :data:`DEFAULT_COLUMNS` the run has values for."""
    run_dir = Path(run_dir)
    metrics = read_metrics(run_dir / "metrics.csv")
    if not columns:
        usable = [c for c in DEFAULT_COLUMNS if c in metrics and np.isfinite(metrics[c]).any()]
        if not usable:
            raise EvaluationError(f"{run_dir / 'metrics.csv'}: no validation values yet; name a column with --column")
        columns = usable[:1]
    path = Path(out) if out is not None else run_dir / "training.png"
    write_image(path, render_training_curves(metrics, list(columns), f"{run_dir.name}: {', '.join(columns)}"))
    return path
