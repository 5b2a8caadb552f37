"""Where ``hrface detect`` writes drawings and aligned crops, the checks, made before any work, that no output
replaces an input or another output, and the :func:`summary` line of a run.

Output names keep each input's whole file name (its path inside its input folder, or its name for a file given
directly), so inputs that differ only by their extension (``a.png``, ``a.jpg``) never share an output:

* the drawing of an image: ``DRAW/PATH/NAME`` in the same format; ``DRAW/PATH/NAME.png`` for a format that is not
  written (GIF, PGM, PBM, another extension);
* the drawing of a video: ``DRAW/PATH/NAME`` for an ``.mp4``, else ``DRAW/PATH/NAME.mp4`` (``clip.avi.mp4``);
  camera N: ``DRAW/camera_N.mp4``;
* the crops of an image: ``CROPS/PATH/NAME_K.png``, K the face's index;
* the crops of a video: ``CROPS/PATH/NAME_crops/FRAME_TRACK.png``; camera N: ``CROPS/camera_N_crops/``.

Inputs can still meet (``x/a.jpg`` and ``y/a.jpg`` given together; a drawing named like another input's crop when
``--draw`` and ``--crops`` are one folder): :func:`check_outputs` refuses such a run, naming both.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, OutputError
from ..io.files import IMAGE_EXTENSIONS, FolderIssue, check_writable_folder
from ..video.reader import is_video

_DRAWN_AS_IS = IMAGE_EXTENSIONS - {".gif", ".pgm", ".pbm"}  # formats a drawing is written in
_CROP_NAME = re.compile(r"(.+)_\d+\.png")  # NAME_K.png: face K of the image NAME
_FRAME_CROP_NAME = re.compile(r"\d+_\d+\.png")  # FRAME_TRACK.png in a video's crops folder


@dataclass(frozen=True)
class Source:
    """An image or video to process: its path, and the input folder it was found in (None: a file given directly)."""

    path: Path
    root: Path | None

    @property
    def relative(self) -> Path:
        """What output names keep: the path inside the input folder, or the file's name."""
        return self.path.relative_to(self.root) if self.root is not None else Path(self.path.name)


def camera_source(index: int) -> Source:
    """Camera ``index`` as a source: its outputs are named as those of a video file ``camera_N``."""
    return Source(Path(f"camera_{index}"), None)


def drawing_path(draw_dir: Path, source: Source, video: bool) -> Path:
    """Where the drawing of ``source`` goes (see the module doc)."""
    relative = source.relative
    kept = {".mp4"} if video else _DRAWN_AS_IS
    if relative.suffix.lower() not in kept:
        relative = relative.with_name(relative.name + (".mp4" if video else ".png"))
    return draw_dir / relative


def image_crops(source: Source) -> tuple[str, str]:
    """``(folder, name)`` of an image's crops, relative to ``--crops``: they are ``folder/name_K.png``."""
    relative = source.relative
    return str(relative.parent), relative.name


def video_crops(source: Source) -> str:
    """The folder of a video's crops, relative to ``--crops``: ``PATH/NAME_crops``."""
    relative = source.relative
    return str(relative.with_name(relative.name + "_crops"))


def prepare_folder(folder: Path, option: str) -> None:
    """Create an output folder, or refuse (exit 2) one that cannot be written, before the run starts."""
    try:
        check_writable_folder(folder)
    except OSError as exc:
        raise OutputError.cannot_write(f"{option} {folder}", exc, "choose a writable folder") from None


def check_output_folder(folder: Path, inputs: Sequence[str], option: str) -> None:
    """Refuse an output folder that is an input, holds one, or lies inside an input folder: the files written
    there would land among the originals (and a later run over that folder would take them for inputs)."""
    real = Path(os.path.realpath(folder))
    for item in inputs:
        source = Path(os.path.realpath(item))
        if source == real or real in source.parents:
            raise ConfigError(
                f"{option} {folder} holds the input {item}: written files could replace the originals; "
                "choose a folder outside the inputs"
            )
        if source in real.parents and source.is_dir():
            raise ConfigError(
                f"{option} {folder} is inside the input folder {item}: written files would land among the "
                "originals; choose a folder outside the inputs"
            )


