"""The multi-face tracker (hrface.video.tracking): optimal assignment, stable ids through motion, crossings and
occlusion gaps, new ids after long gaps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hrface.ops import box_iou_numpy
from hrface.video.tracking import FaceTracker, linear_assignment


def square(x: float, y: float, size: float = 40.0) -> np.ndarray:
    return np.array([x, y, x + size, y + size], dtype=np.float64)


def test_linear_assignment_is_optimal() -> None:
    rng = np.random.default_rng(0)
    for trial in range(200):
        n, m = (int(v) for v in rng.integers(1, 6, 2))
        cost = rng.random((n, m))
        if trial % 3 == 0:
            cost = cost.round(1)  # ties
        rows, cols = linear_assignment(cost)
        assert len(rows) == min(n, m) == len(set(rows.tolist())) == len(set(cols.tolist()))
        assert np.all(np.diff(rows) > 0)
        if n <= m:
            best = min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
        else:
            best = min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))
        assert cost[rows, cols].sum() == pytest.approx(best, abs=1e-12)
    # greedy would take the 0.1 pair and pay 0.1 + 1.0; the optimum is 0.2 + 0.3
    rows, cols = linear_assignment(np.array([[0.1, 0.2], [0.3, 1.0]]))
    assert cols.tolist() == [1, 0]
    assert linear_assignment(np.zeros((0, 3)))[0].size == 0


def test_the_tracker_uses_the_ops_iou_in_continuous_coordinates() -> None:
    iou = box_iou_numpy(np.array([square(0, 0), square(20, 0)]), np.array([square(0, 0), square(100, 100)]))
    np.testing.assert_allclose(iou, [[1.0, 0.0], [1 / 3, 0.0]])  # offset 0: area w·h, not (w + 1)·(h + 1)
    touching = box_iou_numpy(np.array([[0.0, 0, 10, 10]]), np.array([[10.0, 0, 20, 10], [5.0, 5, 5, 5]]))
    np.testing.assert_array_equal(touching, [[0.0, 0.0]])  # shared edge and empty box: no overlap, no NaN


def test_fast_motion_keeps_its_id_thanks_to_the_velocity_model() -> None:
    steps = np.minimum(5.0 * np.arange(1, 20), 60.0)  # accelerating to 60 px per frame, 1.5× the face's size
    xs = np.concatenate([[0.0], np.cumsum(steps)])
    tracker = FaceTracker()
    assert [tracker.update(square(x, 50)[None], i / 30).tolist() for i, x in enumerate(xs)] == [[0]] * 20
    # without the motion model, once the steps exceed the face's size, each frame starts a new track
    static = FaceTracker(velocity_weight=0.0)
    assert len({static.update(square(x, 50)[None]).item() for x in xs}) > 5


def test_crossing_faces_with_one_hidden_keep_their_ids() -> None:
    tracker = FaceTracker(max_lost=15)
    history = []
    for i in range(25):
        a, b = square(10 * i, 100), square(240 - 10 * i, 108)  # they meet at frame 12
        boxes = [a] if 9 <= i <= 15 else [a, b]  # b passes behind a for 7 frames
        history.append((i, tracker.update(np.array(boxes), i / 30).tolist()))
    assert history[0][1] == [0, 1]
    for i, ids in history:
        assert ids[0] == 0, (i, ids)  # a keeps 0 through the crossing
        if len(ids) == 2:
            assert ids[1] == 1, (i, ids)  # b comes back out on the other side as 1
    assert tracker.next_id == 2


@pytest.mark.parametrize("gap,same_id", [(5, True), (15, True), (16, False)])
def test_occlusion_gaps_up_to_max_lost_keep_the_id(gap: int, same_id: bool) -> None:
    tracker = FaceTracker(max_lost=15)
    for i in range(10):
        assert tracker.update(square(100 + 3 * i, 80)[None], i / 30).tolist() == [0]
    for i in range(10, 10 + gap):
        assert tracker.update(np.zeros((0, 4)), i / 30).size == 0
    assert tracker.active_ids == ({0} if same_id else set())
    i = 10 + gap
    ids = tracker.update(square(100 + 3 * i, 80)[None], i / 30).tolist()  # where the motion model expects it
    assert ids == ([0] if same_id else [1])


def test_a_face_found_again_nearby_without_overlap_keeps_its_id() -> None:
    tracker = FaceTracker(max_lost=15, min_iou=0.3)
    for i in range(5):
        tracker.update(square(100, 100)[None], i / 30)
    for i in range(5, 9):
        tracker.update(np.zeros((0, 4)), i / 30)
    shifted = square(126, 100)  # IoU 0.21 with the last box, centre 0.65 face sizes away
    assert box_iou_numpy(shifted, square(100, 100)).item() < 0.3
    assert tracker.update(shifted[None], 9 / 30).tolist() == [0]
    far = FaceTracker(max_lost=15)
    far.update(square(100, 100)[None], 0.0)
    far.update(np.zeros((0, 4)), 1 / 30)
    assert far.update(square(200, 100)[None], 2 / 30).tolist() == [1]  # 2.5 face sizes away: another face


def test_faces_moving_apart_keep_distinct_ids_and_ids_are_deterministic() -> None:
    def run() -> list[list[int]]:
        tracker = FaceTracker()
        out = []
        for i in range(30):
            boxes = np.array([square(200 - 6 * i, 100), square(230 + 6 * i, 104), square(400, 300 + 0 * i, 20)])
            out.append(tracker.update(boxes, i / 30).tolist())
        return out

    ids = run()
    assert ids == [[0, 1, 2]] * 30  # new ids from 0 in detection order, kept while the faces separate
    assert run() == ids
    tracker = FaceTracker()
    tracker.update(np.array([square(0, 0), square(100, 0)]))
    assert tracker.update(np.array([square(100, 0), square(0, 0)])).tolist() == [1, 0]  # order does not matter


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="max_lost"):
        FaceTracker(max_lost=-1)
    with pytest.raises(ValueError, match="min_iou"):
        FaceTracker(min_iou=0.0)
