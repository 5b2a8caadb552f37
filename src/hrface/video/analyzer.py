"""Face analysis of videos: detection and landmarks per frame, tracking ids, temporal smoothing.

>>> from hrface.video import VideoAnalyzer, read_frames
>>> va = VideoAnalyzer()                                   # the shipped models, smoothing on
>>> for index, time_s, faces in va.track(read_frames("clip.mp4")):
...     for face in faces:
...         face.track_id, face.box, face.landmarks       # smoothed, pixels of the frame

For the command line, :func:`video_records` yields one JSON-ready record per analysed frame.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..geometry.pose import Pose, face_pose, rotation_from_angles
from ..io.image import to_bgr
from ..io.records import frame_record
from ..runtime.analyzer import FaceAnalyzer
from ..runtime.faces import Face
from .follow import DEFAULT_DETECT_EVERY, DEFAULT_MIN_CONFIDENCE, FaceFollower
from .reader import Source, VideoSource
from .smoothing import DEFAULT_BETA, DEFAULT_D_CUTOFF, DEFAULT_MIN_CUTOFF, FaceSmoother
from .tracking import FaceTracker
from .writer import VideoWriter

__all__ = ["TrackedFace", "VideoAnalyzer", "recorded_face", "video_records"]

Recorded = Mapping[int, Sequence[Mapping[str, Any]]]
"""The faces of already recorded frames, by frame index (``record["faces"]`` of :func:`video_records`)."""


@dataclass
class TrackedFace(Face):
    """A :class:`~hrface.runtime.faces.Face` of a video frame with its ``track_id`` (int, stable while the face
    stays in view; 0, 1, 2, … in order of first appearance).  ``to_dict()`` adds ``"track_id"`` first."""

    track_id: int = -1

    @classmethod
    def from_face(cls, face: Face, track_id: int) -> TrackedFace:
        """``face`` (every dataclass field of it, whatever Face holds) with ``track_id`` set."""
        values = {f.name: getattr(face, f.name) for f in dataclasses.fields(face) if f.init and f.name != "track_id"}
        return cls(**values, track_id=int(track_id))

    def to_dict(self, decimals: int = 2) -> dict[str, Any]:
        """Face's JSON-ready dict with ``"track_id"`` (int) first."""
        return {"track_id": int(self.track_id), **super().to_dict(decimals)}


