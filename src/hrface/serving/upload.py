"""The uploaded image of a request, read with a bound: multipart field ``image``, or the raw body.

The body is never held beyond the limit: a ``Content-Length`` above it is refused before any of the body is
read (a client that sent ``Expect: 100-continue`` then never sends it), and a body without one is counted as it
arrives and refused as soon as it passes the limit.  uvicorn discards what the client still sends after that.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message, Receive

MULTIPART_OVERHEAD = 64 * 1024
"""Bytes a multipart body may hold beyond the image part: boundaries, part headers, small fields."""
RAW_TYPES = ("image/", "application/octet-stream")


class UploadError(Exception):
    """A request whose upload cannot be used: ``status`` is the HTTP status, the message one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def too_large(limit: int) -> UploadError:
    return UploadError(413, f"upload too large: more than {limit} bytes ({limit / 2**20:g} MiB); send a smaller image")


def _bounded(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises :func:`too_large` as soon as the body passes ``limit`` bytes."""
    seen = 0

    async def bounded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit)
        return message

    return bounded


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        raise UploadError(400, f"bad Content-Length header {value[:40]!r}") from None


async def read_upload(request: Request, limit: int) -> tuple[bytes, str | None]:
    """The image bytes of a ``POST /v1/detect`` and the uploaded file's name (None for a raw body).

    Raises :class:`UploadError`: 413 past ``limit`` bytes, 415 for a content type that is neither
    ``multipart/form-data`` nor ``image/*`` (or ``application/octet-stream``), 422 for a multipart body without
    an ``image`` file or a malformed one, and for an empty upload."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    multipart = media == "multipart/form-data"
    if not multipart and not media.startswith(RAW_TYPES):
        shown = media or "none"
        raise UploadError(
            415,
            f"unsupported content type {shown[:60]!r}; send the image as multipart/form-data field 'image' "
            "or as the raw body with an image/* content type",
        )
    body_limit = limit + MULTIPART_OVERHEAD if multipart else limit
    declared = _declared_length(request)
    if declared is not None and declared > body_limit:
        raise too_large(limit)
    receive = _bounded(request.receive, body_limit)
    data, name = await (_read_multipart(request, receive, limit) if multipart else _read_raw(receive))
    if len(data) > limit:
        raise too_large(limit)
    if not data:
        raise UploadError(422, "the upload is empty (0 bytes); send an image file")
    return data, name


async def _read_raw(receive: Receive) -> tuple[bytes, None]:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise UploadError(400, "the client disconnected during the upload")
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body), None


async def _read_multipart(request: Request, receive: Receive, limit: int) -> tuple[bytes, str | None]:
    try:
        form = await Request(request.scope, receive).form(max_files=1, max_fields=16)
    except HTTPException as exc:  # Starlette's answer to a malformed multipart body
        raise UploadError(422, f"malformed multipart body: {exc.detail}") from None
    try:
        item: Any = form.get("image")
        if not isinstance(item, UploadFile):
            raise UploadError(422, "no file in multipart field 'image'; send the photo as -F image=@photo.jpg (curl)")
        return await item.read(limit + 1), item.filename
    finally:
        await form.close()
