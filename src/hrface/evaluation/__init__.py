"""Evaluation of facial-landmark predictions: normalised errors, NME / failure rate / AUC, tables, CED plots.

Errors are fractions of the normalising distance (inter-ocular, inter-pupil or face-box size);
missed faces have error ``inf``.  See :mod:`hrface.evaluation.landmarks`.
"""

from hrface.evaluation.landmarks import (
    NORMALISATIONS,
    EvaluationError,
    LandmarkMetrics,
    auc,
    ced_curve,
    evaluate_predictions,
    failure_rate,
    found_by_all,
    metrics_table,
    normalised_errors,
    summarize,
)
from hrface.evaluation.plots import CURVE_COLORS, plot_ced, render_ced

__all__ = [
    "CURVE_COLORS",
    "NORMALISATIONS",
    "EvaluationError",
    "LandmarkMetrics",
    "auc",
    "ced_curve",
    "evaluate_predictions",
    "failure_rate",
    "found_by_all",
    "metrics_table",
    "normalised_errors",
    "plot_ced",
    "render_ced",
    "summarize",
]
