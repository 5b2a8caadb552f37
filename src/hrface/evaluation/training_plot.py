"""Training curves from a run's ``metrics.csv`` (one row per epoch, as the trainers write it), drawn with
matplotlib (the ``hrface[plot]`` extra, imported only when drawing)."""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hrface.evaluation.landmarks import EvaluationError
from hrface.evaluation.plots import _finish, _label, _new_axes, _rgb
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
    each (highest for AP / recall) marked and given in the legend.  Needs matplotlib (``hrface[plot]``).
    Returns a uint8 BGR image of ``size``."""
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
    fig, ax = _new_axes(size, "drawing the training curves")
    from matplotlib.ticker import MaxNLocator

    for i, (name, v) in enumerate(values.items()):
        ok = np.isfinite(v) & np.isfinite(epochs)
        xs, ys, color = epochs[ok], v[ok], _rgb(i)
        if not xs.size:
            ax.plot([], [], color=color, linewidth=2, label=f"{_label(name, 40)}  (no values yet)")
            continue
        best = int(np.argmax(ys) if name in HIGHER_IS_BETTER else np.argmin(ys))
        value = f"{ys[best]:.2f}%" if percent else f"{ys[best]:.4g}"
        label = f"{_label(name, 40)}  (best {value} at epoch {int(xs[best])})"
        marker = "o" if xs.size <= 40 else None  # a single epoch shows as a dot
        ax.plot(xs, ys, color=color, linewidth=2, marker=marker, markersize=3.5, label=label)
        ax.plot(xs[best], ys[best], "*", color=color, markersize=13, markeredgecolor="black", markeredgewidth=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    last = max(float(np.nanmax(epochs)), 1.0)
    ax.set_xlim(left=0, right=last + max(1.0, 0.03 * last))
    if finite.min() >= 0:
        ax.set_ylim(bottom=0, top=float(finite.max()) * 1.05 or 1.0)
    ylabel = ", ".join(columns) + (" (%)" if percent else "")
    return _finish(fig, ax, title, "Epoch", ylabel)


def plot_training(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    columns: Sequence[str] | None = None,
) -> Path:
    """Draw ``run_dir/metrics.csv`` with matplotlib (``hrface[plot]``) to ``out`` (default
    ``run_dir/training.png``; written atomically, format from the suffix); returns the image path.
    ``columns`` default: the first of :data:`DEFAULT_COLUMNS` the run has values for."""
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
