"""Video and webcam analysis: frame reading and writing, multi-face tracking, One Euro smoothing.

>>> from hrface.video import VideoAnalyzer, read_frames, video_records
>>> for index, time_s, faces in VideoAnalyzer().track(read_frames("clip.mp4", every=2)):
...     print(index, time_s, [face.track_id for face in faces])

Only numpy and OpenCV are imported (no torch); the models run as :class:`~hrface.FaceAnalyzer` runs them.
"""

from .analyzer import TrackedFace, VideoAnalyzer, video_records
from .reader import (
    VIDEO_EXTENSIONS,
    VideoLoadError,
    VideoSource,
    VideoTooLargeError,
    VideoWriter,
    is_video,
    read_frames,
)
from .smoothing import FaceSmoother, OneEuroFilter, face_size
from .tracking import FaceTracker, Track, linear_assignment

__all__ = [
    "VIDEO_EXTENSIONS",
    "FaceSmoother",
    "FaceTracker",
    "OneEuroFilter",
    "Track",
    "TrackedFace",
    "VideoAnalyzer",
    "VideoLoadError",
    "VideoSource",
    "VideoTooLargeError",
    "VideoWriter",
    "face_size",
    "is_video",
    "linear_assignment",
    "read_frames",
    "video_records",
]