def check_outputs(
    items: Sequence[Source | FolderIssue],
    inputs: Sequence[str],
    output: Path | None,
    draw: Path | None = None,
    crops: Path | None = None,
    camera: int | None = None,
) -> None:
    """Refuse, before any work, a run whose outputs would replace an input (``--output`` on an input image, a
    ``--draw`` or ``--crops`` folder among the inputs, a drawing on an input) or would write one file twice
    (two inputs with one output name, a drawing on a crop, a drawing or crop on ``--output``)."""
    sources = [item for item in items if isinstance(item, Source)]
    names = _Names()
    originals = {names.key(s.path) for s in sources}  # and where the inputs that are links lead:
    originals |= {os.path.realpath(s.path) for s in sources if os.path.islink(s.path)}
    if output is not None and names.key(output) in originals:
        raise ConfigError(f"--output {output} is an input image and would be overwritten; write to a .jsonl file")
    for folder, option in ((draw, "--draw"), (crops, "--crops")):
        if folder is not None:
            check_output_folder(folder, inputs, option)
    if draw is None and crops is None:
        return
    jobs = [(source, str(source.path), names.key(source.path), is_video(source.path)) for source in sources]
    if camera is not None:
        jobs.append((camera_source(camera), f"--camera {camera}", f"camera:{camera}", True))
    if output is not None:
        for path in (output, output.with_name(output.name + ".partial")):
            names.claim(names.files, path, ("output", "--output", f"--output {output}", str(path)))
    for source, shown, writer, video in jobs:
        if draw is not None:
            drawing = drawing_path(draw, source, video)
            if names.key(drawing) in originals:
                raise ConfigError(
                    f"--draw {draw}: the drawing of {shown} would replace an input image; "
                    "choose a folder outside the inputs"
                )
            names.claim(names.files, drawing, ("draw", writer, f"the drawing of {shown}", str(drawing)))
        if crops is not None and video:
            folder = crops / video_crops(source)
            names.claim(names.frames, folder, ("crops", writer, f"the crops of {shown}", f"{folder}/FRAME_TRACK.png"))
        elif crops is not None:
            group, name = image_crops(source)
            prefix = crops / group / name
            names.claim(names.crops, prefix, ("crops", writer, f"the crops of {shown}", f"{prefix}_K.png"))
    names.check_files_against_crops()


_Claim = tuple[str, str, str, str]  # (kind: draw, crops or output; who writes: the input's entry; description; path)


class _Names:
    """The files a run will write, by resolved path, and what writes each: to find two writers of one file."""

    def __init__(self) -> None:
        self.files: dict[str, _Claim] = {}  # a drawing, or --output (and its .partial)
        self.crops: dict[str, _Claim] = {}  # PREFIX of an image's crops PREFIX_K.png
        self.frames: dict[str, _Claim] = {}  # the folder of a video's crops FRAME_TRACK.png
        self._folders: dict[str, str] = {}  # folder → its real path: each resolved once

    def key(self, path: Path) -> str:
        """:func:`entry` of ``path``, with its folder's resolution shared by the files in it."""
        folder, name = os.path.split(os.path.abspath(path))
        if folder not in self._folders:
            self._folders[folder] = os.path.realpath(folder)
        return os.path.join(self._folders[folder], name)

    def claim(self, table: dict[str, _Claim], path: Path, claim: _Claim) -> None:
        other = table.setdefault(self.key(path), claim)
        if other[1] != claim[1]:
            raise _collision(other, claim)

    def check_files_against_crops(self) -> None:
        """A drawing (or ``--output``) named like a crop in the crops folder: ``NAME_K.png``, ``FRAME_TRACK.png``."""
        for key, claim in self.files.items():
            folder, name = os.path.split(key)
            match = _CROP_NAME.fullmatch(name)
            crop = self.crops.get(os.path.join(folder, match[1])) if match else None
            frame = self.frames.get(folder) if _FRAME_CROP_NAME.fullmatch(name) else None
            for other in (crop, frame):
                if other is not None:
                    raise _collision(other, claim)


def _collision(first: _Claim, second: _Claim) -> ConfigError:
    kinds = {first[0], second[0]}
    if "output" in kinds:
        hint = "write --output elsewhere"
    elif len(kinds) == 2:
        hint = "give --draw and --crops different folders"
    else:
        hint = "rename one of them, or analyse them in separate runs"
    return ConfigError(f"{first[2]} and {second[2]} would both be written to {second[3]}; {hint}")


def entry(path: str | os.PathLike[str]) -> str:
    """The directory entry that writing ``path`` (by rename) replaces: its folder resolved, its name kept."""
    absolute = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))


def summary(counts: Counter, skipped: int, output: Path | None) -> str:
    """The stderr line that ends a run: ``hrface: 6 images, 29 faces, 1 errors -> out.jsonl`` (with
    ``2 videos (300 frames)`` when videos or a camera were analysed, and ``1 videos damaged (35 frames not
    read)`` when frames could not be decoded)."""
    videos = f", {counts['videos']} videos ({counts['frames']} frames)" if counts["frames"] or counts["videos"] else ""
    text = f"hrface: {counts['images']} images{videos}, {counts['faces']} faces, {counts['errors']} errors"
    if counts["damaged videos"]:
        text += f", {counts['damaged videos']} videos damaged ({counts['lost frames']} frames not read)"
    if counts["drawing errors"]:
        text += f", {counts['drawing errors']} drawings not written"
    if skipped:
        text += f"; {skipped} images already recorded, skipped"
    return text + (f" -> {output}" if output else "")
