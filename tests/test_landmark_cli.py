"""``hrface train-landmarks`` / ``eval-landmarks`` and the config's annotation sources, on generated 300W data."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from hrface.cli.main import main
from hrface.data.landmarks import write_pts
from hrface.errors import ConfigError
from hrface.training.landmarks import SourceSpec, build_samples, load_config, read_source
from hrface.training.landmarks.config import DataConfig
from hrface.training.landmarks.sources import oversample, repeat_subsets

SIDE = 96


def write_300w_folder(folder: Path, photos: int = 6) -> None:
    """Noise photos with bright dots at 68 points; one .pts per face (photo 0 has two faces)."""
    folder.mkdir(parents=True)
    g = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    for i in range(photos):
        image = g.integers(0, 90, (SIDE, SIDE, 3), dtype=np.uint8)
        faces = 2 if i == 0 else 1
        for k in range(faces):
            centre = g.uniform(35, 60, 2)
            points = np.stack([np.cos(t) * (1 + 0.3 * np.sin(3 * t)), np.sin(t)], 1) * g.uniform(15, 20) + centre
            for x, y in np.rint(points).astype(int):
                image[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = 255
            write_pts(folder / f"img{i}_{k + 1}.pts", points)
        cv2.imwrite(str(folder / f"img{i}.png"), image)


def write_tiny_config(folder: Path) -> Path:
    """A tiny training config (W4 HRNet, 64 px, one epoch) over a generated 300W folder, in ``folder``."""
    write_300w_folder(folder / "data" / "synth")
    config = {
        "data": {"train": [{"format": "300w", "path": "data/synth"}], "val_fraction": 0.34, "split_seed": 1},
        "model": {"width": 4, "num_landmarks": 68},
        "input_size": 64,
        "heatmap_size": 16,
        "batch_size": 2,
        "workers": 0,
        "device": "cpu",
        "schedule": {"epochs": 1, "lr_steps": [1]},
        "output_dir": "run",
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    return write_tiny_config(tmp_path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``hrface train-landmarks CONFIG -q`` of a tiny config, run once for the tests that evaluate its model:
    the config file (the run is in ``run`` beside it) and what the command printed on stdout."""
    import contextlib
    import io

    config = write_tiny_config(tmp_path_factory.mktemp("trained"))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["train-landmarks", str(config), "-q"]) == 0
    return config, out.getvalue()


def test_sources_read_300w_folders_and_split_by_photo(tiny_config: Path) -> None:
    config = load_config(tiny_config)
    train, val = build_samples(config)
    assert len(train) + len(val) == 7
    assert {s.photo for s in train}.isdisjoint({s.photo for s in val})
    assert all(s.points.shape == (68, 2) for s in train)
    with pytest.raises(ConfigError, match="unknown source format 'nope'"):
        read_source(SourceSpec(format="nope", path="x"))
    with pytest.raises(ConfigError, match="bad options"):
        read_source(SourceSpec(format="300w", path=str(tiny_config.parent / "data" / "synth"), options={"x": 1}))


def test_repeat_oversamples_training_faces_of_a_subset(tiny_config: Path, capsys) -> None:
    train, _ = build_samples(load_config(tiny_config))
    repeated = repeat_subsets(train, {"synth": 3})
    assert len(repeated) == 3 * len(train) and [s.image for s in repeated[:3]] == [train[0].image] * 3
    with pytest.raises(ConfigError, match="no training face has subset 'afw'"):
        repeat_subsets(train, {"afw": 2})
    with pytest.raises(ConfigError, match="positive integer"):
        repeat_subsets(train, {"synth": 0})
    # From the command line: the run trains on the repeated faces, the validation faces stay as they are.
    assert main(["train-landmarks", str(tiny_config), "-q", "--max-steps", "1", "--set", "data.repeat={synth: 2}"]) == 0
    assert f"training on {len(train)} faces ({2 * len(train)} per epoch with oversampling)" in capsys.readouterr().out


def test_yaw_repeat_oversamples_turned_heads() -> None:
    """data.yaw_repeat lists each face by its annotated head yaw: 20° or more twice, 35° or more three times."""
    from conftest import shared_path
    from hrface.data.landmarks import read_300w_folder
    from hrface.geometry.pose import face_pose
    from hrface.io.image import image_size
    from hrface.landmarks.layouts import get_layout

    faces = read_300w_folder(shared_path("data", "300w", "afw"))[:40]
    layout = get_layout(68)
    yaws = [abs(face_pose(f.points, layout.five_points(f.points), image_size(f.image)).yaw) for f in faces]
    assert any(y >= 35 for y in yaws) and any(20 <= y < 35 for y in yaws) and any(y < 20 for y in yaws)
    out = oversample(faces, DataConfig(repeat={"afw": 2}, yaw_repeat={20: 2, 35: 3}))
    for face, yaw in zip(faces, yaws, strict=True):
        expected = 2 * (3 if yaw >= 35 else 2 if yaw >= 20 else 1)
        assert sum(o is face for o in out) == expected
    assert oversample(faces, DataConfig()) == faces
    with pytest.raises(ConfigError, match="yaw_repeat"):
        oversample(faces, DataConfig(yaw_repeat={120: 2}))