class VideoAnalyzer:
    """Faces of consecutive video frames, with track ids and (optionally) One-Euro-smoothed geometry.

    A frame goes through ``analyzer`` (detection + landmarks) every ``detect_every`` analysed frames, when no face
    is followed, and when a followed face's landmark confidence falls below ``min_confidence``; on the frames
    between, each face of the previous frame is followed by its own landmarks (:mod:`hrface.video.follow`: the
    landmark model alone, one batch for all faces). Then its boxes go through a
    :class:`~hrface.video.tracking.FaceTracker`, and each face through its track's
    :class:`~hrface.video.smoothing.FaceSmoother` (box, keypoints and landmarks; scores stay raw).  The head
    ``pose`` of a smoothed face is computed again from its smoothed points
    (:func:`~hrface.geometry.pose.face_pose`), so it is as steady as they are.  The filter state of a track is
    dropped with the track (after ``max_lost`` frames unseen).

    Args:
        analyzer: the :class:`~hrface.FaceAnalyzer` to run per frame (None: ``FaceAnalyzer()``, the shipped models).
        smooth: apply the One Euro filter (False: raw per-frame geometry, with track ids).
        detect_every: analysed frames between detector runs while faces are followed (1: the detector on every
            frame; following needs the analyzer's landmark model). A face that enters is found within this many
            frames.
        min_confidence: mean landmark score (``landmark_scores``) below which a followed face counts as lost, and
            the detector runs on that frame.
        max_lost, min_iou, reacquire_distance: tracker settings (see :class:`FaceTracker`); ``max_lost`` counts
            analysed frames.
        min_cutoff, beta, d_cutoff: One Euro settings (see :mod:`hrface.video.smoothing`; Hz, and Hz per face
            size per second for ``beta``).
    """

    def __init__(
        self,
        analyzer: FaceAnalyzer | None = None,
        *,
        smooth: bool = True,
        max_lost: int = 15,
        min_iou: float = 0.3,
        reacquire_distance: float = 1.0,
        min_cutoff: float = DEFAULT_MIN_CUTOFF,
        beta: float = DEFAULT_BETA,
        d_cutoff: float = DEFAULT_D_CUTOFF,
        detect_every: int = DEFAULT_DETECT_EVERY,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ) -> None:
        if int(detect_every) < 1:
            raise ValueError(f"detect_every must be at least 1, got {detect_every}")
        self.analyzer = FaceAnalyzer() if analyzer is None else analyzer
        self.detect_every = int(detect_every)
        landmarker = getattr(self.analyzer, "landmarker", None)
        self.follower = FaceFollower(landmarker, min_confidence) if landmarker is not None else None
        self.detector_runs = 0  # frames that went through the detector since the last reset (for benchmarks)
        self._since_detection = 0
        self.smooth = smooth
        self.tracker = FaceTracker(max_lost=max_lost, min_iou=min_iou, reacquire_distance=reacquire_distance)
        self.filter_options = {"min_cutoff": min_cutoff, "beta": beta, "d_cutoff": d_cutoff}
        FaceSmoother(**self.filter_options)  # check the values now, not at the first face
        self._smoothers: dict[int, FaceSmoother] = {}
        self._last_time = -math.inf

    def reset(self) -> None:
        """Forget every track and filter state (for a new video); ids start again from 0."""
        self.tracker.reset()
        self._smoothers.clear()
        self._last_time = -math.inf
        if self.follower is not None:
            self.follower.start([])
        self._since_detection = 0
        self.detector_runs = 0

    def process(self, frame_bgr: Any, time_s: float) -> list[TrackedFace]:
        """Faces of one frame (anything :meth:`FaceAnalyzer.analyze` takes; BGR) taken at ``time_s`` seconds
        (increasing from frame to frame), best score first."""
        frame = to_bgr(frame_bgr, copy=False)
        return self.update(self._faces_of(frame), time_s, (frame.shape[1], frame.shape[0]))

    def _faces_of(self, frame: np.ndarray) -> list[Face]:
        """The raw faces of one frame: followed from the last frame's, or detected (the class doc says when)."""
        follower = self.follower
        if follower is not None and follower.faces and self._since_detection + 1 < self.detect_every:
            faces, sure = follower.step(frame)
            if sure:
                self._since_detection += 1
                return faces
            # a face is being lost: this frame goes through the detector
        faces = self.analyzer.analyze(frame)
        self.detector_runs += 1
        self._since_detection = 0
        if follower is not None:
            follower.start(faces)
        return faces

    def update(self, faces: list[Face], time_s: float, image_size: tuple[int, int] | None = None) -> list[TrackedFace]:
        """Track and smooth one frame's already analysed ``faces`` (the per-frame step of :meth:`process`).

        ``image_size``: the frame's ``(width, height)``, which the pose of a smoothed face is computed with
        (:func:`~hrface.geometry.pose.face_pose` of its smoothed landmarks / keypoints); without it (or with
        ``smooth=False``) each face keeps the pose it was analysed with.
        """
        time_s = float(time_s)
        if time_s <= self._last_time:
            raise ValueError(f"frame times must increase: {time_s} s after {self._last_time} s")
        self._last_time = time_s
        boxes = np.array([np.asarray(f.box, dtype=np.float64).reshape(4) for f in faces]).reshape(-1, 4)
        ids = self.tracker.update(boxes, time_s)
        out = []
        for face, track_id in zip(faces, ids.tolist(), strict=True):
            tracked = TrackedFace.from_face(face, track_id)
            if self.smooth:
                smoother = self._smoothers.get(track_id)
                if smoother is None:
                    smoother = self._smoothers[track_id] = FaceSmoother(**self.filter_options)
                tracked = smoother(tracked, time_s)
                if image_size is not None:
                    tracked.pose = face_pose(tracked.landmarks, tracked.keypoints, image_size)
            out.append(tracked)
        active = self.tracker.active_ids
        for track_id in [t for t in self._smoothers if t not in active]:
            del self._smoothers[track_id]
        return out

    def track(
        self, frames: Iterable[tuple[int, float, np.ndarray] | np.ndarray], fps: float = 30.0
    ) -> Iterator[tuple[int, float, list[TrackedFace]]]:
        """``(index, time_s, faces)`` for each frame of ``frames``: ``(index, time_s, frame_bgr)`` tuples (as
        :func:`~hrface.video.reader.read_frames` yields them), or bare frames (then numbered 0, 1, 2, … at
        ``fps`` frames per second).  Starts from a fresh state (:meth:`reset`)."""
        self.reset()
        for position, item in enumerate(frames):
            if isinstance(item, np.ndarray):
                index, time_s, frame = position, position / fps, item
            else:
                index, time_s, frame = item
            yield index, time_s, self.process(frame, time_s)


