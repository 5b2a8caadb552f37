"""Landmark evaluation: normalised errors, FR / AUC / CED, summaries, tables and the CED plot."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from hrface.errors import HrfaceError
from hrface.evaluation import (
    CURVE_COLORS,
    EvaluationError,
    LandmarkMetrics,
    auc,
    ced_curve,
    evaluate_predictions,
    failure_rate,
    found_by_all,
    metrics_table,
    normalised_errors,
    plot_ced,
    render_ced,
    summarize,
)
from hrface.extras import MissingExtraError
from hrface.landmarks.layouts import get_layout

LAYOUT = get_layout(68)
IOD, IPD = 100.0, 60.0  # of the shape below: outer corners 36/45 at x 100 / 200, eye centres at x 120 / 180


def face68() -> np.ndarray:
    """A 68-point GT shape with hand-known eyes: tight box x 40..260, y 120..300."""
    rng = np.random.default_rng(68)
    pts = rng.uniform([60, 140], [240, 280], size=(68, 2))
    left = [(100, 200), (113, 195), (127, 195), (140, 200), (127, 205), (113, 205)]  # 36..41, mean (120, 200)
    right = [(160, 200), (173, 195), (187, 195), (200, 200), (187, 205), (173, 205)]  # 42..47, mean (180, 200)
    pts[36:48] = left + right
    pts[0], pts[8] = (40, 120), (260, 300)
    return pts


def test_inter_ocular_nme_of_a_shift_is_shift_over_iod() -> None:
    gt = np.stack([face68(), face68() * 2.0])  # second face twice as big: same normalised error for twice the shift
    pred = gt + np.array([[[3.0, 4.0]], [[6.0, 8.0]]])
    assert LAYOUT.interocular(gt[0]) == pytest.approx(IOD)
    np.testing.assert_allclose(normalised_errors(pred, gt, "inter-ocular"), [5 / IOD, 5 / IOD], rtol=1e-12)
    np.testing.assert_allclose(normalised_errors(pred, gt, "inter_ocular", layout=LAYOUT), 0.05, rtol=1e-12)


def test_inter_pupil_uses_eye_centres() -> None:
    gt = face68()[None]
    pred = gt + [0.0, 5.0]
    np.testing.assert_allclose(normalised_errors(pred, gt, "inter-pupil"), [5 / IPD], rtol=1e-12)
    # COFW has annotated pupils (16, 17): those define the distance, not the eye contours
    cofw = np.random.default_rng(1).uniform(0, 50, size=(1, 29, 2))
    cofw[0, 16], cofw[0, 17] = (10, 10), (10, 50)
    np.testing.assert_allclose(normalised_errors(cofw + [2.0, 0.0], cofw, "inter-pupil"), [2 / 40], rtol=1e-12)


def test_box_normalisation_given_box_or_tight_gt_box() -> None:
    gt = face68()[None]
    pred = gt + [3.0, 4.0]
    boxes = np.array([[50.0, 100.0, 250.0, 300.0]])  # 200 x 200
    np.testing.assert_allclose(normalised_errors(pred, gt, "box", boxes=boxes), [5 / 200], rtol=1e-12)
    tight = math.sqrt(220 * 180)
    np.testing.assert_allclose(normalised_errors(pred, gt, "box"), [5 / tight], rtol=1e-12)
    # box normalisation needs no layout: works for any point count
    pts = np.array([[[0.0, 0.0], [4.0, 0.0], [4.0, 9.0]]])
    np.testing.assert_allclose(normalised_errors(pts + [1.2, 0], pts, "box"), [1.2 / 6], rtol=1e-12)


def test_visibility_restricts_the_mean() -> None:
    gt = face68()[None]
    pred = gt.copy()
    pred[0, :10] += [6.0, 8.0]  # points 0..9 are off by 10 px, the rest exact
    pred[0, 60] = np.nan  # an invisible point without a prediction does not make the face missed
    visible = np.ones((1, 68), dtype=bool)
    visible[0, 60] = False
    np.testing.assert_allclose(normalised_errors(pred, gt, visible=visible), [10 * 10 / 67 / IOD], rtol=1e-12)
    visible[0, :10] = False
    np.testing.assert_allclose(normalised_errors(pred, gt, visible=visible), [0.0], atol=1e-15)
    visible[0, 10:] = False
    visible[0, :10] = True
    np.testing.assert_allclose(normalised_errors(pred, gt, visible=visible), [10 / IOD], rtol=1e-12)


def test_missed_face_is_inf_failure_and_counted() -> None:
    gt = np.stack([face68()] * 3)
    pred = gt + [[[3.0, 4.0]], [[0.0, 0.0]], [[0.0, 2.0]]]
    pred[1] = np.nan  # missed detection
    errors = normalised_errors(pred, gt)
    assert errors[0] == pytest.approx(0.05) and math.isinf(errors[1]) and errors[2] == pytest.approx(0.02)
    m = summarize(errors)
    assert m.count == 3 and m.missed == 1
    assert m.nme == pytest.approx(0.035)  # mean of the found faces only
    assert m.fr_008 == pytest.approx(1 / 3) and m.fr_010 == pytest.approx(1 / 3)
    assert m.auc_008 == pytest.approx(((0.08 - 0.05) + (0.08 - 0.02)) / 3 / 0.08)
    # one non-finite (visible) point is enough to count the face as missed
    pred[2, 5, 0] = np.inf
    assert math.isinf(normalised_errors(pred, gt)[2])
    all_missed = summarize([np.inf, np.inf])
    assert math.isnan(all_missed.nme) and all_missed.to_dict()["nme"] is None and all_missed.fr_010 == 1.0


def test_fr_and_auc_by_hand() -> None:
    e = [0.02, 0.04, 0.12]
    assert failure_rate(e, 0.08) == pytest.approx(1 / 3)
    # integral of the step CED on [0, 0.08]: 1/3 on [0.02, 0.04), 2/3 on [0.04, 0.08] → (0.02/3 + 0.08/3) / 0.08
    assert auc(e, 0.08) == pytest.approx(5 / 12, abs=1e-15)
    assert auc(e, 0.10) == pytest.approx((0.08 + 0.06) / 3 / 0.10, abs=1e-15)
    assert failure_rate([0.08, 0.0800001], 0.08) == 0.5  # "failure" means strictly above the threshold
    assert auc([0.0, 0.0], 0.1) == 1.0 and auc([0.5, np.inf], 0.1) == 0.0
    assert math.isnan(auc([], 0.1)) and math.isnan(failure_rate([], 0.1))
    x, f = ced_curve(e, 0.08, num=5)
    np.testing.assert_allclose(x, [0, 0.02, 0.04, 0.06, 0.08])
    np.testing.assert_allclose(f, [0, 1 / 3, 2 / 3, 2 / 3, 2 / 3])


def test_auc_matches_brute_force_integral() -> None:
    rng = np.random.default_rng(0)
    e = np.concatenate([rng.gamma(3, 0.015, 997), [np.inf, 0.0, 0.08]])
    t, m = 0.08, 1_000_000
    mids = (np.arange(m) + 0.5) * (t / m)  # midpoint rule on a 1e6-cell grid of [0, t]
    brute = np.mean(np.searchsorted(np.sort(e), mids, side="right") / e.size)
    assert abs(auc(e, t) - brute) < 1e-6
    assert abs(auc(e, t, steps=100_001) - auc(e, t)) < 1e-4  # the trapezoid variant converges to it


def test_found_by_all_keeps_the_faces_every_run_found() -> None:
    ours, theirs = [0.03, math.inf, 0.05, 0.02], [0.04, 0.06, math.inf, 0.01]
    assert found_by_all(ours, theirs).tolist() == [True, False, False, True]
    assert found_by_all(ours).tolist() == [True, False, True, True]
    both = found_by_all(ours, theirs)
    table = metrics_table({"hrface": np.array(ours)[both], "peer": np.array(theirs)[both]}, pooled=False)
    assert table.startswith("| model |") and "| all |" not in table and "| peer | 2 | 0 | 2.50 |" in table
    with pytest.raises(HrfaceError, match="same faces"):
        found_by_all(ours, theirs[:3])


def test_metrics_table_rows() -> None:
    groups = {"common": np.array([0.02, 0.04]), "challenging": np.array([0.06, 0.12, np.inf])}
    table = metrics_table(groups)
    lines = table.strip().splitlines()
    assert lines[0].startswith("| subset | faces | missed | NME (%)") and len(lines) == 5
    rows = {cells[0]: cells[1:] for cells in ([c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:])}
    assert list(rows) == ["common", "challenging", "all"]
    # faces, missed, NME, FR@0.08, FR@0.10, AUC@0.08, AUC@0.10 (percent)
    assert rows["common"] == ["2", "0", "3.00", "0.00", "0.00", "62.50", "70.00"]
    assert rows["challenging"] == ["3", "1", "9.00", "66.67", "66.67", "8.33", "13.33"]
    # all five: AUC@0.08 = (0.06 + 0.04 + 0.02) / 5 / 0.08, AUC@0.10 = (0.08 + 0.06 + 0.04) / 5 / 0.10
    assert rows["all"] == ["5", "1", "6.00", "40.00", "40.00", "30.00", "36.00"]
    assert metrics_table({"only": [np.inf]}).strip().splitlines()[2].split("|")[4].strip() == "n/a"


def test_evaluate_predictions_is_json_ready() -> None:
    gt = np.stack([face68()] * 4)
    pred = gt + [[[3.0, 4.0]], [[0.0, 1.0]], [[0.0, 2.0]], [[0.0, 0.0]]]
    pred[3] = np.nan
    boxes = np.tile([50.0, 100.0, 250.0, 300.0], (4, 1))
    out = evaluate_predictions(pred, gt, LAYOUT, ["common", "challenging", "common", "challenging"], boxes=boxes)
    json.dumps(out, allow_nan=False)
    assert (out["layout"], out["num_points"], out["count"], out["missed"]) == ("300W", 68, 4, 1)
    io = out["metrics"]["inter-ocular"]
    assert io["all"]["nme"] == pytest.approx((0.05 + 0.01 + 0.02) / 3) and io["all"]["missed"] == 1
    assert list(io["subsets"]) == ["common", "challenging"]
    assert io["subsets"]["common"]["nme"] == pytest.approx(0.035) and io["subsets"]["common"]["count"] == 2
    assert io["subsets"]["challenging"]["fr_010"] == 0.5
    assert out["metrics"]["inter-pupil"]["subsets"]["challenging"]["nme"] == pytest.approx(1 / IPD)
    assert out["metrics"]["box"]["all"]["nme"] == pytest.approx((5 + 1 + 2) / 3 / 200)
    plain = evaluate_predictions(pred[:3], gt[:3], None, None)
    assert plain["metrics"]["inter-ocular"]["subsets"] == {} and plain["missed"] == 0
    assert LandmarkMetrics(**plain["metrics"]["box"]["all"]).count == 3


def test_bad_input_is_reported() -> None:
    gt = face68()[None]
    with pytest.raises(EvaluationError, match="unknown normalisation"):
        normalised_errors(gt, gt, "bbox")
    with pytest.raises(ValueError, match="same shape"):
        normalised_errors(gt[:, :60], gt)
    with pytest.raises(HrfaceError, match="gt contains NaN"):
        normalised_errors(gt, gt * np.nan)
    with pytest.raises(EvaluationError, match="no visible point"):
        normalised_errors(gt, gt, visible=np.zeros((1, 68), bool))
    with pytest.raises(EvaluationError, match="zero inter-ocular"):
        normalised_errors(gt, np.zeros_like(gt))
    with pytest.raises(EvaluationError, match="one label per face"):
        evaluate_predictions(gt, gt, LAYOUT, ["a", "b"])
    with pytest.raises(EvaluationError, match="not NaN"):
        summarize([0.1, np.nan])


def colour_pixels(image: np.ndarray, bgr: tuple[int, int, int], tol: int = 30) -> int:
    """How many pixels of ``image`` are within ``tol`` (sum of channel differences) of ``bgr``."""
    return int((np.abs(image.astype(int) - bgr).sum(axis=2) < tol).sum())


def test_plot_ced_writes_a_png(tmp_path) -> None:
    rng = np.random.default_rng(3)
    good, bad = rng.gamma(4, 0.01, 300), rng.gamma(4, 0.02, 300)
    path = tmp_path / "plots" / "ced.png"
    returned = plot_ced({"good": good, "bad": np.append(bad, np.inf)}, path, threshold=0.10, title="CED test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image.shape == (600, 800, 3) and returned.dtype == np.uint8 and np.array_equal(image, returned)
    assert sorted(p.name for p in path.parent.iterdir()) == ["ced.png"]  # no temporary file left
    assert (image == 255).all(axis=2).mean() > 0.5  # a white figure ...
    assert (image < 80).all(axis=2).sum() > 1000  # ... with dark text, ticks and frame
    for bgr in CURVE_COLORS[:2]:  # each curve in its tab10 colour (line and legend)
        assert colour_pixels(image, bgr) > 300
    assert colour_pixels(image, CURVE_COLORS[2]) < 20  # and no third
    other = plot_ced({"good": good, "bad": bad * 0.5}, tmp_path / "other.png", threshold=0.10, title="CED test")
    assert np.count_nonzero(np.abs(other.astype(int) - image).sum(axis=2)) > 500
    small = plot_ced({"x": [0.02, 0.04, 0.12]}, tmp_path / "small.jpg", threshold=0.08, size=(641, 481))
    assert small.shape == (481, 641, 3) and cv2.imread(str(tmp_path / "small.jpg")).shape == (481, 641, 3)


def test_render_ced_takes_any_names_and_rejects_bad_input() -> None:
    names = {"Ünïcode — $x$ ≤ 5 " * 4: [0.01, 0.02], "a_b^c {d}": [0.03, np.inf]}  # no mathtext, no crash
    image = render_ced(names, 0.08, title="$not math$", xlabel="NME / IOD")
    assert image.shape == (600, 800, 3) and colour_pixels(image, CURVE_COLORS[1]) > 100
    with pytest.raises(EvaluationError, match="at least one curve"):
        render_ced({})
    with pytest.raises(EvaluationError, match="no errors"):
        render_ced({"empty": []})
    with pytest.raises(EvaluationError, match="at least 320x240"):
        render_ced({"x": [0.01]}, size=(200, 100))


def test_plots_without_matplotlib_name_the_plot_extra(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError) as info:
        plot_ced({"x": [0.01, 0.02]}, tmp_path / "ced.png")
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "drawing the CED plot" in message
    assert 'pip install "hrface[plot]"' in message and "matplotlib is not installed" in message
    assert not (tmp_path / "ced.png").exists()


def test_importing_the_plot_modules_does_not_import_matplotlib() -> None:
    code = (
        "import sys, hrface.evaluation, hrface.evaluation.plots, hrface.evaluation.training_plot, hrface.cli.main\n"
        "assert 'matplotlib' not in sys.modules, sorted(m for m in sys.modules if m.startswith('matplotlib'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_ground_truth_boxes_default_to_the_detector_convention() -> None:
    from hrface.data.landmarks.detector_boxes import WIDER_BOX_FROM_POINTS
    from hrface.data.landmarks.samples import LandmarkSample
    from hrface.evaluation.landmark_runs import ground_truth_boxes

    points = np.stack(np.meshgrid(np.linspace(100, 200, 17), [150.0, 250.0]), -1).reshape(-1, 2)[:68]
    points = np.resize(points, (68, 2))
    sample = LandmarkSample(image="x.jpg", points=points)
    boxed = LandmarkSample(image="x.jpg", points=points, box=np.array([1.0, 2.0, 3.0, 4.0]))
    unboxed, own = ground_truth_boxes([sample, boxed])
    np.testing.assert_allclose(unboxed, WIDER_BOX_FROM_POINTS(points))
    assert unboxed[1] < 150.0 and unboxed[3] - unboxed[1] > 100.0  # taller than the tight box, reaches the forehead
    np.testing.assert_allclose(own, [1.0, 2.0, 3.0, 4.0])
