"""Temporal smoothing of face geometry with the One Euro filter (Casiez, Roussel & Vogel, CHI 2012).

The One Euro filter is a first-order low-pass filter whose cutoff frequency rises with speed: a face that
holds still is smoothed hard (little jitter), a face that moves is followed closely (little lag).  For each
value x sampled at time t (seconds), with Δt the time since the previous sample::

    α(f)   = 1 / (1 + 1 / (2π f Δt))                    smoothing factor of a low-pass with cutoff f (Hz)
    ẋ      = low-pass((x − x̂_prev) / Δt, α(d_cutoff))   speed, itself smoothed
    f_c    = min_cutoff + beta · |ẋ| / scale             cutoff rises with the (normalised) speed
    x̂      = low-pass(x, α(f_c))

Parameters:
    min_cutoff: cutoff (Hz) at rest; lower means less jitter and more lag when slow.
    beta: how fast the cutoff rises with speed, in Hz per (face size per second); higher means less lag
        when moving (and less smoothing of fast noise).
    d_cutoff: cutoff (Hz) of the speed estimate (1 Hz, as in the paper).

**Scale invariance.**  Speeds are divided by ``scale``, the face size in pixels (√(w·h) of its box, see
:func:`face_size`), so ``beta`` is in Hz per face-size-per-second and the same parameters behave the same on a
40-px and a 400-px face (a face crossing its own width in one second has speed 1).  The values themselves
stay in pixels.

**Defaults** (:data:`DEFAULT_MIN_CUTOFF` = 1 Hz, :data:`DEFAULT_BETA` = 30) were chosen with
``python benchmarks/video.py --grid`` (in the source repository: synthetic 30-fps clips of 300W validation
photos with pixel noise σ 4; see that script) over min_cutoff ∈ {0.3, 1, 3} Hz × beta ∈ {0, 3, 10, 30, 100}.
The bar: landmark jitter of a still face at most half the raw one, NME of a moving face (up to ~0.9 face
sizes/s) at most 5 % above the raw one.  On the first 4 validation photos beta 10 and 30 both passed (moving
NME × 1.039 and × 1.007); on the next 8 photos, held out, beta 10 failed (× 1.078) and beta 30 passed: still
jitter × 0.20, moving NME × 1.019.  beta ≥ 30 is the flat part of the curve (moving NME within 2 %);
min_cutoff 1 Hz rather than 0.3 Hz (a little less still jitter) keeps the settling time of a face that stops
short (~0.16 s).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["DEFAULT_BETA", "DEFAULT_D_CUTOFF", "DEFAULT_MIN_CUTOFF", "FaceSmoother", "OneEuroFilter", "face_size"]

DEFAULT_MIN_CUTOFF = 1.0
"""Cutoff at rest (Hz); chosen by measurement (``benchmarks/video.py``)."""
DEFAULT_BETA = 30.0
"""Cutoff increase (Hz) per face size per second of speed; chosen by measurement."""
DEFAULT_D_CUTOFF = 1.0
"""Cutoff of the speed estimate (Hz), the paper's value."""


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of an exponential low-pass with ``cutoff`` (Hz) for a step of ``dt`` seconds."""
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * np.asarray(cutoff) * dt))


class OneEuroFilter:
    """A One Euro filter over an array of values (any shape, each value filtered on its own).

    >>> f = OneEuroFilter(min_cutoff=1.0, beta=10.0)
    >>> smoothed = f(values, time_s, scale=face_px)   # values: float array; same shape on every call

    The first call returns the values unchanged.  A call whose time is not later than the previous one
    returns the previous output (nothing is learnt from a repeated time stamp).  A call with another shape
    starts the filter over.
    """

    def __init__(
        self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA, d_cutoff: float = DEFAULT_D_CUTOFF
    ) -> None:
        if not (min_cutoff > 0 and beta >= 0 and d_cutoff > 0):
            raise ValueError(
                f"OneEuroFilter needs min_cutoff > 0, beta >= 0 and d_cutoff > 0; got {min_cutoff}, {beta}, {d_cutoff}"
            )
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next call starts the filter over."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = -math.inf

    def __call__(self, x: Any, time_s: float, scale: float = 1.0) -> np.ndarray:
        """Filter one sample ``x`` taken at ``time_s`` seconds; speeds are divided by ``scale`` (> 0)."""
        x = np.asarray(x, dtype=np.float64)
        fresh = self._x is None or self._x.shape != x.shape
        if not np.isfinite(x).all():  # a broken sample (NaN, inf) must not poison the state
            return x.copy() if fresh else self._x.copy()
        if fresh:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(time_s)
            return x.copy()
        dt = float(time_s) - self._t
        if not dt > 0:
            return self._x.copy()
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        self._dx = self._dx + a_d * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx) / max(float(scale), 1e-9)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        self._t = float(time_s)
        return self._x.copy()


def face_size(box: np.ndarray) -> float:
    """Size of a face in pixels: √(w·h) of its box ``x1, y1, x2, y2`` (at least 1)."""
    b = np.asarray(box, dtype=np.float64).reshape(4)
    return max(1.0, math.sqrt(max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)))


class FaceSmoother:
    """One face's One Euro filter state: smooths ``box``, ``keypoints`` and ``landmarks`` together (one
    vectorised filter over 4 + 10 + 2K values), with speeds normalised by the face's size (:func:`face_size`).

    Works on any dataclass with those attributes (``landmarks`` may be None); every other attribute (score,
    landmark scores, …) is passed through from the newest face.  A face whose point count changes (or whose
    landmarks appear / vanish) starts the filter over.
    """

    def __init__(
        self, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA, d_cutoff: float = DEFAULT_D_CUTOFF
    ) -> None:
        self.filter = OneEuroFilter(min_cutoff, beta, d_cutoff)

    def __call__(self, face: Any, time_s: float) -> Any:
        """A copy of ``face`` (``dataclasses.replace``) with smoothed geometry, for a frame at ``time_s`` seconds."""
        box = np.asarray(face.box, dtype=np.float64).reshape(4)
        keypoints = np.asarray(face.keypoints, dtype=np.float64).reshape(-1, 2)
        parts = [box, keypoints.reshape(-1)]
        if face.landmarks is not None:
            parts.append(np.asarray(face.landmarks, dtype=np.float64).reshape(-1))
        out = self.filter(np.concatenate(parts), time_s, scale=face_size(box))
        n_kp = keypoints.size
        changes: dict[str, Any] = {"box": out[:4], "keypoints": out[4 : 4 + n_kp].reshape(-1, 2)}
        if face.landmarks is not None:
            changes["landmarks"] = out[4 + n_kp :].reshape(-1, 2)
        return dataclasses.replace(face, **changes)
