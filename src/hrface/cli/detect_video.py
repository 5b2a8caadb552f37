"""``hrface detect`` on videos and cameras: one JSON line per analysed frame, tracks, smoothing, drawings.

A video's records are ``{"video", "frame", "time", "width", "height", "faces"}`` (faces with ``track_id``);
a video that cannot be read gets ``{"video", "error"}`` and the run goes on.  ``--resume`` continues a video
after its last recorded frame, with new track ids above the recorded ones (tracks do not carry over).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..runtime import FaceAnalyzer
from .crops import CropWriter
from .records import RecordSink, error_text, image_key


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """The video and camera options of ``hrface detect``."""
    group = parser.add_argument_group("videos and cameras")
    group.add_argument("--camera", type=int, metavar="N", help="analyse camera N (0: the default) until Ctrl-C")
    group.add_argument("--every", type=int, default=1, metavar="K", help="analyse every K-th frame (default 1)")
    group.add_argument("--max-frames", type=int, metavar="N", help="stop each video or camera after N analysed frames")
    group.add_argument(
        "--no-smooth", action="store_true", help="no temporal smoothing of boxes and points (tracks are kept)"
    )


def check_video_arguments(args: argparse.Namespace) -> None:
    """Usage errors of the video options, before any work."""
    if args.every < 1:
        raise ConfigError(f"--every must be at least 1, got {args.every}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ConfigError(f"--max-frames must be at least 1, got {args.max_frames}")
    if args.camera is not None and args.camera < 0:
        raise ConfigError(f"--camera must be a camera index (0, 1, ...), got {args.camera}")


def video_drawing_path(draw_dir: Path, path: Path, root: Path | None) -> Path:
    """Annotated video path: the input's path relative to its folder (or its name), as ``.mp4``."""
    relative = path.relative_to(root) if root is not None else Path(path.name)
    return draw_dir / relative.with_suffix(".mp4")


def process_video(
    analyzer: FaceAnalyzer,
    source: Path | int,
    args: argparse.Namespace,
    sink: RecordSink,
    drawing: Path | None,
    crops: CropWriter | None,
    progress: bool,
) -> Counter:
    """Write the records of one video file or camera to ``sink``; counts of frames, faces and errors."""
    from ..video import VideoAnalyzer, VideoSource
    from ..video.reader import VideoWriter

    counts: Counter = Counter()
    name = f"camera:{source}" if isinstance(source, int) else str(source)
    last, top_id = (-1, -1) if isinstance(source, int) else sink.videos.get(image_key(source), (-1, -1))
    try:
        video = VideoSource(source, every=args.every, max_frames=args.max_frames)
    except Exception as exc:  # an unreadable video is an error record; the run goes on
        sink.write({"video": name, "error": error_text(exc)})
        counts["errors"] += 1
        return counts
    tracker = VideoAnalyzer(analyzer, smooth=not args.no_smooth)
    tracker.tracker.next_id = top_id + 1  # a resumed video: new tracks, ids above the recorded ones
    writer = VideoWriter(drawing, (video.fps or 30.0) / video.every, (video.width, video.height)) if drawing else None
    window = _window(args, isinstance(source, int))
    frames = _progress(video, progress and not isinstance(source, int))
    try:
        with video:
            for index, time_s, frame in frames:
                if index <= last:
                    continue  # recorded by an earlier run
                faces = tracker.process(frame, time_s)
                record = {"video": name, "frame": index, "time": round(time_s, 3)}
                record |= {"width": video.width, "height": video.height, "faces": [f.to_dict() for f in faces]}
                if crops is not None:
                    crops.write_faces(frame, faces, record["faces"], Path(Path(name).name).stem, f"{index:06d}")
                sink.write(record)
                counts["frames"] += 1
                counts["faces"] += len(faces)
                if writer is not None or window:
                    drawn = _draw(frame, faces)
                    if writer is not None:
                        writer.write(drawn)
                    if window and _show(name, drawn):
                        break
    except KeyboardInterrupt:
        if not isinstance(source, int):
            if writer is not None:
                writer.abort()
            raise
        # Ctrl-C is how a camera run ends: keep what was recorded and drawn.
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
    return counts


def _progress(video: Any, enabled: bool) -> Any:
    if not enabled or not video.frame_count:
        return video
    from tqdm import tqdm

    total = -(-video.frame_count // video.every)
    if video.max_frames is not None:
        total = min(total, video.max_frames)
    return tqdm(video, total=total, unit="frame", file=sys.stderr, dynamic_ncols=True, leave=False, desc=video.name)


def _draw(frame: Any, faces: list) -> Any:
    from ..io.draw import draw_faces

    return draw_faces(frame, faces)


def _window(args: argparse.Namespace, camera: bool) -> bool:
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


def _show(name: str, frame: Any) -> bool:
    """Show a frame; True when the user pressed q or Esc."""
    import cv2

    cv2.imshow("hrface", frame)
    return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)
