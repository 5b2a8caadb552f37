"""Where landmark errors come from: the mean *signed* error per axis and facial part, and NME by head yaw.

A mean signed error is ``mean(pred - gt)`` per axis over the points of one facial part (the layout's
``parts``: jaw, brows, nose, eyes, mouth), each point's error divided by its face's inter-ocular distance
(a fraction; 0.01 = 1 % of the distance of the outer eye corners).  x grows to the image's right, y
downwards, so ``y > 0`` means points sit below the labels.  A systematic offset shows as a signed mean
far from 0 with many faces; random error averages out.  Missed faces (non-finite predictions) are left
out.

The yaw of each face comes from its *ground-truth* points (:func:`hrface.geometry.pose.face_pose`:
68 points for the 300W layout, the 5 derived points otherwise), so the bins do not depend on the model
being evaluated.  ``|yaw|`` is binned; a face whose pose fit fails is counted under ``"unknown"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..geometry.pose import face_pose
from ..landmarks.layouts import LandmarkLayout
from .landmarks import EvaluationError, summarize

YAW_EDGES = (0.0, 15.0, 30.0, 45.0, 90.0)
"""Default ``|yaw|`` bin edges in degrees: frontal, slightly turned, turned, profile-like."""


def signed_errors(pred: Any, gt: Any, layout: LandmarkLayout) -> dict[str, dict[str, float | int]]:
    """Mean signed error per axis for each facial part and for all points.

    Args:
        pred, gt: ``(N, K, 2)`` image pixels; rows of ``pred`` with a non-finite value are missed faces.
        layout: the points' layout (its ``parts`` and outer eye corners).

    Returns:
        ``{part: {"x": fraction, "y": fraction, "points": count}}`` for each part in layout order, then
        ``"all"``; fractions of the inter-ocular distance (NaN when no face was found).
    """
    p, g = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if p.shape != g.shape or p.ndim != 3 or p.shape[1] != layout.num_points:
        raise EvaluationError(f"pred {p.shape} and gt {g.shape} must both be (N, {layout.num_points}, 2)")
    found = np.isfinite(p).all(axis=(1, 2))
    delta = (p[found] - g[found]) / layout.interocular(g[found])[:, None, None]  # (M, K, 2)
    parts = [*layout.parts, ("all", tuple(range(layout.num_points)))]
    out: dict[str, dict[str, float | int]] = {}
    for name, indices in parts:
        d = delta[:, list(indices)].reshape(-1, 2)
        mean = d.mean(axis=0) if len(d) else np.full(2, np.nan)
        out[name] = {"x": float(mean[0]), "y": float(mean[1]), "points": int(len(d))}
    return out


def ground_truth_yaw(gt: Any, image_sizes: Sequence[tuple[int, int]], layout: LandmarkLayout) -> np.ndarray:
    """Yaw in degrees (N,) of each face from its ground-truth points (NaN where the pose fit fails).
    ``image_sizes``: ``(width, height)`` of each face's image (the camera model)."""
    g = np.asarray(gt, np.float64)
    yaws = np.full(len(g), np.nan)
    for i, (points, size) in enumerate(zip(g, image_sizes, strict=True)):
        pose = face_pose(points, layout.five_points(points), size)  # 68 points, else the 5 derived ones
        if pose is not None:
            yaws[i] = pose.yaw
    return yaws


def yaw_bin_labels(yaws: Any, edges: Sequence[float] = YAW_EDGES) -> list[str]:
    """Each face's ``|yaw|`` bin as a label such as ``"15-30°"`` (the last bin is closed), ``"unknown"`` for NaN."""
    labels = []
    for yaw in np.abs(np.asarray(yaws, np.float64)):
        label = "unknown"
        for lo, hi in zip(edges[:-1], edges[1:], strict=False):
            if np.isfinite(yaw) and lo <= yaw and (yaw < hi or (hi == edges[-1] and yaw <= hi)):
                label = f"{lo:g}-{hi:g}°"
                break
        labels.append(label)
    return labels


def nme_by_yaw(errors: Any, yaws: Any, edges: Sequence[float] = YAW_EDGES) -> dict[str, dict[str, Any]]:
    """:class:`~.landmarks.LandmarkMetrics` dicts of the faces in each ``|yaw|`` bin (bins in order, empty
    ones left out), from per-face errors (fractions, ``inf`` = missed) and yaws in degrees."""
    e = np.asarray(errors, np.float64)
    labels = np.asarray(yaw_bin_labels(yaws, edges), dtype=object)
    order = [f"{lo:g}-{hi:g}°" for lo, hi in zip(edges[:-1], edges[1:], strict=False)] + ["unknown"]
    return {name: summarize(e[labels == name]).to_dict() for name in order if (labels == name).any()}


def signed_error_table(signed: dict[str, dict[str, float | int]], digits: int = 2) -> str:
    """Markdown table of :func:`signed_errors` in percent of the inter-ocular distance."""
    lines = ["| part | points | mean x error (%) | mean y error (%) |", "|---|---:|---:|---:|"]
    for name, row in signed.items():
        lines.append(f"| {name} | {row['points']} | {100 * row['x']:+.{digits}f} | {100 * row['y']:+.{digits}f} |")
    return "\n".join(lines) + "\n"


def yaw_table(by_yaw: dict[str, dict[str, Any]], digits: int = 2) -> str:
    """Markdown table of :func:`nme_by_yaw`: faces, missed, NME and FR@0.10 in percent per ``|yaw|`` bin."""
    lines = ["| abs(yaw) | faces | missed | NME (%) | FR@0.10 (%) |", "|---|---:|---:|---:|---:|"]
    for name, m in by_yaw.items():
        nme = "n/a" if m["nme"] is None else f"{100 * m['nme']:.{digits}f}"
        lines.append(f"| {name} | {m['count']} | {m['missed']} | {nme} | {100 * m['fr_010']:.{digits}f} |")
    return "\n".join(lines) + "\n"
