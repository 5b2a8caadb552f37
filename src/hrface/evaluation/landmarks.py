"""Facial-landmark accuracy metrics of the 300W / WFLW / COFW / AFLW protocols (as in the HRNet paper).

Units: an **error** is the mean point-to-point Euclidean distance of one face divided by a
normalising distance of that face's ground truth, so it is a *fraction* of that distance
(0.05 = 5 %).  Rates and AUCs are fractions in [0, 1]; only :func:`metrics_table` prints percents.

Normalisations (``norm``):

- ``"inter-ocular"``: distance of the outer eye corners (``layout.outer_eye_corners``; 300W
  36–45, WFLW 60–72, COFW 8–9 — the distance HRNet uses for these sets).
- ``"inter-pupil"``: distance of the eye centres (``layout.eye_centres``: annotated pupils where
  the layout has them, otherwise the mean of each eye's contour points).
- ``"box"``: ``sqrt(w * h)`` of the face box; the given ``boxes`` (N, 4) ``x1, y1, x2, y2`` or,
  without them, the tight box of all ground-truth points (visibility ignored: occluded points are
  still annotated).  HRNet normalises AFLW by the dataset's box size.

A face whose prediction is missing (a row with NaN/inf among the evaluated points, e.g. a missed
detection) gets error ``+inf``: it is a failure at every threshold, adds nothing to the AUC, is
excluded from the NME mean and is counted separately as ``missed``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hrface.errors import HrfaceError
from hrface.landmarks.layouts import LandmarkLayout, get_layout

__all__ = [
    "NORMALISATIONS",
    "EvaluationError",
    "LandmarkMetrics",
    "auc",
    "ced_curve",
    "evaluate_predictions",
    "failure_rate",
    "metrics_table",
    "normalised_errors",
    "summarize",
]

NORMALISATIONS = ("inter-ocular", "inter-pupil", "box")
"""The normalisation names accepted by :func:`normalised_errors` (``_`` and case are tolerated)."""


class EvaluationError(HrfaceError, ValueError):
    """Inconsistent evaluation input (shapes, non-finite ground truth, degenerate normaliser)."""


def _norm_name(norm: str) -> str:
    key = str(norm).strip().lower().replace("_", "-").replace(" ", "-")
    key = {"interocular": "inter-ocular", "interpupil": "inter-pupil", "inter-pupillary": "inter-pupil"}.get(key, key)
    if key not in NORMALISATIONS:
        raise EvaluationError(f"unknown normalisation {norm!r}; use one of {', '.join(NORMALISATIONS)}")
    return key


def _points(name: str, a: Any) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise EvaluationError(f"{name} must have shape (N, K, 2), got {arr.shape}")
    return arr


def _normaliser(gt: np.ndarray, norm: str, layout: LandmarkLayout | None, boxes: Any) -> np.ndarray:
    """(N,) normalising distances in pixels, computed from the ground truth only."""
    n, k = gt.shape[:2]
    if norm == "box":
        if boxes is None:
            lo, hi = gt.min(axis=1), gt.max(axis=1)
        else:
            b = np.asarray(boxes, dtype=np.float64)
            if b.shape != (n, 4):
                raise EvaluationError(f"boxes must have shape ({n}, 4) as x1, y1, x2, y2, got {b.shape}")
            lo, hi = b[:, :2], b[:, 2:]
        wh = hi - lo
        return np.sqrt(np.clip(wh[:, 0], 0, None) * np.clip(wh[:, 1], 0, None))
    layout = get_layout(k) if layout is None else layout
    if layout.num_points != k:
        raise EvaluationError(f"layout {layout.name} has {layout.num_points} points, the landmarks have {k}")
    return layout.interocular(gt) if norm == "inter-ocular" else layout.interpupil(gt)


def normalised_errors(
    pred: Any,
    gt: Any,
    norm: str = "inter-ocular",
    layout: LandmarkLayout | None = None,
    boxes: Any = None,
    visible: Any = None,
) -> np.ndarray:
    """Per-face normalised mean error (N,) float64, a fraction of the normalising distance.

    ``pred`` and ``gt`` are (N, K, 2) pixel coordinates; ``layout`` defaults to ``get_layout(K)``
    (needed for the eye-based norms); ``boxes`` (N, 4) xyxy is used by ``norm="box"`` only (tight
    GT box when None); ``visible`` (N, K) bool restricts the mean to visible points (COFW style;
    the normaliser always comes from the full GT).  Missing predictions (non-finite coordinates
    among the evaluated points) give ``+inf``.  Raises :class:`EvaluationError` for mismatched
    shapes, non-finite GT, a face with no visible point or a zero normaliser.
    """
    norm = _norm_name(norm)
    pred, gt = _points("pred", pred), _points("gt", gt)
    if pred.shape != gt.shape:
        raise EvaluationError(f"pred {pred.shape} and gt {gt.shape} must have the same shape")
    if not np.isfinite(gt).all():
        raise EvaluationError("gt contains NaN or infinite coordinates; every ground-truth point must be finite")
    n, k = gt.shape[:2]
    if visible is None:
        mask = np.ones((n, k), dtype=bool)
    else:
        mask = np.asarray(visible)
        if mask.shape != (n, k):
            raise EvaluationError(f"visible must have shape ({n}, {k}), got {mask.shape}")
        mask = mask.astype(bool)
    counts = mask.sum(axis=1)
    if (counts == 0).any():
        face = int(np.argmax(counts == 0))
        raise EvaluationError(f"face {face} has no visible point; drop the face or mark some points visible")
    dist = _normaliser(gt, norm, layout, boxes)
    bad = ~(np.isfinite(dist) & (dist > 0))
    if bad.any():
        raise EvaluationError(f"face {int(np.argmax(bad))} has a zero {norm} distance in its ground truth")
    missed = (~np.isfinite(pred).all(axis=2) & mask).any(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        point_err = np.where(mask, np.linalg.norm(pred - gt, axis=2), 0.0)
        errors = point_err.sum(axis=1) / counts / dist
    errors[missed] = np.inf
    return errors


def _errors(errors: Any) -> np.ndarray:
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    if np.isnan(e).any() or (e < 0).any():
        raise EvaluationError("errors must be non-negative (inf for a missed face), not NaN")
    return e


def _threshold(threshold: float) -> float:
    t = float(threshold)
    if not (math.isfinite(t) and t > 0):
        raise EvaluationError(f"threshold must be a positive finite number, got {threshold!r}")
    return t


def failure_rate(errors: Any, threshold: float = 0.10) -> float:
    """Fraction of faces with error > ``threshold`` (missed faces, ``inf``, always fail); NaN if empty."""
    e, t = _errors(errors), _threshold(threshold)
    return float(np.mean(e > t)) if e.size else math.nan


def auc(errors: Any, threshold: float = 0.10, steps: int | None = None) -> float:
    """Area under the cumulative error distribution on [0, threshold], divided by ``threshold``.

    The CED is the step function ``F(x) = fraction of errors <= x``; the default (``steps=None``)
    is its exact integral, ``mean(clip(threshold - e, 0, threshold)) / threshold``, so a perfect
    method scores 1, a face with error ``e < threshold`` contributes ``1 - e / threshold`` and
    failures (and missed faces) contribute 0.  With ``steps`` the integral is instead the
    trapezoid rule on ``steps`` evenly spaced samples of ``F`` (``np.linspace(0, threshold,
    steps)``), as some reference implementations compute it.  NaN for no errors.
    """
    e, t = _errors(errors), _threshold(threshold)
    if not e.size:
        return math.nan
    if steps is None:
        return float(np.mean(np.clip(t - e, 0.0, t)) / t)
    if steps < 2:
        raise EvaluationError(f"steps must be at least 2, got {steps}")
    x, f = ced_curve(e, t, num=steps)
    return float(np.sum((f[1:] + f[:-1]) * np.diff(x)) / (2.0 * t))


def ced_curve(errors: Any, threshold: float = 0.10, num: int = 1001) -> tuple[np.ndarray, np.ndarray]:
    """Samples of the cumulative error distribution: ``x = linspace(0, threshold, num)`` (errors,
    fractions) and ``fraction[i]`` = share of faces with error <= ``x[i]`` (in [0, 1])."""
    e, t = np.sort(_errors(errors)), _threshold(threshold)
    x = np.linspace(0.0, t, int(num))
    if not e.size:
        return x, np.full_like(x, math.nan)
    return x, np.searchsorted(e, x, side="right") / e.size


@dataclass(frozen=True)
class LandmarkMetrics:
    """Summary of one set of normalised errors; every rate is a fraction, not a percent.

    ``nme`` is the mean over the *found* faces only (NaN when there are none); ``missed`` counts
    the faces with a missing prediction, which do count as failures (``fr_*``) and add 0 to the
    AUCs.  ``fr_008`` / ``auc_008``: threshold 0.08 (300W); ``fr_010`` / ``auc_010``: 0.10 (WFLW).
    """

    nme: float
    fr_008: float
    fr_010: float
    auc_008: float
    auc_010: float
    count: int
    missed: int

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready dict (NaN becomes ``None``)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def found_by_all(*errors: Any) -> np.ndarray:
    """Boolean mask of the faces that every run found (finite error in each of ``errors``, arrays of the
    same faces in the same order): the faces on which pipelines whose detectors miss different faces can
    be compared fairly."""
    arrays = [_errors(e) for e in errors]
    if len({a.size for a in arrays}) > 1:
        raise EvaluationError("the runs to compare must hold the same faces")
    return np.logical_and.reduce([np.isfinite(a) for a in arrays])


def summarize(errors: Any) -> LandmarkMetrics:
    """:class:`LandmarkMetrics` of per-face errors (fractions; ``inf`` = missed face)."""
    e = _errors(errors)
    if not e.size:
        raise EvaluationError("no errors to summarise; the subset is empty")
    found = np.isfinite(e)
    return LandmarkMetrics(
        nme=float(e[found].mean()) if found.any() else math.nan,
        fr_008=failure_rate(e, 0.08),
        fr_010=failure_rate(e, 0.10),
        auc_008=auc(e, 0.08),
        auc_010=auc(e, 0.10),
        count=int(e.size),
        missed=int((~found).sum()),
    )


def _pct(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{100.0 * value:.{digits}f}"


def metrics_table(groups: Mapping[str, Any], digits: int = 2, pooled: bool = True) -> str:
    """Markdown table with one row per subset of ``groups`` (name → per-face errors) and a final
    ``all`` row over every subset together (added when ``pooled``, there are several subsets and none is
    named ``all``; rows that are different models on the same faces are not pooled).  NME, FR and AUC
    are in percent with ``digits`` decimals; ``faces`` and ``missed`` are counts.  An NME of ``n/a``
    means every face of that row was missed."""
    rows = {str(name): _errors(e) for name, e in groups.items()}
    if not rows:
        raise EvaluationError("metrics_table needs at least one group of errors")
    if pooled and len(rows) > 1 and "all" not in rows:
        rows["all"] = np.concatenate(list(rows.values()))
    metrics = ["NME (%)", "FR@0.08 (%)", "FR@0.10 (%)", "AUC@0.08 (%)", "AUC@0.10 (%)"]
    header = ["subset" if pooled else "model", "faces", "missed", *metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for name, e in rows.items():
        m = summarize(e)
        cells = [name.replace("|", "\\|"), str(m.count), str(m.missed)]
        cells += [_pct(v, digits) for v in (m.nme, m.fr_008, m.fr_010, m.auc_008, m.auc_010)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def evaluate_predictions(
    pred: Any,
    gt: Any,
    layout: LandmarkLayout | None = None,
    subsets: Sequence[str] | None = None,
    boxes: Any = None,
    visible: Any = None,
) -> dict[str, Any]:
    """All metrics for every normalisation, overall and per subset, as a JSON-serialisable dict.

    ``subsets`` gives each face's subset name (length N, e.g. ``"common"`` / ``"challenging"``
    for 300W or the WFLW attribute splits); ``None`` means no per-subset rows.  Result::

        {"layout": "300W", "num_points": 68, "count": N, "missed": M,
         "metrics": {"inter-ocular": {"all": {...}, "subsets": {"common": {...}, ...}},
                     "inter-pupil": {...}, "box": {...}}}

    where each ``{...}`` is :meth:`LandmarkMetrics.to_dict` (fractions; ``nme`` None if all
    missed).  Subsets appear in order of first occurrence; ``boxes`` / ``visible`` as in
    :func:`normalised_errors`.
    """
    gt_arr = _points("gt", gt)
    n, k = gt_arr.shape[:2]
    layout = get_layout(k) if layout is None else layout
    labels: list[str] | None = None
    if subsets is not None:
        labels = [str(s) for s in subsets]
        if len(labels) != n:
            raise EvaluationError(f"subsets has {len(labels)} labels for {n} faces; give one label per face")
    metrics: dict[str, Any] = {}
    missed = 0
    for norm in NORMALISATIONS:
        errors = normalised_errors(pred, gt_arr, norm, layout=layout, boxes=boxes, visible=visible)
        missed = int(np.isinf(errors).sum())
        entry: dict[str, Any] = {"all": summarize(errors).to_dict(), "subsets": {}}
        if labels is not None:
            names = np.asarray(labels, dtype=object)
            for name in dict.fromkeys(labels):
                entry["subsets"][name] = summarize(errors[names == name]).to_dict()
        metrics[norm] = entry
    return {"layout": layout.name, "num_points": k, "count": n, "missed": missed, "metrics": metrics}
