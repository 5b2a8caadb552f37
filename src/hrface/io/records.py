"""The records of ``hrface detect``, the server, the Ray workers and the video analysis, built and written in one
place.

**Building.**  One image gives ``{"image", "width", "height", "faces"}`` (:func:`analyzed_record`; ``warning``
when only the first frame of a multi-frame file was analysed), or ``{"image", "error"}`` (:func:`error_record`)
when it cannot be read or analysed; each face is :meth:`~hrface.runtime.faces.Face.to_dict` (an aligned crop
adds its ``align_matrix``, :func:`matrix_value`).  One analysed video frame gives ``{"video", "frame", "time",
"width", "height", "faces"}`` (:func:`frame_record`), a video that cannot be read ``{"video", "error"}``, one
whose frames could not all be decoded ends with ``{"video", "warning"}``.  :func:`image_key` identifies an image
across runs, :func:`error_text` is the text of every ``error``.

**Writing.**  :class:`RecordSink` writes one JSON line per record to standard output, or to FILE through
``FILE.partial``, resumable.  A file output is written to ``FILE.partial`` next to it, flushed after every
record, and renamed to FILE when the run ends, so FILE only ever holds a complete output.  A run that stops
early (interrupted, killed, disk full) leaves its records in ``FILE.partial``; a new run refuses to start over it
unless told to ``--resume``, which carries over the records of FILE and FILE.partial (each image once; a last
line cut short by a kill is dropped) and appends the images not yet recorded.  Write failures become one-line
:class:`~hrface.errors.OutputError` messages that say how many records are safe and where.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, HrfaceError, OutputError, one_line, os_reason
from .files import atomic_write_text, check_writable_folder


def image_key(image: str | os.PathLike[str]) -> str:
    """What identifies an image across runs: its absolute path with links resolved."""
    return os.path.realpath(image)


def error_text(exc: BaseException) -> str:
    """The ``error`` of a record: a user-facing error's own line, else the exception's type and message."""
    return str(exc) if isinstance(exc, HrfaceError) else f"{type(exc).__name__}: {one_line(exc, 1000)}"


def face_dicts(faces: Iterable[Any], decimals: int = 2) -> list[dict[str, Any]]:
    """The JSON-ready ``faces`` of a record: ``face.to_dict(decimals)`` of each
    (:class:`~hrface.runtime.faces.Face`, or a tracked face of a video)."""
    return [face.to_dict(decimals) for face in faces]


def frames_warning(frames: int) -> str | None:
    """The ``warning`` of an image file that holds ``frames`` frames or pages (GIF, TIFF), or None for one."""
    return f"the file holds {frames} frames or pages; only the first was analysed" if frames > 1 else None


def image_record(
    image: str | None, width: int, height: int, faces: list[dict[str, Any]], warning: str | None = None
) -> dict[str, Any]:
    """The record of an analysed image: ``{"image", "width", "height", "faces"}`` (``faces``: face dicts, see
    :func:`face_dicts`), and ``warning`` when there is one.  ``image``: the name as given (None: an upload
    without a name)."""
    record: dict[str, Any] = {"image": image, "width": width, "height": height, "faces": faces}
    if warning is not None:
        record["warning"] = warning
    return record


def analyzed_record(image: str | None, array: Any, faces: Sequence[Any], frames: int = 1) -> dict[str, Any]:
    """:func:`image_record` of ``faces`` found in ``array`` (the (H, W, 3) image), decoded from a file of
    ``frames`` frames or pages."""
    height, width = array.shape[:2]
    return image_record(image, width, height, face_dicts(faces), frames_warning(frames))


def error_record(image: str | None, error: BaseException | str) -> dict[str, Any]:
    """``{"image", "error"}``: an image (or a folder of images) that could not be read or analysed;
    ``error`` an exception (its :func:`error_text`) or the message itself."""
    return {"image": image, "error": error if isinstance(error, str) else error_text(error)}


def frame_record(
    video: str, frame: int, time_s: float, width: int, height: int, faces: Sequence[Any], decimals: int = 2
) -> dict[str, Any]:
    """The record of one analysed video frame: ``{"video", "frame", "time", "width", "height", "faces"}``;
    ``frame`` its 0-based index in the video, ``time`` in seconds rounded to 1 ms, faces with ``track_id``."""
    record: dict[str, Any] = {"video": video, "frame": frame, "time": round(time_s, 3)}
    record |= {"width": width, "height": height}
    record["faces"] = face_dicts(faces, decimals)
    return record


def video_record(video: str, *, error: BaseException | str | None = None, warning: str | None = None) -> dict[str, Any]:
    """``{"video", "error"}`` (a video that could not be read, or analysed to its end) or ``{"video",
    "warning"}`` (the frames that could not be decoded)."""
    if error is not None:
        return {"video": video, "error": error if isinstance(error, str) else error_text(error)}
    return {"video": video, "warning": warning}


def matrix_value(matrix: Any) -> list[list[float]]:
    """A face's ``align_matrix`` (image → crop) as the record holds it: nested lists rounded to 1e-6."""
    return [[round(float(v), 6) for v in row] for row in matrix]


