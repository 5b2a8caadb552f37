"""Screenshot of the ``hrface serve`` page in headless Chromium (Debian's chromium + chromium-driver, Selenium).

    python scripts/serve_page_screenshot.py docs/serve_page.png [--image PICTURE | --cartoon] [--size 1100x900]

Starts the server in this process on a free loopback port, opens ``/``, uploads ``--image`` (or, with
``--cartoon``, two cartoon faces drawn here: no photo of anyone) through the file input, waits for the answer
and saves a PNG of the window (reduced to 256 colours).  The README's ``docs/serve_page.png``:
``python scripts/serve_page_screenshot.py docs/serve_page.png --cartoon``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from hrface.serving import create_app
from hrface.serving.background import BackgroundServer


def cartoon_face(image: np.ndarray, cx: int, cy: int, s: int, skin: tuple[int, int, int]) -> None:
    """Draw a cartoon face (BGR) of height ~2·``s`` centred at (``cx``, ``cy``): the detector finds it."""
    hair, aa = (40, 50, 70), cv2.LINE_AA
    cv2.rectangle(image, (cx - int(0.3 * s), cy + int(0.85 * s)), (cx + int(0.3 * s), cy + int(1.5 * s)), skin, -1)
    for dx in (-1, 1):  # ears
        cv2.ellipse(image, (cx + dx * int(0.75 * s), cy), (int(0.1 * s), int(0.2 * s)), 0, 0, 360, skin, -1, aa)
    cv2.ellipse(image, (cx, cy), (int(0.75 * s), s), 0, 0, 360, skin, -1, aa)
    cv2.ellipse(image, (cx, cy - int(0.35 * s)), (int(0.8 * s), int(0.7 * s)), 0, 180, 360, hair, -1, aa)
    for dx in (-1, 1):  # eyes and brows
        ex, ey = cx + dx * int(0.3 * s), cy - int(0.1 * s)
        cv2.ellipse(image, (ex, ey), (int(0.16 * s), int(0.08 * s)), 0, 0, 360, (250, 250, 250), -1, aa)
        cv2.circle(image, (ex, ey), int(0.065 * s), (60, 40, 30), -1, aa)
        cv2.circle(image, (ex, ey), int(0.03 * s), (10, 10, 10), -1, aa)
        brow = (ex, ey - int(0.17 * s)), (int(0.18 * s), int(0.05 * s))
        cv2.ellipse(image, *brow, 0, 180, 360, hair, int(0.04 * s), aa)
    tip = cy + int(0.28 * s)
    nose = np.array([[cx, cy - int(0.05 * s)], [cx - int(0.1 * s), tip], [cx + int(0.1 * s), tip]])
    cv2.polylines(image, [nose.astype(np.int32)], False, (110, 130, 180), int(0.03 * s), aa)
    cv2.ellipse(image, (cx, cy + int(0.5 * s)), (int(0.25 * s), int(0.09 * s)), 0, 0, 180, (80, 80, 170), -1, aa)


def cartoon(path: Path) -> Path:
    """Two cartoon faces on a plain background, written to ``path``."""
    image = np.full((480, 720, 3), (200, 170, 120), np.uint8)
    image[330:] = (90, 110, 140)
    cartoon_face(image, 230, 220, 120, (150, 180, 225))
    cartoon_face(image, 520, 240, 100, (120, 160, 200))
    cv2.imwrite(str(path), cv2.GaussianBlur(image, (5, 5), 1.5))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--image", type=Path, help="a picture to upload first (default: none, the empty page)")
    parser.add_argument("--cartoon", action="store_true", help="upload two cartoon faces drawn by this script")
    parser.add_argument("--size", default="1100x900", help="window size WxH (default 1100x900)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile, BackgroundServer(create_app()) as server:
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                     f"--window-size={width},{height}", f"--user-data-dir={profile}"):  # fmt: skip
            options.add_argument(flag)
        server.wait_ready()
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        try:
            driver.get(server.url + "/")
            if args.cartoon:
                args.image = cartoon(Path(profile) / "cartoon.png")
            if args.image is not None:
                driver.find_element("id", "file").send_keys(str(args.image.resolve()))
                canvas = driver.find_element("id", "canvas")
                WebDriverWait(driver, 60).until(lambda _: canvas.get_attribute("data-state") in ("done", "error"))
            args.output.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.output))
        finally:
            driver.quit()
    Image.open(args.output).convert("RGB").save(args.output, optimize=True)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
