"""``hrface serve``: an HTTP API (FastAPI) and a web page over :class:`~hrface.FaceAnalyzer`.

Needs the ``hrface[serve]`` extra (fastapi, uvicorn, python-multipart).  :mod:`.options` and :mod:`.inference`
import no web framework; :func:`create_app` (in :mod:`.app`) does.

>>> from hrface.serving import create_app, ServeOptions
>>> app = create_app(ServeOptions(landmarker=None), workers=2, timeout_s=10)   # run with uvicorn
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServeOptions", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ServeOptions":
        from .options import ServeOptions

        return ServeOptions
    raise AttributeError(f"module 'hrface.serving' has no attribute {name!r}")