def video_records(
    source: Source | VideoSource,
    video_analyzer: VideoAnalyzer | None = None,
    *,
    every: int = 1,
    max_frames: int | None = None,
    draw: str | os.PathLike[str] | None = None,
    decimals: int = 2,
    after_frame: int = -1,
    first_track_id: int = 0,
    on_frame: Callable[[np.ndarray, list[TrackedFace], dict[str, Any]], bool | None] | None = None,
    recorded: Recorded | None = None,
) -> Iterator[dict[str, Any]]:
    """One JSON-ready record per analysed frame of a video file or camera::

        {"video": "clip.mp4", "frame": 12, "time": 0.4, "width": 640, "height": 480,
         "faces": [{"track_id": 0, "box": [...], "score": 0.99, "keypoints": [...], "landmarks": [...]}, ...]}

    ``frame`` is the 0-based frame index in the source, ``time`` its time in seconds (rounded to 1 ms);
    ``video`` is the path as given or ``"camera:N"``.  A path or camera index is opened at once
    (:class:`~hrface.video.reader.VideoLoadError` for an unreadable one); an open :class:`VideoSource` is read
    as it is (``every`` and ``max_frames`` are then its own).  Frames that cannot be decoded are read past
    (:class:`~hrface.video.reader.VideoSource`; afterwards its ``warning`` says which, and it is logged).

    Args:
        video_analyzer: the :class:`VideoAnalyzer` to use (None: ``VideoAnalyzer()``); it is reset first.
        every, max_frames: analyse every ``every``-th frame, at most ``max_frames`` of them.
        draw: also write the analysed frames, annotated (:func:`hrface.io.draw.draw_faces`), to this video file
            (atomically, see :class:`~hrface.video.reader.VideoWriter`), at the source's fps / ``every`` so that
            it lasts as long as the source.  A file's drawing is kept only when the generator runs to the end;
            a camera's also when it is stopped (Ctrl-C, or the consumer closing the generator).
        decimals: rounding of coordinates (as :meth:`Face.to_dict`).
        after_frame: skip the frames up to this index (decoded, not analysed): a resumed run.  With ``draw``,
            those of them that are in ``recorded`` are drawn with their recorded faces, so that the drawing holds
            the whole video (``recorded`` is then required).
        first_track_id: the first new track's id (a resumed run: above the ids already recorded).
        on_frame: called as ``on_frame(frame_bgr, faces, record)`` before each record is yielded (it may add
            to the record); a true return value ends the video there (e.g. a key pressed in a window).
        recorded: the faces of the frames up to ``after_frame`` as an earlier run recorded them, by frame index.
    """
    if draw is not None and after_frame >= 0 and recorded is None:
        raise InputError(
            "video_records: a drawing of a resumed video (after_frame) needs the recorded faces of the frames "
            "before it (recorded=); pass them, or draw=None"
        )
    video = source if isinstance(source, VideoSource) else VideoSource(source, every=every, max_frames=max_frames)
    va = video_analyzer or VideoAnalyzer()
    return _records(video, va, draw, decimals, after_frame, first_track_id, on_frame, recorded or {})


def _records(
    video: VideoSource,
    va: VideoAnalyzer,
    draw: str | os.PathLike[str] | None,
    decimals: int,
    after_frame: int,
    first_track_id: int,
    on_frame: Callable[..., bool | None] | None,
    recorded: Recorded,
) -> Iterator[dict[str, Any]]:
    from ..io.draw import draw_faces

    writer = None
    if draw is not None:
        writer = VideoWriter(draw, (video.fps or 30.0) / video.every, (video.width, video.height))
    va.reset()
    va.tracker.next_id = int(first_track_id)
    with video:
        try:
            for index, time_s, frame in video:
                if index <= after_frame:
                    if writer is not None and index in recorded:  # a resumed video: its drawing goes on as it was
                        writer.write(draw_faces(frame, [recorded_face(face) for face in recorded[index]]))
                    continue
                faces = va.process(frame, time_s)
                record = frame_record(video.name, index, time_s, video.width, video.height, faces, decimals)
                stop = on_frame(frame, faces, record) if on_frame is not None else False
                if writer is not None:
                    writer.write(draw_faces(frame, faces))
                yield record
                if stop:
                    break
        except (KeyboardInterrupt, GeneratorExit) as end:
            if not video.is_camera:  # a file's drawing is kept only when the whole video was read
                if writer is not None:
                    writer.abort()
                raise
            if writer is not None:  # a camera run ends this way: keep what was drawn
                writer.close()
            if isinstance(end, GeneratorExit):
                raise
            return
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    if writer is not None:
        writer.close()


def recorded_face(face: Mapping[str, Any]) -> dict[str, Any]:
    """A face record (``Face.to_dict``) ready for :func:`~hrface.io.draw.draw_faces`: its ``pose`` angles turned
    back into a :class:`~hrface.geometry.pose.Pose` with its rotation (which the head axes are drawn from)."""
    out = dict(face)
    pose = face.get("pose")
    if isinstance(pose, Mapping):
        try:
            yaw, pitch, roll = (float(pose[name]) for name in ("yaw", "pitch", "roll"))
        except (KeyError, TypeError, ValueError):
            out["pose"] = None
        else:
            rotation = rotation_from_angles(yaw, pitch, roll)
            out["pose"] = Pose(yaw, pitch, roll, rotation=rotation, translation=np.zeros(3))
    return out
