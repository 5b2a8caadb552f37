"""The FastAPI application of ``hrface serve``: ``POST /v1/detect``, ``GET /health``, ``GET /v1/models``, the page.

Every error is JSON ``{"error": "<one line>"}`` with its status (see :func:`create_app`); a bad request never
stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from .._version import __version__
from ..errors import HrfaceError, ImageTooLargeError, one_line
from ..runtime import FaceAnalyzer
from ..runtime.detector import parse_max_size
from .inference import KEEP, Deadline, Expired, InferencePool, RequestOptions, analyze_upload, safe_name
from .options import (
    DEFAULT_MAX_FACES,
    DEFAULT_MAX_SIZE_CAP,
    DEFAULT_MIN_THRESHOLD,
    Limits,
    ServeOptions,
    default_threads,
    describe_loaded,
    registry_models,
)
from .upload import UploadError, read_upload

log = logging.getLogger("hrface.serve")
Source = ServeOptions | FaceAnalyzer | Callable[[], FaceAnalyzer]
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}}
        },
        "image/*": {"schema": {"type": "string", "format": "binary"}},
    },
}


class ServerState:
    """The models (loaded once, in the background at startup), the pool and the counters of one app."""

    def __init__(self, source: Source, limits: Limits, names: Mapping[str, str | None]) -> None:
        self.source, self.limits, self.names = source, limits, dict(names)
        self.analyzer: FaceAnalyzer | None = source if isinstance(source, FaceAnalyzer) else None
        self.load_error: str | None = None
        self.pool: InferencePool | None = None
        self.in_flight = 0
        self.models: dict[str, Any] | None = None

    def load(self) -> None:
        """Build the analyzer (unless given), run it once on a blank image (first-run allocations), describe it."""
        try:
            analyzer = self.analyzer
            if analyzer is None:
                analyzer = self.source.build() if isinstance(self.source, ServeOptions) else self.source()
            with contextlib.suppress(Exception):  # a warm-up run (first-run allocations); its failure is no error
                analyzer.analyze(np.zeros((32, 32, 3), np.uint8))
            self.models = {
                "detector": describe_loaded(analyzer.detector, self.names.get("detector")),
                "landmarker": describe_loaded(analyzer.landmarker, self.names.get("landmarker")),
            }
            self.analyzer = analyzer
        except Exception as exc:  # a model that cannot load: the server stays up and says so in /health
            self.load_error = str(exc) if isinstance(exc, HrfaceError) else f"{type(exc).__name__}: {one_line(exc)}"
            log.error("hrface serve: models not loaded: %s", self.load_error)

    @property
    def ready(self) -> bool:
        return self.models is not None


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": one_line(message, 500)}, status_code=status, headers=dict(headers or {}))


def create_app(
    source: Source | None = None,
    *,
    max_upload_mb: float = 20.0,
    timeout_s: float = 30.0,
    workers: int = 1,
    max_queue: int = 32,
    max_pixels: int | None = None,
    max_size_cap: int = DEFAULT_MAX_SIZE_CAP,
    min_threshold: float = DEFAULT_MIN_THRESHOLD,
    max_faces: int = DEFAULT_MAX_FACES,
    model_names: Mapping[str, str | None] | None = None,
) -> FastAPI:
    """The app.  ``source``: :class:`ServeOptions` (default: the shipped models), a ready :class:`FaceAnalyzer`,
    or a function that builds one; models load once, in a thread, when the app starts (``/health`` is 503
    until then).  Limits: see :class:`~hrface.serving.options.Limits`.  ``model_names`` names the loaded models
    in ``/v1/models`` when ``source`` is not :class:`ServeOptions`.

    Statuses of ``POST /v1/detect``: 200 the record; 413 upload over ``max_upload_mb`` or image over the pixel
    cap; 415 not an image content type; 422 not a decodable image, empty, bad options; 503 not ready, busy
    (``max_queue`` requests in flight) or slower than ``timeout_s`` (its analysis stops at its next stage);
    500 an internal error.  A request's ``max_size`` above ``max_size_cap`` (or ``none``) and ``threshold`` below
    ``min_threshold`` are brought within them, and at most ``max_faces`` faces are returned: the record's
    ``capped`` says so."""
    if source is None:
        source = ServeOptions(threads=default_threads(workers, None))
    limits = Limits(max_upload_mb, timeout_s, workers, max_queue, max_pixels, max_size_cap, min_threshold, max_faces)
    names = source.model_names() if isinstance(source, ServeOptions) else model_names or {}
    state = ServerState(source, limits, names)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.pool = InferencePool(limits.workers)
        loading = asyncio.create_task(asyncio.to_thread(state.load))
        try:
            yield
        finally:
            loading.cancel()
            state.pool.close()

    app = FastAPI(
        title="hrface",
        version=__version__,
        description="Face detection (RetinaFace), 68 landmarks (HRNetV2) and head pose over HTTP.",
        lifespan=lifespan,
    )
    app.state.hrface = state

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()]
        return error(422, "invalid request: " + "; ".join(parts))

    @app.get("/health", summary="200 once the models are loaded, 503 before (or if they failed to load)")
    async def health() -> JSONResponse:
        if state.ready:
            running = state.pool.running if state.pool is not None else 0
            return JSONResponse(
                {"status": "ok", "workers": limits.workers, "in_flight": state.in_flight, "running": running}
            )
        if state.load_error is not None:
            return JSONResponse({"status": "failed", "error": state.load_error}, status_code=503)
        return JSONResponse({"status": "loading"}, status_code=503)

    @app.get("/v1/models", summary="known models (names, sha256), the loaded ones, backend and limits")
    async def models() -> dict[str, Any]:
        loaded = state.models or {}
        detector = loaded.get("detector") or {}
        return {
            "ready": state.ready,
            "backend": detector.get("backend"),
            "device": detector.get("device"),
            "loaded": loaded or None,
            "models": registry_models(),
            "limits": limits.to_dict(),
        }

    @app.post(
        "/v1/detect",
        summary="faces, keypoints, landmarks and pose of one image (the record of hrface detect)",
        openapi_extra={"requestBody": UPLOAD_BODY},
    )
    async def detect(
        request: Request,
        threshold: float | None = Query(
            None, ge=0.0, le=1.0, description="minimum face score (server default; raised to the server's minimum)"
        ),
        landmarks: bool = Query(True, description="false: detection only (landmarks null)"),
        max_size: str | None = Query(
            None, description="'auto', 'none' or pixels >= 32 (server default; at most the server's cap)"
        ),
        pose: bool = Query(True, description="false: pose null"),
        align: Literal["arcface", "ffhq"] | None = Query(None, description="add each face's align_matrix"),
        crop_size: int | None = Query(None, ge=16, le=4096, description="with align (112 arcface, 512 ffhq)"),
    ) -> Any:
        if not state.ready or state.pool is None:
            why = f"models failed to load: {state.load_error}" if state.load_error else "models are loading"
            return error(503, f"not ready ({why}); retry later", {"Retry-After": "1"})
        try:
            options = RequestOptions(threshold, landmarks, _max_size(max_size), pose, align, crop_size)
        except ValueError as exc:
            return error(422, f"invalid request: max_size: {exc}")
        if state.in_flight >= limits.max_queue:
            return error(503, f"busy: {limits.max_queue} requests in flight; retry later", {"Retry-After": "1"})
        state.in_flight += 1
        phase = "the upload did not arrive"
        deadline = Deadline(limits.timeout_s)  # the analysis stops at its next stage once the request has timed out
        try:
            async with asyncio.timeout(limits.timeout_s):
                data, name = await read_upload(request, limits.max_upload_bytes)
                phase = "the analysis did not finish"
                return await state.pool.run(
                    analyze_upload, state.analyzer, data, safe_name(name), options, limits, deadline
                )
        except (TimeoutError, Expired):
            return error(503, f"timeout: {phase} within {limits.timeout_s:g} s; retry later", {"Retry-After": "1"})
        except UploadError as exc:
            return error(exc.status, str(exc))
        except ClientDisconnect:
            return error(400, "the client disconnected during the upload")
        except ImageTooLargeError as exc:
            return error(413, str(exc))
        except HrfaceError as exc:  # not a decodable image, or an option the models refuse
            return error(422, str(exc))
        except Exception as exc:
            log.exception("hrface serve: internal error on /v1/detect")
            return error(500, f"internal error ({type(exc).__name__}: {one_line(exc, 200)})")
        finally:
            deadline.cancel()
            state.in_flight -= 1

    static = files("hrface.serving") / "static"

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app


def _max_size(text: str | None) -> int | str | None:
    """The ``max_size`` query option: None (absent) keeps the server's; 'auto', 'none' or pixels >= 32."""
    if text is None:
        return KEEP
    return parse_max_size(text)  # ValueError: the request's 422
