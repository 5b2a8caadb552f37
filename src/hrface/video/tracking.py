"""Multi-face tracking by box overlap: stable integer ``track_id`` s across the frames of a video.

Each track keeps its last matched box (``x1, y1, x2, y2`` pixels) and a constant-velocity estimate of it
(pixels per second, an exponential average of the measured box motion), and is *predicted* to where that
velocity takes it at the new frame's time, so fast motion still overlaps.  Every frame:

1. **Overlap matching**: detections are assigned to tracks by the Hungarian algorithm (optimal, pure numpy,
   :func:`linear_assignment`) on the cost ``1 − IoU(predicted track box, detection box)``
   (:func:`hrface.ops.box_iou_numpy`, continuous coordinates: ``offset=0``); pairs with an IoU
   below ``min_iou`` are not matched.
2. **Proximity matching**: a track and a detection both left over are matched when the detection's centre lies
   within ``reacquire_distance`` × the track's size (√(w·h)) of the predicted centre and the sizes differ by
   less than 2×, nearest pair first — a face that reappears near where it vanished keeps its id even without
   overlap, and so does a face that jumps before its velocity is known (its second frame).
3. Unmatched detections start new tracks, with ids 0, 1, 2, … in order of creation (detection order within a
   frame); tracks unmatched for more than ``max_lost`` consecutive frames are dropped and their ids never
   come back.

Everything is deterministic (no randomness; ties resolve by index).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ops import box_iou_numpy

__all__ = ["FaceTracker", "Track", "linear_assignment"]


def linear_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment of a (N, M) cost matrix (Hungarian algorithm with potentials,
    O(min(N, M)² · max(N, M))).  Returns ``(rows, cols)``: ``min(N, M)`` matched index pairs, rows ascending.
    Same result as ``scipy.optimize.linear_sum_assignment`` up to ties."""
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {c.shape}")
    transposed = c.shape[0] > c.shape[1]
    if transposed:
        c = c.T
    n, m = c.shape
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, np.int64)  # owner[j]: 1-based row assigned to column j (0: none); column 0 is virtual
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used[1:]
            reduced = c[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv[1:])
            minv[1:][better] = reduced[better]
            way[1:][better] = j0
            candidates = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(candidates)) + 1
            delta = candidates[j1 - 1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[1:][free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # flip the augmenting path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.nonzero(owner[1:])[0]
    rows = owner[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows, kind="stable")
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


@dataclass
class Track:
    """One tracked face.

    Attributes:
        track_id: its id (0, 1, 2, … in order of creation).
        box: (4,) last matched box ``x1, y1, x2, y2`` (pixels).
        time: time of the last match (seconds, or frame steps when the tracker is given no times).
        velocity: (4,) box velocity (pixels per second / per step), zero until the second match.
        lost: consecutive frames without a match (0 when matched in the latest frame).
        hits: frames matched so far.
    """

    track_id: int
    box: np.ndarray
    time: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    lost: int = 0
    hits: int = 1

    def predict(self, time: float) -> np.ndarray:
        """The box at ``time`` under constant velocity."""
        return self.box + self.velocity * (time - self.time)


class FaceTracker:
    """Assign stable track ids to per-frame face boxes (see the module docstring for the method).

    >>> tracker = FaceTracker(max_lost=15)
    >>> ids = tracker.update(boxes, time_s)   # (N,) int: the track id of each box, in input order

    Args:
        max_lost: frames (calls to :meth:`update`) a track may go unmatched and still get its id back;
            the default 15 is half a second at 30 fps.
        min_iou: least IoU between a track's predicted box and a detection for an overlap match.
        reacquire_distance: how far (in track sizes √(w·h)) from a track's predicted centre a face without
            overlap may be found (a reappearing or jumping face); 0 matches by overlap only.
        velocity_weight: weight of the newest measured velocity in the exponential average (1: last
            measurement only; 0: no motion model, tracks predicted where they were last seen).
    """

    def __init__(
        self,
        max_lost: int = 15,
        min_iou: float = 0.3,
        reacquire_distance: float = 1.0,
        velocity_weight: float = 0.5,
    ) -> None:
        if max_lost < 0 or not 0 < min_iou <= 1 or reacquire_distance < 0 or not 0 <= velocity_weight <= 1:
            raise ValueError(
                "FaceTracker needs max_lost >= 0, 0 < min_iou <= 1, reacquire_distance >= 0 and "
                f"0 <= velocity_weight <= 1; got {max_lost}, {min_iou}, {reacquire_distance}, {velocity_weight}"
            )
        self.max_lost = int(max_lost)
        self.min_iou = float(min_iou)
        self.reacquire_distance = float(reacquire_distance)
        self.velocity_weight = float(velocity_weight)
        self.tracks: list[Track] = []
        self.next_id = 0
        self._steps = 0

    @property
    def active_ids(self) -> set[int]:
        """Ids of the tracks still kept (matched in the latest frame or lost for at most ``max_lost`` frames)."""
        return {track.track_id for track in self.tracks}

    def reset(self) -> None:
        """Forget every track; ids start again from 0."""
        self.tracks, self.next_id, self._steps = [], 0, 0

    def update(self, boxes: np.ndarray, time_s: float | None = None) -> np.ndarray:
        """Match one frame's boxes ((N, 4) ``x1, y1, x2, y2`` pixels) to the tracks; returns their (N,) ids.

        ``time_s`` (seconds, increasing) scales the motion model; without it every call is one time step.
        """
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        now = float(self._steps if time_s is None else time_s)
        self._steps += 1
        ids = np.full(len(boxes), -1, np.int64)
        predicted = np.array([t.predict(now) for t in self.tracks]).reshape(-1, 4)
        matched_tracks: set[int] = set()
        if len(boxes) and self.tracks:
            iou = box_iou_numpy(predicted, boxes, offset=0.0)
            rows, cols = linear_assignment(1.0 - iou)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                if iou[r, c] >= self.min_iou:
                    self._match(r, c, boxes, now, ids, matched_tracks)
            self._reacquire(predicted, boxes, now, ids, matched_tracks)
        for c in np.nonzero(ids < 0)[0].tolist():
            self.tracks.append(Track(self.next_id, boxes[c].copy(), now))
            ids[c] = self.next_id
            matched_tracks.add(len(self.tracks) - 1)
            self.next_id += 1
        kept = []
        for index, track in enumerate(self.tracks):
            if index not in matched_tracks:
                track.lost += 1
            if track.lost <= self.max_lost:
                kept.append(track)
        self.tracks = kept
        return ids

    def _match(self, r: int, c: int, boxes: np.ndarray, now: float, ids: np.ndarray, matched: set[int]) -> None:
        track = self.tracks[r]
        dt = now - track.time
        if dt > 0:
            measured = (boxes[c] - track.box) / dt
            w = self.velocity_weight if track.hits > 1 else 1.0
            track.velocity = w * measured + (1.0 - w) * track.velocity
        track.box, track.time = boxes[c].copy(), now
        track.lost, track.hits = 0, track.hits + 1
        ids[c] = track.track_id
        matched.add(r)

    def _reacquire(
        self, predicted: np.ndarray, boxes: np.ndarray, now: float, ids: np.ndarray, matched: set[int]
    ) -> None:
        """Match leftover tracks to leftover detections by centre distance (nearest pair first)."""
        if self.reacquire_distance <= 0:
            return
        lost = [r for r in range(len(self.tracks)) if r not in matched]
        free = np.nonzero(ids < 0)[0]
        if not lost or not len(free):
            return
        pred = predicted[lost]
        size_t = np.sqrt(np.clip(pred[:, 2:] - pred[:, :2], 1e-6, None).prod(axis=1))
        size_d = np.sqrt(np.clip(boxes[free, 2:] - boxes[free, :2], 1e-6, None).prod(axis=1))
        centre_t = (pred[:, :2] + pred[:, 2:]) / 2
        centre_d = (boxes[free, :2] + boxes[free, 2:]) / 2
        dist = np.linalg.norm(centre_t[:, None] - centre_d[None], axis=2) / size_t[:, None]
        ratio = size_d[None, :] / size_t[:, None]
        dist[(dist > self.reacquire_distance) | (ratio < 0.5) | (ratio > 2.0)] = np.inf
        while np.isfinite(dist).any():
            i, j = np.unravel_index(int(np.argmin(dist)), dist.shape)
            self._match(lost[i], int(free[j]), boxes, now, ids, matched)
            dist[i, :] = np.inf
            dist[:, j] = np.inf
