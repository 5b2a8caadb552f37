"""A real uvicorn server in a background thread, on a free loopback port: for tests, scripts and notebooks.

>>> with BackgroundServer(create_app()) as server:
...     server.wait_ready()                 # /health answers 200
...     print(server.url)                   # http://127.0.0.1:PORT
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import uvicorn


class BackgroundServer:
    """uvicorn serving ``app`` on ``host`` (loopback) and a port chosen by the system, in a daemon thread.

    Signal handlers are left alone (uvicorn installs none outside the main thread).  Use as a context
    manager: entering starts it and waits until it listens; leaving stops it."""

    def __init__(self, app: Any, host: str = "127.0.0.1", log_level: str = "warning") -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the uvicorn server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()

    def health(self) -> tuple[int, dict[str, Any]]:
        """Status and JSON of ``GET /health``."""
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def wait_ready(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until ``/health`` answers 200 (models loaded); RuntimeError if they failed or time ran out."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.health()
            if status == 200:
                return body
            if body.get("status") == "failed" or time.monotonic() > deadline:
                raise RuntimeError(f"the server is not ready: {body}")
            time.sleep(0.02)