def test_train_oversamples_as_the_config_says(tiny_config: Path) -> None:
    # The Python API applies data.repeat too: one epoch of batch 2 makes ceil(3 n / 2) steps, not ceil(n / 2).
    from hrface.training.landmarks.trainer import train

    config = load_config(tiny_config)
    config.data.repeat = {"synth": 3}
    config.output_dir = str(tiny_config.parent / "repeat_run")
    samples, val = build_samples(config)
    result = train(config, samples, val, progress=False)
    assert result["global_step"] == -(-3 * len(samples) // config.batch_size) != -(-len(samples) // config.batch_size)


def test_train_then_evaluate_from_the_command_line(trained: tuple[Path, str], tmp_path: Path, capsys) -> None:
    tiny_config, out = trained
    run = tiny_config.parent / "run"
    assert (run / "last.pt").is_file() and (run / "model.safetensors").is_file()
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 1 and float(rows[0]["train_loss"]) > 0
    assert "best validation NME (inter-ocular)" in out

    result_path, plot_path = tmp_path / "eval.json", tmp_path / "ced.png"
    args = ["eval-landmarks", str(tiny_config), "--model", str(run / "model.safetensors"), "--boxes", "gt"]
    assert main([*args, "--output", str(result_path), "--plot", str(plot_path)]) == 0
    table = capsys.readouterr().out
    assert "gt boxes" in table and "NME (%)" in table
    result = json.loads(result_path.read_text())
    metrics = result["gt"]["metrics"]["inter-ocular"]["all"]
    assert metrics["count"] == result["faces"] and metrics["missed"] == 0 and metrics["nme"] > 0
    per_face = result["gt"]["per_face"]  # each face's NME, in the order of "images"; their mean is the NME
    assert len(per_face) == len(result["images"]) == result["faces"]
    assert abs(sum(per_face) / len(per_face) - metrics["nme"]) < 1e-5
    assert cv2.imread(str(plot_path)).shape == (600, 800, 3)


def test_detector_boxes_need_a_detector(tiny_config: Path, capsys) -> None:
    args = ["eval-landmarks", str(tiny_config), "--model", "x.pth", "--boxes", "detector"]
    assert main(args) == 2
    assert "needs a detector" in capsys.readouterr().err


def test_plot_training_draws_the_metrics_csv(tiny_config: Path, capsys) -> None:
    run = tiny_config.parent / "run"
    run.mkdir()
    rows = "epoch,train_loss,val_loss,val_nme,lr,seconds\n1,0.2,0.1,0.09,1e-3,5\n2,0.1,,,1e-3,5\n"
    (run / "metrics.csv").write_text(rows)
    assert main(["plot-training", str(run)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {run / 'training.png'}"
    image = cv2.imread(str(run / "training.png"))
    assert image.shape == (600, 800, 3) and (image < 80).all(axis=2).sum() > 500  # text, ticks and frame
    assert (np.abs(image.astype(int) - (180, 119, 31)).sum(axis=2) < 30).sum() > 50  # the val_nme dot, tab10 blue
    out = tiny_config.parent / "losses.png"
    assert main(["plot-training", str(run), "--column", "train_loss", "--column", "val_loss", "-o", str(out)]) == 0
    losses = cv2.imread(str(out))
    assert losses.shape == (600, 800, 3) and not np.array_equal(losses, image)
    for bgr in [(180, 119, 31), (14, 127, 255)]:  # a line (blue) and a one-epoch dot (orange), tab10 colours
        assert (np.abs(losses.astype(int) - bgr).sum(axis=2) < 30).sum() > 50
    capsys.readouterr()
    assert main(["plot-training", str(run), "--column", "nope"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    assert main(["plot-training", str(tiny_config.parent / "missing")]) == 2
    assert "cannot read the metrics CSV" in capsys.readouterr().err


def test_plot_training_without_matplotlib_names_the_plot_extra(tmp_path: Path, monkeypatch, capsys) -> None:
    from hrface.evaluation.training_plot import plot_training
    from hrface.extras import MissingExtraError

    (tmp_path / "metrics.csv").write_text("epoch,train_loss,val_nme\n1,0.2,0.09\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=r"drawing the training curves needs the hrface\[plot\] extra"):
        plot_training(tmp_path)
    assert main(["plot-training", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("hrface: error: drawing the training curves needs")
    assert 'pip install "hrface[plot]"' in err and "Traceback" not in err
    assert not (tmp_path / "training.png").exists()


def test_pack_faces_then_train_from_the_pack(tiny_config: Path, capsys) -> None:
    pack = tiny_config.parent / "pack"
    assert main(["pack-faces", str(tiny_config), str(pack), "--size", "64"]) == 0
    assert "packed 5 training and 2 validation faces" in capsys.readouterr().out
    config = load_config(tiny_config)
    train_direct, val_direct = build_samples(config)
    config.pack = str(pack)
    train_packed, val_packed = build_samples(config)
    assert [s.photo for s in train_packed] == [s.photo for s in train_direct]
    assert [s.photo for s in val_packed] == [s.photo for s in val_direct]
    # the packed points sit where the photo's points sit in the cut-out: compare one crop made both ways
    from hrface.landmarks.crop import crop_from_box

    for direct, packed in zip(train_direct, train_packed, strict=True):
        (_, side_direct), (_, side_packed) = crop_from_box(direct.crop_box()), crop_from_box(packed.crop_box())
        scale = side_packed / side_direct
        np.testing.assert_allclose(
            packed.points - packed.points.mean(0), (direct.points - direct.points.mean(0)) * scale, atol=2e-3
        )
        assert cv2.imread(str(packed.image)).shape == (64, 64, 3)
    data = yaml.safe_load(tiny_config.read_text())
    data["pack"] = "pack"
    tiny_config.write_text(yaml.safe_dump(data))
    assert main(["train-landmarks", str(tiny_config), "-q"]) == 0
    assert "training on 5 faces, validating on 2" in capsys.readouterr().out


def test_peer_dlib_absent_is_skipped_with_a_message(trained: tuple[Path, str], capsys) -> None:
    pytest.importorskip("torch")
    try:
        import dlib  # noqa: F401

        pytest.skip("dlib is installed here; this test checks the message when it is absent")
    except ImportError:
        pass
    tiny_config = trained[0]
    run = tiny_config.parent / "run"
    args = ["eval-landmarks", str(tiny_config), "--model", str(run / "model.safetensors"), "--boxes", "gt"]
    assert main([*args, "--peer", "dlib"]) == 0
    captured = capsys.readouterr()
    assert "gt boxes" in captured.out
    assert "skipped peer dlib: the dlib peer needs dlib: pip install dlib-bin face-recognition-models" in captured.err


def test_eval_landmarks_on_rotated_photos_pools_the_angles(trained: tuple[Path, str], tmp_path: Path, capsys) -> None:
    tiny_config = trained[0]
    run = tiny_config.parent / "run"
    out = tmp_path / "rotated.json"
    args = ["eval-landmarks", str(tiny_config), "--model", str(run / "model.safetensors"), "--boxes", "gt"]
    assert main([*args, "--rotate", "-30", "--rotate", "30", "--flip", "-o", str(out)]) == 0
    assert "rotated in-plane by -30, 30 degrees: 4 faces" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["rotate"] == [-30.0, 30.0] and result["faces"] == 4


def test_set_overrides_config_values_before_checking_them(tiny_config: Path, capsys) -> None:
    overrides = ["loss=awing", "augmentation.rotation=45", "schedule.lr_steps=[3]", "optimizer.lr=1e-4"]
    config = load_config(tiny_config, overrides)
    assert (config.loss, config.augmentation.rotation, config.schedule.lr_steps) == ("awing", 45, [3])
    assert config.optimizer.lr == 1e-4
    with pytest.raises(ConfigError, match="loss must be"):
        load_config(tiny_config, ["loss=l2"])
    with pytest.raises(ConfigError, match="unknown config key augmentation.'nope'"):
        load_config(tiny_config, ["augmentation.nope=1"])
    with pytest.raises(ConfigError, match="must look like KEY=VALUE"):
        load_config(tiny_config, ["loss"])
    out = tiny_config.parent / "run_set"
    assert main(["train-landmarks", str(tiny_config), "-q", "--set", "loss=awing", "--output-dir", str(out)]) == 0
    assert (out / "model.safetensors").is_file()
    assert main(["train-landmarks", str(tiny_config), "-q", "--set", "loss=l2"]) == 2
    assert "loss must be 'mse' or 'awing'" in capsys.readouterr().err
