"""Exceptions raised for user errors.

Every error that a user can cause (a bad file, a wrong checkpoint, a missing weight file) is an
:class:`HrfaceError`.  Its message is one line that says what went wrong and what to do; the CLI
prints it without a traceback.
"""

from __future__ import annotations


class HrfaceError(Exception):
    """Base class of all user-facing errors of hrface."""


class ImageLoadError(HrfaceError):
    """An image could not be read or decoded (missing, empty, corrupt, truncated, not an image)."""


class ImageTooLargeError(ImageLoadError):
    """An image has more pixels than the configured cap."""


class CheckpointError(HrfaceError):
    """A checkpoint is unreadable, of the wrong kind, or does not match the model."""


class WeightsNotFoundError(HrfaceError):
    """A named model's weight file is not in the cache directory."""


class ConfigError(HrfaceError):
    """A model name, option or configuration value is invalid."""


class InputError(HrfaceError, ValueError):
    """An argument of an API call other than the image (face boxes, keypoints, a batch) is not what it accepts."""


class OutputError(HrfaceError):
    """An output file, folder or stream cannot be written (read-only place, disk full, closed pipe)."""

    @classmethod
    def cannot_write(cls, where: object, exc: OSError, hint: str = "choose a writable location") -> OutputError:
        """``"<where>: cannot write (<reason>[: <the path that failed>]); <hint>"`` for the ``OSError`` of a
        failed write (the path is named when it is not ``where`` itself, e.g. a file in the way)."""
        reason = os_reason(exc)
        if exc.filename is not None and not str(where).endswith(str(exc.filename)):
            reason += f": {exc.filename}"
        return cls(f"{where}: cannot write ({reason}); {hint}")


def one_line(text: object, limit: int = 200) -> str:
    """``text`` (or an exception's message) on one line: whitespace collapsed, cut to ``limit`` characters.

    An exception with an empty message gives its type name.
    """
    s = " ".join(str(text).split())
    if not s and isinstance(text, BaseException):
        s = type(text).__name__
    return s if len(s) <= limit else s[: limit - 1] + "…"


def os_reason(exc: OSError) -> str:
    """The reason of an ``OSError`` without the file name it repeats ("No space left on device")."""
    return one_line(exc.strerror or exc, 100)
