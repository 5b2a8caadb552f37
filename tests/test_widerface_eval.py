"""WIDER FACE evaluation: the official protocol on hand-computed cases, the official ground truth, and
the ``predict-widerface`` / ``eval-widerface`` commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from conftest import published_detector, shared_path
from hrface.cli.main import main
from hrface.data.detection.samples import DetectionSample
from hrface.data.landmarks.parsing import DatasetError
from hrface.evaluation.landmarks import EvaluationError
from hrface.evaluation.plots import plot_pr_curves
from hrface.evaluation.widerface import (
    LEVELS,
    WiderFaceGroundTruth,
    evaluate_widerface,
    evaluate_widerface_folder,
    format_prediction_file,
    load_widerface_ground_truth,
    read_prediction_file,
    voc_ap,
)


def ground_truth(images: dict[str, list[list[float]]], counted: dict[str, list[int]] | None = None):
    """In-memory ground truth: ``{'EVENT/IMAGE': [[x, y, w, h], ...]}``; ``counted`` gives per image the
    0-based faces that count at every level (default: all)."""
    samples, keep = [], []
    for photo, xywh in images.items():
        b = np.asarray(xywh, np.float64).reshape(-1, 4)
        samples.append(
            DetectionSample(
                image=photo + ".jpg",
                boxes=np.c_[b[:, :2], b[:, :2] + b[:, 2:]],
                photo=photo,
                subset=photo.split("/")[0],
            )
        )
        mask = np.zeros(len(b), bool)
        mask[(counted or {}).get(photo, list(range(len(b))))] = True
        keep.append(mask)
    return WiderFaceGroundTruth(tuple(samples), {lv: tuple(keep) for lv in LEVELS})


def pred(*rows: list[float]) -> np.ndarray:
    return np.asarray(rows, np.float64).reshape(-1, 5)


# ---------------------------------------------------------------- hand-computed cases


def test_one_face_one_perfect_prediction_gives_ap_1() -> None:
    gt = ground_truth({"e/a": [[10, 10, 20, 20]]})
    result = evaluate_widerface(gt, [pred([10, 10, 20, 20, 0.7])])
    # A single score: min == max, every normalised score is 1 (the official code would divide 0 by 0).
    assert result.ap == {"easy": 1.0, "medium": 1.0, "hard": 1.0}
    assert np.all(result.precision["easy"] == 1.0) and np.all(result.recall["easy"] == 1.0)
    assert result.thresholds[0] == pytest.approx(0.999) and result.thresholds[-1] == 0.0


def test_false_positive_scored_above_the_true_positive() -> None:
    gt = ground_truth({"e/a": [[10, 10, 20, 20]]})
    result = evaluate_widerface(gt, [pred([10, 10, 20, 20, 0.5], [200, 200, 20, 20, 0.9])])
    # Normalised scores: FP 1, TP 0.  Thresholds 0.999 … 0.001: only the FP, precision 0, recall 0;
    # threshold 0: both, precision 1/2 at recall 1.  AP = 1 × 1/2.
    assert result.ap["easy"] == pytest.approx(0.5, abs=1e-12)
    assert result.precision["easy"][0] == 0.0 and result.recall["easy"][0] == 0.0
    assert result.precision["easy"][-1] == 0.5 and result.recall["easy"][-1] == 1.0


@pytest.mark.parametrize("second", [[300, 300, 20, 20], [12, 10, 20, 20]], ids=["elsewhere", "duplicate"])
def test_two_faces_with_a_false_positive_in_between(second: list[float]) -> None:
    """Scores 1.0 (face A), 0.8 (a false positive: elsewhere, or a second hit on A), 0.6 (face B):
    normalised 1, 0.5, 0.  Points: recall 1/2 at precision 1, recall 1/2 at 1/2, recall 1 at 2/3;
    AP = 1/2 × 1 + 1/2 × 2/3 = 5/6."""
    gt = ground_truth({"e/a": [[10, 10, 20, 20], [100, 10, 20, 20]]})
    result = evaluate_widerface(gt, [pred([100, 10, 20, 20, 0.6], second + [0.8], [10, 10, 20, 20, 1.0])])
    assert result.ap["hard"] == pytest.approx(5 / 6, abs=1e-12)
    assert result.precision["hard"][[0, 600, 999]] == pytest.approx([1.0, 0.5, 2 / 3])


def test_predictions_on_ignored_faces_are_not_counted() -> None:
    faces = {"e/a": [[10, 10, 20, 20], [100, 10, 20, 20]]}
    gt = ground_truth(faces, counted={"e/a": [0]})  # face 1 is ignored
    on_ignored = pred([100, 10, 20, 20, 0.9], [10, 10, 20, 20, 0.5])
    result = evaluate_widerface(gt, [on_ignored])
    assert result.ap["easy"] == 1.0 and result.faces["easy"] == 1
    # the same top-scored box counts as a false positive when it hits nothing …
    elsewhere = pred([500, 10, 20, 20, 0.9], [10, 10, 20, 20, 0.5])
    assert evaluate_widerface(gt, [elsewhere]).ap["easy"] == pytest.approx(0.5)
    # … and as a find when the face counts
    assert evaluate_widerface(ground_truth(faces), [on_ignored]).ap["easy"] == 1.0


def test_iou_uses_the_official_inclusive_pixel_convention() -> None:
    """GT ``0 0 9 9`` is 10 × 10 pixels.  A prediction ``0 0 9 4`` covers 10 × 5 of them: IoU 0.5, a
    match (with continuous coordinates it would be 4/9 < 0.5); ``0 0 9 3``: IoU 0.4, no match."""
    gt = ground_truth({"e/a": [[0, 0, 9, 9]]})
    assert evaluate_widerface(gt, [pred([0, 0, 9, 4, 1.0])]).ap["easy"] == 1.0
    assert evaluate_widerface(gt, [pred([0, 0, 9, 3, 1.0])]).ap["easy"] == 0.0


def test_voc_ap_envelope_and_nan_precision() -> None:
    assert voc_ap([0.5, 1.0], [1.0, 0.5]) == pytest.approx(0.75)
    assert voc_ap([0.5, 0.5, 1.0], [0.2, 1.0, 0.5]) == pytest.approx(0.75)  # envelope lifts 0.2 to 1
    assert voc_ap([0.0, 0.5], [np.nan, 1.0]) == pytest.approx(0.5)  # no proposals at the top threshold
    assert np.isnan(voc_ap([np.nan], [np.nan]))


# ---------------------------------------------------------------- files


def write_ground_truth(folder: Path, events: dict[str, dict[str, list[list[int]]]], counted: dict) -> None:
    """The official .mat layout: cells per event, cells per image; gt_list with 1-based face indices."""
    names = list(events)

    def cells(values: list) -> np.ndarray:
        out = np.empty((len(values), 1), dtype=object)
        for i, v in enumerate(values):
            out[i, 0] = v
        return out

    scipy.io.savemat(
        folder / "wider_face_val.mat",
        {
            "event_list": cells(names),
            "file_list": cells([cells(list(events[e])) for e in names]),
            "face_bbx_list": cells(
                [cells([np.asarray(b, np.float64).reshape(-1, 4) for b in events[e].values()]) for e in names]
            ),
        },
    )
    for level in LEVELS:
        lists = [
            cells([np.asarray(counted[level].get(f"{e}/{i}", []), np.float64).reshape(-1, 1) for i in events[e]])
            for e in names
        ]
        scipy.io.savemat(folder / f"wider_{level}_val.mat", {"gt_list": cells(lists)})


def test_files_missing_prediction_and_official_mat_layout(tmp_path: Path) -> None:
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    events = {"0--Ev": {"a": [[10, 10, 20, 20], [50, 50, 8, 8]]}, "1--Other": {"b": [[5, 5, 30, 30]]}}
    counted = {
        "easy": {"0--Ev/a": [1]},
        "medium": {"0--Ev/a": [1], "1--Other/b": [1]},
        "hard": {"0--Ev/a": [1, 2], "1--Other/b": [1]},
    }
    write_ground_truth(gt_dir, events, counted)
    gt = load_widerface_ground_truth(gt_dir)
    assert gt.image_ids == ["0--Ev/a", "1--Other/b"]
    assert [gt.faces(lv) for lv in LEVELS] == [1, 2, 3]
    np.testing.assert_array_equal(gt.images[0].boxes, [[10, 10, 30, 30], [50, 50, 58, 58]])

    (pred_dir / "0--Ev").mkdir(parents=True)
    (pred_dir / "0--Ev" / "a.txt").write_text(format_prediction_file("a", [[10.9, 10.2, 30.5, 30.99]], [0.9]))
    result = evaluate_widerface_folder(pred_dir, gt_dir)
    assert result.missing == ["1--Other/b"]  # counted as no detections
    assert result.ap == pytest.approx({"easy": 1.0, "medium": 0.5, "hard": 1 / 3})

    (gt_dir / "wider_hard_val.mat").unlink()
    with pytest.raises(DatasetError, match="no wider_hard_val.mat"):
        load_widerface_ground_truth(gt_dir)
    with pytest.raises(DatasetError, match="none of the 2 prediction files"):
        evaluate_widerface_folder(tmp_path / "gt", gt)  # a folder without EVENT/IMAGE.txt files


def test_prediction_file_format_and_errors(tmp_path: Path) -> None:
    text = format_prediction_file("img", [[-3.7, 2.2, 10.9, 8.0]], [0.123456789])
    assert text == "img\n1\n-3 2 13 6 0.123456789\n"  # int() truncation, w = int(x2) - int(x1)
    path = tmp_path / "p.txt"
    path.write_text(text + "\n")
    np.testing.assert_array_equal(read_prediction_file(path), [[-3, 2, 13, 6, 0.123456789]])
    for body, where in [
        ("img\n2\n1 2 3 4 0.5\n", ":2:"),
        ("img\nx\n", ":2:"),
        ("img\n1\n1 2 3 0.5\n", ":3:"),
        ("img\n1\n1 2 3 4 nan\n", ":3:"),
        ("img\n", "first two lines"),
    ]:
        path.write_text(body)
        with pytest.raises(DatasetError, match=where):
            read_prediction_file(path)


# ---------------------------------------------------------------- the official ground truth


@pytest.fixture(scope="module")
def official() -> WiderFaceGroundTruth:
    return load_widerface_ground_truth(shared_path("data", "widerface", "ground_truth"))


def as_predictions(samples, shift=(0.0, 0.0)) -> list[np.ndarray]:
    """The ground-truth boxes as ``x y w h 1`` predictions, moved by ``shift`` × (w + 1, h + 1)."""
    out = []
    for s in samples:
        xywh = np.c_[s.boxes[:, :2], s.boxes[:, 2:] - s.boxes[:, :2]].astype(np.float64)
        xywh[:, :2] += np.asarray(shift) * (xywh[:, 2:] + 1)
        out.append(np.c_[xywh, np.ones(len(xywh))])
    return out


def test_official_ground_truth_as_predictions(official: WiderFaceGroundTruth) -> None:
    """The GT boxes themselves (score 1) score just under 1, because of two annotation quirks:

    * ``39--Ice_Skating/39_Ice_Skating_iceskiing_39_583`` face 8 has ``w = -2``: with ``x2 < x1`` it
      overlaps nothing, so its own prediction is an unmatched proposal at every level, and it cannot
      be found (it counts at hard);
    * ``21--Festival/21_Festival_Festival_21_604`` faces 65 and 104 are the same box (both hard): both
      predictions take face 65 (first on ties), face 104 is never found and its prediction is a
      proposal that finds nothing.

    Precision and recall are then constant over all thresholds: easy P = 7211/7212, R = 1; medium
    P = 13319/13320, R = 1; hard P = R = 31956/31958; AP = P × R.
    """
    assert len(official) == 3226 and sum(s.num_faces for s in official.images) == 39708
    assert [official.faces(lv) for lv in LEVELS] == [7211, 13319, 31958]
    result = evaluate_widerface(official, as_predictions(official.images))
    assert result.ap["easy"] == pytest.approx(7211 / 7212, abs=1e-12)
    assert result.ap["medium"] == pytest.approx(13319 / 13320, abs=1e-12)
    assert result.ap["hard"] == pytest.approx((31956 / 31958) ** 2, abs=1e-12)
    assert result.missing == [] and result.predictions == 39708


@pytest.fixture(scope="module")
def events_subset(official: WiderFaceGroundTruth) -> WiderFaceGroundTruth:
    """12 events (732 images, 10,013 hard faces) without the two quirky images: a quick, exact subset."""
    events = sorted({s.subset for s in official.images} - {"21--Festival", "39--Ice_Skating"})[:12]
    return official.select_events(events)


def test_subset_perfect_and_degraded_predictions(events_subset: WiderFaceGroundTruth) -> None:
    gt = events_subset
    assert evaluate_widerface(gt, as_predictions(gt.images)).ap == {lv: 1.0 for lv in LEVELS}

    # Drop the predictions of a random 30 % of the faces: precision stays 1, AP = recall ≈ 0.7.
    rng = np.random.default_rng(0)
    kept = [rng.random(s.num_faces) >= 0.3 for s in gt.images]
    dropped = [p[k] for p, k in zip(as_predictions(gt.images), kept, strict=True)]
    result = evaluate_widerface(gt, dropped)
    for lv in LEVELS:
        expected = sum(int((k & m).sum()) for k, m in zip(kept, gt.keep[lv], strict=True)) / gt.faces(lv)
        assert result.ap[lv] == pytest.approx(expected, abs=1e-12)
        assert 0.65 < result.ap[lv] < 0.75

    # Boxes moved by half their size right and down: IoU with their own face 1/7 < 0.5.  A few land
    # on a neighbouring face of similar size in crowds, so AP is tiny rather than exactly 0.
    moved = evaluate_widerface(gt, as_predictions(gt.images, shift=(0.5, 0.5)))
    assert all(moved.ap[lv] < 1e-4 for lv in LEVELS)
    far = evaluate_widerface(gt, as_predictions(gt.images, shift=(1e4, 0.0)))
    assert far.ap == {lv: 0.0 for lv in LEVELS}


def test_subset_false_positives_below_or_above_the_faces(events_subset: WiderFaceGroundTruth) -> None:
    gt = events_subset
    base = evaluate_widerface(gt, as_predictions(gt.images)).ap

    def with_noise(score: float) -> list[np.ndarray]:
        """3 boxes per image that overlap nothing, all with ``score``."""
        return [np.r_[p, [[-5000.0, -5000.0, 30.0, 30.0, score]] * 3] for p in as_predictions(gt.images)]

    # Scored below every face: normalised 0, they only enter at the last threshold: AP unchanged.
    assert evaluate_widerface(gt, with_noise(0.01)).ap == base == {lv: 1.0 for lv in LEVELS}
    # Scored above: the faces enter only at the last threshold, with 3 × 732 false positives.
    above = evaluate_widerface(gt, with_noise(2.0)).ap
    assert above == pytest.approx({lv: gt.faces(lv) / (gt.faces(lv) + 3 * len(gt)) for lv in LEVELS}, abs=1e-12)


# ---------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def sample_predictions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """``hrface predict-widerface`` over a copy of the 3 WIDER train samples plus a corrupt image."""
    samples = shared_path("data", "widerface", "train_samples")
    weights = published_detector()
    root = tmp_path_factory.mktemp("wider")
    images, out = root / "images", root / "pred"
    shutil.copytree(samples / "12--Group", images / "12--Group")
    (images / "12--Group" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code = main(["predict-widerface", str(images), str(out), "--model", str(weights), "--quiet"])
    return samples, out, code


def test_predict_widerface_writes_official_files_and_records_failures(sample_predictions) -> None:
    samples, out, code = sample_predictions
    assert code == 1  # one image failed, the others were processed
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.txt"))
    assert files == [f"12--Group/{p.stem}.txt" for p in sorted((samples / "12--Group").glob("*.jpg"))]
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == 1 and errors[0]["image"].endswith("broken.jpg") and errors[0]["error"]
    first = out / files[0]
    lines = first.read_text().splitlines()
    assert lines[0] == Path(files[0]).stem and int(lines[1]) == len(lines) - 2 > 0
    boxes = read_prediction_file(first)
    assert (np.diff(boxes[:, 4]) <= 0).all() and boxes[:, 4].min() >= 0.02  # best first, threshold 0.02
    assert (boxes[:, :4] == np.round(boxes[:, :4])).all() and (boxes[:, 2:4] >= 0).all()


def test_eval_widerface_command_on_the_samples(sample_predictions, tmp_path: Path, capsys) -> None:
    """Ground truth from the samples' annotated boxes (every face counts at every level): the
    published detector at original size finds most of these large faces."""
    samples, out, _ = sample_predictions
    faces: dict[str, list] = {}
    lines = (samples / "wider_face_train_bbx_gt_samples.txt").read_text().split("\n")
    i = 0
    while i < len(lines) and lines[i].strip():
        n = int(lines[i + 1])
        faces[Path(lines[i]).stem] = [[int(v) for v in row.split()[:4]] for row in lines[i + 2 : i + 2 + n]]
        i += 2 + max(n, 1)
    write_ground_truth(
        tmp_path,
        {"12--Group": faces},
        {lv: {f"12--Group/{k}": range(1, len(v) + 1) for k, v in faces.items()} for lv in LEVELS},
    )
    plot, report = tmp_path / "pr.png", tmp_path / "ap.json"
    code = main(["eval-widerface", str(out), "--gt-dir", str(tmp_path), "--plot", str(plot), "--json", str(report)])
    assert code == 0
    doc = json.loads(report.read_text())
    assert doc["images"] == 3 and doc["missing"] == [] and doc["faces"]["hard"] == sum(map(len, faces.values()))
    assert all(0.8 < doc["ap"][lv] <= 1.0 for lv in LEVELS)
    table = capsys.readouterr().out
    assert "easy" in table and f"{100 * doc['ap']['hard']:.2f}%" in table
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_widerface_user_errors_exit_2(tmp_path: Path, capsys) -> None:
    assert main(["eval-widerface", str(tmp_path), "--gt-dir", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hrface: error: ") and "wider_face_val.mat" in err and len(err.splitlines()) == 1


def test_plot_pr_curves_draws_each_level(tmp_path: Path) -> None:
    r = np.linspace(0, 0.9, 50)
    curves = {"easy": (r, 1 - r**4), "medium": (r * 0.9, 1 - r**2), "hard": (r * 0.7, np.r_[np.nan, (1 - r)[1:]])}
    image = plot_pr_curves(curves, tmp_path / "pr.png", ap={"easy": 0.9, "medium": 0.8, "hard": 0.5})
    assert image.shape == (600, 800, 3) and image.dtype == np.uint8
    assert np.array_equal(cv2.imread(str(tmp_path / "pr.png"), cv2.IMREAD_COLOR), image)
    assert (image == 255).all(axis=2).mean() > 0.5 and (image < 80).all(axis=2).sum() > 1000  # white, dark text
    # the curves' colours (tab10 blue, orange, green in BGR) are all on the figure, and no fourth one
    for bgr in [(180, 119, 31), (14, 127, 255), (44, 160, 44)]:
        assert (np.abs(image.astype(int) - bgr).sum(axis=2) < 30).sum() > 300
    assert (np.abs(image.astype(int) - (40, 39, 214)).sum(axis=2) < 30).sum() < 20
    with pytest.raises(EvaluationError, match="3 recall values but 2 precision"):
        plot_pr_curves({"x": ([0.1, 0.2, 0.3], [1.0, 0.9])}, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()
