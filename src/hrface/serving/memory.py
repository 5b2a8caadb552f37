"""Hand freed memory back to the system after a large request (glibc's ``malloc_trim``; a no-op elsewhere).

glibc keeps memory a thread freed in that thread's arena, and after the first large buffer is freed it raises its
mmap threshold (to 32 MiB), so later buffers of a decoded photo come from the arenas too: after a few large
requests from many threads the server held about 1 GB it no longer used.  :func:`trim` returns it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache
from typing import Any

TRIM_PIXELS = 4_000_000
"""A request whose image has at least this many pixels is followed by :func:`trim`."""


@cache
def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None  # musl has none
    except OSError:
        return None


def trim() -> bool:
    """Give the free pages of every malloc arena back to the system; False where that cannot be done."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