def partial_path(output: Path) -> Path:
    """The file an unfinished run writes to: ``FILE.partial`` beside ``FILE``."""
    return output.with_name(output.name + ".partial")


def detach_stdout() -> None:
    """Point the standard output descriptor at /dev/null after a failed write (a closed pipe, a full
    device), so that the interpreter's last flush of what is still buffered cannot fail a second time."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (captured by a test)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class RecordSink:
    """One JSON line per image to standard output (``output`` None) or to ``output`` (see the module doc).

    Use as a context manager.  ``done`` maps the :func:`image_key` of each carried-over image record (and
    video error or warning record: the video was done) to whether it is a failure (an error, or a video's
    frames lost); ``videos`` maps the key of each video with carried-over frame records to ``(last frame
    index, highest track id)``, from where a resumed run goes on; ``written`` counts the records in the file
    so far, carried ones included.  With ``keep_frames``, the carried-over frame records are kept for
    :meth:`recorded_faces` (to draw a resumed video whole).
    """

    def __init__(self, output: Path | None, resume: bool = False, keep_frames: bool = False) -> None:
        if resume and output is None:
            raise ConfigError("--resume needs --output FILE: records on standard output cannot be resumed")
        self.output = output
        self.resume = resume
        self.done: dict[str, bool] = {}
        self.videos: dict[str, tuple[int, int]] = {}
        self.keep_frames = keep_frames
        self._frames: dict[str, list[str]] = {}  # video key -> its carried-over frame record lines
        self.written = 0
        self._file: IO[str] | None = None

    def has(self, image: str | os.PathLike[str]) -> bool:
        """Whether ``image`` already has a record carried over by ``--resume``."""
        return image_key(image) in self.done

    def __enter__(self) -> RecordSink:
        if self.output is not None:
            self._open(self.output, partial_path(self.output))
        return self

    def _open(self, output: Path, partial: Path) -> None:
        if output.is_dir():
            raise OutputError(f"--output {output}: is a folder; name a file, such as {output / 'faces.jsonl'}")
        if partial.exists() and not self.resume:
            raise ConfigError(
                f"{partial} exists: an interrupted run left its records there; continue it with --resume, "
                "or delete it to start over"
            )
        try:
            check_writable_folder(output.parent)
            if self.resume:
                lines = self._carry_over(output, partial)
                atomic_write_text(partial, "".join(lines))  # a cut-short last line is gone; new lines follow
                self._file = open(partial, "a", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
            else:  # O_EXCL: never two runs on one file; 0o666 less the umask, as any new file
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                self._file = os.fdopen(fd, "w", encoding="utf-8")
        except OSError as exc:
            raise OutputError.cannot_write(f"--output {output}", exc, "choose a writable file") from None

    def _carry_over(self, output: Path, partial: Path) -> list[str]:
        """The lines of the records already in ``output`` and ``partial``: each image once (the first), each
        video frame once."""
        lines, frames = [], set()
        for path in (output, partial):
            for line, record in read_records(path):
                if "image" in record or "error" in record or "warning" in record:
                    key = image_key(record.get("image") or record["video"])
                    if key not in self.done:
                        self.done[key] = "error" in record or "image" not in record  # a video's warning: frames lost
                        lines.append(line)
                    continue
                key, frame = image_key(record["video"]), int(record.get("frame", -1))
                if (key, frame) not in frames:
                    frames.add((key, frame))
                    ids = [int(face.get("track_id", -1)) for face in record.get("faces", [])]
                    last, top = self.videos.get(key, (-1, -1))
                    self.videos[key] = (max(last, frame), max([top, *ids]))
                    lines.append(line)
                    if self.keep_frames:
                        self._frames.setdefault(key, []).append(line)
        self.written = len(lines)
        return lines

    def recorded_faces(self, video: str | os.PathLike[str]) -> dict[int, list[dict[str, Any]]]:
        """The carried-over faces of ``video``'s frames by frame index (``keep_frames``; once: they are let go)."""
        return {
            int(record["frame"]): record.get("faces", [])
            for record in map(json.loads, self._frames.pop(image_key(video), []))
        }

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it; a failed write raises a one-line :class:`OutputError`."""
        stream = self._file if self._file is not None else sys.stdout
        try:
            stream.write(json.dumps(record) + "\n")
            stream.flush()
        except OSError as exc:
            raise self._write_error(exc) from None
        self.written += 1

    def _write_error(self, exc: OSError) -> OutputError:
        if self.output is None:
            detach_stdout()
            if isinstance(exc, BrokenPipeError):
                return OutputError("standard output was closed by its reader (broken pipe); the run stopped")
            return OutputError.cannot_write("standard output", exc, "write the records to a file with --output")
        partial = partial_path(self.output)
        kept = f"{self.written} records are kept in {partial}; continue with --resume" if self.written else ""
        return OutputError.cannot_write(f"--output {self.output}", exc, kept or "no record was written")

    def __exit__(self, exc_type: type[BaseException] | None, *_: Any) -> None:
        if self._file is None or self.output is None:
            return
        partial = partial_path(self.output)
        try:
            if exc_type is None:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            if exc_type is None:
                raise self._write_error(exc) from None
        if exc_type is None:
            try:
                os.replace(partial, self.output)
            except OSError as exc:
                raise OutputError.cannot_write(
                    f"--output {self.output}", exc, f"the records are in {partial}"
                ) from None
        elif self.written == 0:
            partial.unlink(missing_ok=True)  # nothing worth keeping: the next run may start afresh
        elif issubclass(exc_type, KeyboardInterrupt):
            raise KeyboardInterrupt(f"{self.written} records are kept in {partial}; continue with --resume") from None


def _is_video_record(record: dict[str, Any]) -> bool:
    """A frame's record, or a video's error or warning record (frames that could not be read)."""
    return isinstance(record.get("video"), str) and (
        isinstance(record.get("frame"), int) or "error" in record or "warning" in record
    )


def read_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """``(line, record)`` for each record of a JSON-lines output of ``hrface detect``; none if ``path`` is
    absent.  A last line without its newline that does not parse (a run killed mid-write) is dropped; any
    other line that is not a record means the file is not such an output, and resuming it could destroy it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read it to resume ({reason}); pass the output of an earlier run") from None
    records = []
    lines = text.splitlines(keepends=True)
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and (isinstance(record.get("image"), str) or _is_video_record(record)):
            records.append((line if line.endswith("\n") else line + "\n", record))
        elif not (number == len(lines) and not line.endswith("\n")):
            raise ConfigError(
                f"{path}:{number}: not a record of hrface detect; --resume only continues its own output files"
            )
    return records
