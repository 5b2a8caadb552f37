"""The One Euro filter (hrface.video.smoothing): noise reduction, bounded lag, speed adaptation, scale invariance."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from hrface.runtime.faces import Face
from hrface.video.smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF, FaceSmoother, OneEuroFilter, face_size

FPS = 30.0


def run(f: OneEuroFilter, signal: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Filter ``signal`` (frames, ...) sampled at FPS."""
    return np.stack([f(x, i / FPS, scale=scale) for i, x in enumerate(signal)])


def test_noise_on_a_constant_is_cut_by_a_large_factor() -> None:
    rng = np.random.default_rng(0)
    noisy = 50.0 + rng.normal(0.0, 1.0, (300, 200))
    plain = run(OneEuroFilter(min_cutoff=1.0, beta=0.0), noisy)[30:]
    assert noisy[30:].var(axis=0).mean() / plain.var(axis=0).mean() > 8  # theory at 1 Hz, 30 fps: ~10.5
    assert abs(plain.mean() - 50.0) < 0.05
    # the defaults on landmark-like noise (0.5 px on a 200-px face): the speed term raises the cutoff a little
    small = 100.0 + rng.normal(0.0, 0.5, (300, 136))
    smoothed = run(OneEuroFilter(), small, scale=200.0)[30:]
    assert small[30:].var(axis=0).mean() / smoothed.var(axis=0).mean() > 4
    # frame-to-frame motion (what the eye sees as jitter) drops even more
    assert np.abs(np.diff(small[30:], axis=0)).mean() / np.abs(np.diff(smoothed, axis=0)).mean() > 4


def test_a_ramp_lags_by_a_bounded_amount() -> None:
    speed, cutoff = 10.0, 1.0  # px/s, Hz
    t = np.arange(120) / FPS
    out = run(OneEuroFilter(min_cutoff=cutoff, beta=0.0), speed * t[:, None])
    lag = speed * t[-1] - out[-1, 0]
    tau = 1.0 / (2 * math.pi * cutoff)
    # the discrete filter's steady-state lag is speed · dt · (1 − α) / α = speed · tau
    assert lag == pytest.approx(speed * tau, rel=0.05)
    assert np.all(np.diff(out[:, 0]) > 0)  # follows monotonically, never overshoots
    assert np.all(out[:, 0] <= speed * t + 1e-9)


def test_speed_raises_the_cutoff_so_fast_motion_lags_less() -> None:
    speed, scale = 200.0, 100.0  # px/s, a 100-px face crossing 2 face sizes per second
    signal = speed * (np.arange(60) / FPS)[:, None]
    lag_still = signal[-1, 0] - run(OneEuroFilter(1.0, beta=0.0), signal, scale)[-1, 0]
    lag_adaptive = signal[-1, 0] - run(OneEuroFilter(1.0, beta=DEFAULT_BETA), signal, scale)[-1, 0]
    assert lag_still > 25.0
    assert lag_adaptive < 0.2 * lag_still


def test_speeds_are_normalised_by_the_face_size() -> None:
    rng = np.random.default_rng(1)
    path = np.cumsum(rng.normal(0.0, 0.02, (90, 10)), axis=0) + np.linspace(0, 0.5, 90)[:, None]
    small = run(OneEuroFilter(), 40.0 * path, scale=40.0)
    large = run(OneEuroFilter(), 400.0 * path, scale=400.0)
    np.testing.assert_allclose(large, 10.0 * small, rtol=1e-9, atol=1e-9)
    # without normalisation the large face would be followed much more closely (its speeds look 10× higher)
    unnormalised = run(OneEuroFilter(), 400.0 * path, scale=40.0)
    assert np.abs(unnormalised - 400 * path).mean() < 0.8 * np.abs(large - 400 * path).mean()


def test_first_sample_repeated_times_and_shape_changes() -> None:
    f = OneEuroFilter()
    np.testing.assert_array_equal(f([1.0, 2.0], 0.0), [1.0, 2.0])
    second = f([3.0, 4.0], 0.1)
    assert 1.0 < second[0] < 3.0
    np.testing.assert_array_equal(f([9.0, 9.0], 0.1), second)  # same time stamp: nothing learnt
    np.testing.assert_array_equal(f([np.nan, 9.0], 0.2), second)  # a broken sample is ignored
    np.testing.assert_array_equal(f([5.0, 6.0, 7.0], 0.3), [5.0, 6.0, 7.0])  # another shape starts over
    with pytest.raises(ValueError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0)
    assert DEFAULT_MIN_CUTOFF > 0


@dataclass
class ExtendedFace(Face):
    pose: tuple[float, float, float] | None = None


def test_face_smoother_smooths_geometry_and_passes_the_rest_through() -> None:
    smoother = FaceSmoother(min_cutoff=1.0, beta=0.0)
    base = ExtendedFace(
        box=np.array([100.0, 100.0, 200.0, 220.0]),
        score=0.9,
        keypoints=np.full((5, 2), 150.0),
        landmarks=np.full((68, 2), 150.0),
        landmark_scores=np.ones(68),
        pose=(1.0, 2.0, 3.0),
    )
    assert face_size(base.box) == pytest.approx(math.sqrt(100 * 120))
    first = smoother(base, 0.0)
    moved = ExtendedFace(base.box + 10, 0.5, base.keypoints + 10, base.landmarks + 10, base.landmark_scores, (4, 5, 6))
    second = smoother(moved, 1 / FPS)
    assert type(second) is ExtendedFace and second.pose == (4, 5, 6) and second.score == 0.5
    np.testing.assert_array_equal(first.box, base.box)
    for name in ("box", "keypoints", "landmarks"):
        step = getattr(second, name) - getattr(base, name)
        assert np.all((step > 0) & (step < 10)), name  # part of the way, every value
    assert second.landmarks.shape == (68, 2) and second.keypoints.shape == (5, 2)
    np.testing.assert_array_equal(moved.box, base.box + 10)  # the input is not modified
    without = smoother(ExtendedFace(base.box, 0.9, base.keypoints), 2 / FPS)  # landmarks vanish: starts over
    assert without.landmarks is None
    np.testing.assert_array_equal(without.box, base.box)
