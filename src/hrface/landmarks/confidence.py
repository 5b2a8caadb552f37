"""Per-point confidence of heatmap landmarks: each heatmap's peak value mapped to a score in [0, 1].

A landmark model trained on Gaussian targets of peak 1 answers a clearly visible point with a tall, narrow
peak and a hidden or ambiguous one with a low, spread-out response, so the peak value ranks points by how
much the model can see them.  Its scale is the model's own, though, so a model may carry a *calibration*
``(a, b)``: ``score = sigmoid(a * peak + b)``, fitted by logistic regression of "the point lies within
:data:`POINT_TOLERANCE` of the inter-ocular distance from its label" on the model's training faces
(:func:`fit_point_calibration`).  A calibrated score is then an estimate of that probability: of the
points scored about 0.8, about 80 % lie that close to where an annotator puts them.  A model without a
calibration scores ``clip(peak, 0, 1)`` (which ranks the points the same way but is not a probability).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

POINT_TOLERANCE = 0.05
"""A point counts as right when it lies within this fraction of the face's inter-ocular distance (5 %)."""


def point_scores(peaks: Any, calibration: Sequence[float] | None = None) -> np.ndarray:
    """Scores in [0, 1] (same shape as ``peaks``, float64) from heatmap peak values; non-finite peaks score 0.

    ``calibration``: ``(a, b)`` of ``sigmoid(a * peak + b)``, or None for ``clip(peak, 0, 1)``.
    """
    p = np.nan_to_num(np.asarray(peaks, dtype=np.float64), nan=-np.inf, posinf=-np.inf)
    if calibration is None:
        return np.clip(np.where(np.isfinite(p), p, 0.0), 0.0, 1.0)
    a, b = (float(v) for v in calibration)
    z = np.clip(a * np.where(np.isfinite(p), p, -1e3) + b, -60.0, 60.0)
    return np.where(np.isfinite(p), 1.0 / (1.0 + np.exp(-z)), 0.0)


def fit_point_calibration(peaks: Any, correct: Any, l2: float = 1e-5, steps: int = 50) -> tuple[float, float]:
    """``(a, b)`` of the logistic model ``P(correct) = sigmoid(a * peak + b)`` (Newton's method on the mean
    log-loss with a small ridge ``l2`` on ``a``; any shapes, flattened; non-finite peaks are left out)."""
    x = np.asarray(peaks, dtype=np.float64).reshape(-1)
    y = np.asarray(correct, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"peaks ({x.size}) and correct ({y.size}) must have the same number of points")
    keep = np.isfinite(x)
    x, y = x[keep], y[keep]
    if x.size < 2 or y.min() == y.max():
        raise ValueError("the calibration needs points both within and beyond the tolerance")
    features = np.stack([x, np.ones_like(x)], axis=1)  # (M, 2)
    w = np.zeros(2)
    ridge = np.diag([l2, 0.0])
    for _ in range(steps):
        prob = 1.0 / (1.0 + np.exp(-np.clip(features @ w, -60.0, 60.0)))
        grad = features.T @ (prob - y) / x.size + ridge @ w
        hess = (features * (prob * (1.0 - prob))[:, None]).T @ features / x.size + ridge + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return float(w[0]), float(w[1])


def points_within(pred: Any, gt: Any, interocular: Any, tolerance: float = POINT_TOLERANCE) -> np.ndarray:
    """(N, K) bool: each predicted point lies within ``tolerance`` × its face's inter-ocular distance
    ``(N,)`` of its label (``pred``, ``gt``: (N, K, 2) pixels; a non-finite prediction is never within)."""
    dist = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)
    limit = tolerance * np.asarray(interocular, np.float64).reshape(-1, 1)
    return np.nan_to_num(dist, nan=np.inf) <= limit


def reliability(scores: Any, correct: Any, edges: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)) -> list[dict]:
    """Per score bin: ``{"bin", "points", "mean_score", "within"}`` (``within``: fraction of its points that
    are right), the table that shows whether scores mean what they say; empty bins are left out."""
    s = np.asarray(scores, np.float64).reshape(-1)
    c = np.asarray(correct, bool).reshape(-1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=False):
        inside = (s >= lo) & ((s < hi) | ((hi == edges[-1]) & (s <= hi)))
        if inside.any():
            rows.append(
                {
                    "bin": f"{lo:g}-{hi:g}",
                    "points": int(inside.sum()),
                    "mean_score": float(s[inside].mean()),
                    "within": float(c[inside].mean()),
                }
            )
    return rows


def reliability_table(rows: list[dict], tolerance: float = POINT_TOLERANCE) -> str:
    """Markdown table of :func:`reliability` rows (percent)."""
    lines = [
        f"| score | points | mean score | within {100 * tolerance:g} % IOD (%) |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['bin']} | {row['points']} | {row['mean_score']:.3f} | {100 * row['within']:.1f} |")
    return "\n".join(lines) + "\n"
