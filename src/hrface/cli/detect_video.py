"""``hrface detect`` on videos and cameras: one JSON line per analysed frame, tracks, smoothing, drawings.

A video's records are ``{"video", "frame", "time", "width", "height", "faces"}`` (faces with ``track_id``);
a video that cannot be read (or analysed to its end) gets ``{"video", "error"}`` and the run goes on; one whose
frames could not all be decoded (a damaged or truncated file, read past) ends with ``{"video", "warning"}``.
``--resume`` continues a video after its last recorded frame, with new track ids above the recorded ones (tracks
do not carry over); with ``--draw`` the frames already recorded are drawn again from their records, so that the
drawing holds the whole video.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, OutputError
from ..io.records import RecordSink, error_text, image_key, video_record
from ..runtime import FaceAnalyzer
from ..video.follow import DEFAULT_DETECT_EVERY
from .crops import CropWriter


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """The video and camera options of ``hrface detect``."""
    group = parser.add_argument_group("videos and cameras")
    group.add_argument("--camera", type=int, metavar="N", help="analyse camera N (0: the default) until Ctrl-C")
    group.add_argument("--every", type=int, default=1, metavar="K", help="analyse every K-th frame (default 1)")
    group.add_argument("--max-frames", type=int, metavar="N", help="stop each video or camera after N analysed frames")
    group.add_argument(
        "--no-smooth", action="store_true", help="no temporal smoothing of boxes and points (tracks are kept)"
    )
    group.add_argument(
        "--detect-every",
        type=int,
        default=DEFAULT_DETECT_EVERY,
        metavar="K",
        help=f"run the detector every K analysed frames and follow faces by their landmarks in between (default "
        f"{DEFAULT_DETECT_EVERY}; also when nothing is followed or a face's landmark confidence falls; 1: the "
        "detector on every frame)",
    )


def check_video_arguments(args: argparse.Namespace) -> None:
    """Usage errors of the video options, before any work."""
    if args.every < 1:
        raise ConfigError(f"--every must be at least 1, got {args.every}")
    if args.detect_every < 1:
        raise ConfigError(f"--detect-every must be at least 1, got {args.detect_every}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.camera is not None and args.camera < 0:
        raise ConfigError(f"--camera must be a camera index (0, 1, ...), got {args.camera}")


def process_video(
    analyzer: FaceAnalyzer,
    source: Path | int,
    args: argparse.Namespace,
    sink: RecordSink,
    drawing: Path | None,
    crops: CropWriter | None,
    crop_folder: str,
    progress: bool,
) -> Counter:
    """Write the records of one video file or camera to ``sink`` (:func:`hrface.video.video_records`); counts
    of frames, faces, errors, and damaged videos with their lost frames.  Crops go to ``crop_folder`` in
    ``crops`` as ``FRAME_TRACK.png``.  Ctrl-C ends a camera run normally."""
    from ..video import VideoAnalyzer, VideoSource, video_records

    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")  # FFmpeg's own lines on damage: fatal ones only
    counts: Counter = Counter()
    camera = isinstance(source, int)
    name = f"camera:{source}" if camera else str(source)
    last, top_id = (-1, -1) if camera else sink.videos.get(image_key(source), (-1, -1))
    recorded = sink.recorded_faces(source) if drawing is not None and last >= 0 else None
    try:
        video = VideoSource(source, every=args.every, max_frames=args.max_frames)
    except Exception as exc:  # an unreadable (or over-size) video is an error record; the run goes on
        sink.write(video_record(name, error=exc))
        counts["errors"] += 1
        return counts
    window = _window(camera)

    def on_frame(frame: Any, faces: list, record: dict[str, Any]) -> bool:
        if crops is not None:
            crops.write_faces(frame, faces, record["faces"], crop_folder, f"{record['frame']:06d}")
        return window and _show(frame, faces)

    records = video_records(
        video,
        VideoAnalyzer(analyzer, smooth=not args.no_smooth, detect_every=args.detect_every),
        draw=drawing,
        after_frame=last,
        first_track_id=top_id + 1,  # a resumed video: new tracks, ids above the recorded ones
        on_frame=on_frame,
        recorded=recorded,
    )
    failure: list[Exception] = []
    try:
        for record in _progress(_guarded(records, failure), video, progress and not camera):
            sink.write(record)
            counts["frames"] += 1
            counts["faces"] += len(record["faces"])
            last = record["frame"]
    except KeyboardInterrupt:
        if not camera:
            raise
    finally:
        records.close()
    if failure:  # the frames so far are recorded; the video gets an error record, the run goes on
        text = error_text(failure[0])
        if not text.startswith(name):
            text = f"{name}: {text}" if last < 0 else f"{name}: after frame {last}: {text}"
        sink.write(video_record(name, error=text))
        counts["errors"] += 1
    elif video.warning:
        sink.write(video_record(name, warning=video.warning))
        counts["damaged videos"] += 1
        counts["lost frames"] += video.lost_frames
    return counts


def _guarded(records: Iterable[dict[str, Any]], failure: list[Exception]) -> Iterator[dict[str, Any]]:
    """``records`` until one cannot be made: that exception goes to ``failure`` (an output error, which ends
    the run, and Ctrl-C are raised)."""
    try:
        yield from records
    except OutputError:
        raise
    except Exception as exc:
        failure.append(exc)


def _progress(records: Any, video: Any, enabled: bool) -> Any:
    """A bar of analysed frames on stderr for a video of known length."""
    if not enabled or not video.frame_count:
        return records
    from tqdm import tqdm

    total = -(-video.frame_count // video.every)
    if video.max_frames is not None:
        total = min(total, video.max_frames)
    return tqdm(records, total=total, unit="frame", file=sys.stderr, dynamic_ncols=True, leave=False, desc=video.name)


def _window(camera: bool) -> bool:
    """A live window for a camera only when a display exists and OpenCV can open windows (not the headless
    build); otherwise the frames go to ``--draw`` only."""
    if not camera or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    import cv2

    try:
        cv2.namedWindow("hrface")
    except cv2.error:
        return False
    return True


def _show(frame: Any, faces: list) -> bool:
    """Show a frame with its faces drawn; True when the user pressed q or Esc."""
    import cv2

    from ..io.draw import draw_faces

    cv2.imshow("hrface", draw_faces(frame, faces))
    return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)
