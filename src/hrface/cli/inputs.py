"""What ``hrface detect`` analyses: the inputs of its command line, with ``@LIST.txt`` files expanded and folders
searched for images and videos."""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import ConfigError, one_line
from ..io.files import IMAGE_EXTENSIONS, FolderIssue, walk_images
from ..video.reader import VIDEO_EXTENSIONS
from .outputs import Source

log = logging.getLogger("hrface")


def expand_lists(inputs: list[str]) -> list[str]:
    """``inputs`` with each ``@LIST.txt`` replaced by its lines (paths or URIs; blank lines and ``#`` comments
    skipped; relative paths are relative to the current folder, as on the command line).  A list without any
    path is a usage error."""
    expanded: list[str] = []
    for item in inputs:
        if not item.startswith("@"):
            expanded.append(item)
            continue
        try:
            lines = Path(item[1:]).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{item[1:]}: cannot read the list of images ({one_line(exc, 200)})") from None
        listed = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not listed:
            raise ConfigError(
                f"{item[1:]}: the list file is empty (no path or URI in it, only blank lines or # comments); "
                "put one image path or URI per line"
            )
        expanded += listed
    return expanded


def collect_images(inputs: list[str]) -> list[Source | FolderIssue]:
    """What to process, in order: files as given, folders searched for images and videos (:func:`walk_images`);
    a folder that cannot be listed stays in the list (it gets an error record).  Notes and input folders
    without images are warned about; no image at all is a usage error."""
    items: list[Source | FolderIssue] = []
    empty = []
    for item in inputs:
        folder = Path(item)
        if not folder.is_dir():
            items.append(Source(folder, None))
            continue
        count = len(items)
        for found in walk_images(folder, IMAGE_EXTENSIONS | VIDEO_EXTENSIONS):
            if isinstance(found, Path):
                items.append(Source(found, folder))
            elif found.error:
                items.append(found)
            else:
                log.warning(found.message)
        if len(items) == count:
            empty.append(item)
    extensions = ", ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
    if not items:
        raise ConfigError(f"no image or video files in {', '.join(inputs)} (searched for {extensions}); pass images")
    for item in empty:
        log.warning(f"{item}: no image or video files in this folder (searched for {extensions})")
    return items
