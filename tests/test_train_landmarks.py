"""Landmark training: dataset crops/targets/augmentation, trainer outputs, exact resume, YAML config."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import tiny_landmark_config
from hrface.data.landmarks import LandmarkSample, split_by_photo
from hrface.errors import ConfigError
from hrface.landmarks.crop import apply_affine, crop_to_heatmap
from hrface.landmarks.heatmaps import decode_heatmaps
from hrface.landmarks.layouts import LAYOUT_68
from hrface.models.registry import create_model
from hrface.runtime.landmarker import RGB_MEAN, RGB_STD
from hrface.training.landmarks import (
    SAMPLE_READERS,
    LandmarkTrainDataset,
    SourceSpec,
    build_samples,
    config_from_dict,
    heatmap_loss,
    load_config,
    train,
)
from hrface.training.landmarks.trainer import (
    BEST_CHECKPOINT,
    BEST_WEIGHTS,
    LAST_CHECKPOINT,
    METRICS_CSV,
    EpochSampler,
)

REPO = Path(__file__).resolve().parents[1]
SIZE = 96  # synthetic image side (pixels)


def mirrored_shape(seed: int = 0) -> np.ndarray:
    """A (68, 2) shape in [-1, 1]² that is mirror-symmetric under the 300W flip pairs (left = smaller x)."""
    g = np.random.default_rng(seed)
    shape = np.zeros((68, 2))
    shape[:, 1] = g.uniform(-0.9, 0.9, 68)
    for a, b in LAYOUT_68.flip_pairs:
        d = g.uniform(0.2, 0.9)
        shape[a], shape[b] = (-d, shape[a, 1]), (d, shape[a, 1])
    return shape


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> list[LandmarkSample]:
    """6 noise images with bright dots at 68 landmark positions and boxes around them (2 per photo)."""
    root = tmp_path_factory.mktemp("faces")
    g = np.random.default_rng(1)
    out = []
    for i in range(6):
        image = g.integers(0, 100, (SIZE, SIZE, 3), dtype=np.uint8)
        points = mirrored_shape() * g.uniform(25, 32) + g.uniform(44, 52, 2)
        for x, y in np.rint(points).astype(int):
            image[y - 1 : y + 2, x - 1 : x + 2] = 255
        path = root / f"face{i}.png"
        cv2.imwrite(str(path), image)
        box = np.concatenate([points.min(0), points.max(0)]) + g.uniform(-2, 2, 4)
        out.append(LandmarkSample(image=path, points=points, box=box, photo=f"photo{i // 2}", subset="synth"))
    return out


# --- dataset ------------------------------------------------------------------------------------------


def test_dataset_shapes_targets_and_crop_agree(samples, tmp_path):
    ds = LandmarkTrainDataset(samples, 68, train=True, config=tiny_landmark_config(tmp_path))
    augmented = 0
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
            assert item["heatmaps"].shape == (68, 16, 16) and item["target_weight"].shape == (68,)
            assert item["points_crop"].shape == (68, 2) and item["matrix"].shape == (2, 3)
            assert int(item["index"]) == i
            scale, rotation, flip, _ = ds.augmentation(i)
            augmented += rotation != 0.0
            expected = apply_affine(samples[i].points, item["matrix"].numpy())
            expected = expected[LAYOUT_68.flip_permutation()] if flip else expected
            np.testing.assert_allclose(item["points_crop"].numpy(), expected, atol=1e-4)
            # the targets peak at the transformed points
            hm_points = crop_to_heatmap(item["points_crop"].numpy(), 16, 64)
            peaks, _ = decode_heatmaps(item["heatmaps"][None].numpy(), "dark", ds.sigma)
            valid = item["target_weight"].numpy() > 0
            assert valid.sum() > 30
            np.testing.assert_allclose(peaks[0][valid], hm_points[valid], atol=0.05)
            assert not item["heatmaps"][~valid].any()
            # the crop shows the drawn dots where the transformed points are
            rgb = item["image"].numpy() * np.asarray(RGB_STD)[:, None, None] + np.asarray(RGB_MEAN)[:, None, None]
            uv = np.rint(item["points_crop"].numpy()).astype(int)
            inside = np.all((uv >= 0) & (uv < 64), axis=1)
            assert np.median(rgb[:, uv[inside, 1], uv[inside, 0]].mean(0)) > 0.7
    assert augmented > 0


def test_flip_swaps_left_and_right_points(samples, tmp_path):
    config = tiny_landmark_config(tmp_path, augmentation={"scale_factor": 0.0, "rotation_prob": 0.0, "flip": True})
    ds = LandmarkTrainDataset(samples, 68, train=True, config=config)
    by_flip = {}
    for epoch in range(20):
        ds.set_epoch(epoch)
        by_flip.setdefault(ds.augmentation(0)[2], ds[0]["points_crop"].numpy())
    plain, flipped = by_flip[False], by_flip[True]
    # new point 36 (image-left outer eye corner) is old point 45 mirrored: x -> S - 1 - x
    np.testing.assert_allclose(flipped[36], [63 - plain[45, 0], plain[45, 1]], atol=1e-4)
    np.testing.assert_allclose(flipped[:, 0], 63 - plain[LAYOUT_68.flip_permutation(), 0], atol=1e-4)
    assert flipped[36, 0] < flipped[45, 0]  # left stays left


def test_dataset_is_deterministic_per_seed_epoch_index(samples, tmp_path):
    a = LandmarkTrainDataset(samples, 68, train=True, config=tiny_landmark_config(tmp_path))
    b = LandmarkTrainDataset(samples, 68, train=True, config=tiny_landmark_config(tmp_path))
    a.set_epoch(3)
    b.set_epoch(3)
    first, second = a[4], b[4]
    for key in first:
        assert torch.equal(first[key], second[key]), key
    b.set_epoch(4)
    assert not torch.equal(first["matrix"], b[4]["matrix"])
    val = LandmarkTrainDataset(samples, 68, train=False, config=tiny_landmark_config(tmp_path))
    assert val.augmentation(2)[:3] == (1.0, 0.0, False) and not val.augmentation(2)[3].any()


def test_batches_do_not_depend_on_worker_count(samples, tmp_path):
    ds = LandmarkTrainDataset(samples, 68, train=True, config=tiny_landmark_config(tmp_path))
    ds.set_epoch(1)
    batches = [
        list(torch.utils.data.DataLoader(ds, batch_size=3, sampler=EpochSampler(len(ds), 0, 1), num_workers=workers))
        for workers in (0, 2)
    ]
    assert EpochSampler(len(ds), 0, 1).order != EpochSampler(len(ds), 0, 2).order  # reshuffled per epoch
    for one, other in zip(*batches, strict=True):
        assert all(torch.equal(one[key], other[key]) for key in one)


# --- trainer ------------------------------------------------------------------------------------------


def test_training_steps_reduce_loss_on_a_repeated_batch(samples, tmp_path):
    torch.manual_seed(0)
    ds = LandmarkTrainDataset(samples[:3], 68, train=True, config=tiny_landmark_config(tmp_path))
    batch = torch.utils.data.default_collate([ds[i] for i in range(3)])
    from hrface.models.hrnet import HRNet

    model = HRNet(68, width=4).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss = heatmap_loss(model(batch["image"]), batch["heatmaps"], batch["target_weight"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


def test_train_writes_checkpoints_metrics_and_weights(samples, tmp_path):
    config = tiny_landmark_config(tmp_path, schedule={"epochs": 1})
    result = train(config, samples[:4], samples[4:], progress=False)
    run = Path(config.output_dir)
    for name in (LAST_CHECKPOINT, BEST_CHECKPOINT, BEST_WEIGHTS, METRICS_CSV):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / METRICS_CSV).open()))
    assert len(rows) == 1 and rows[0]["epoch"] == "1"
    assert all(math.isfinite(float(rows[0][k])) for k in ("train_loss", "val_loss", "val_nme", "lr"))
    assert result["finished"] and result["global_step"] == 2 and result["best_epoch"] == 1
    model = create_model(run / BEST_WEIGHTS, expect="hrnet")
    assert model.num_landmarks == 68
    with pytest.raises(ConfigError, match="exists"):
        train(config, samples[:4], samples[4:], progress=False)


def test_resume_is_exact(samples, tmp_path):
    """2 epochs straight == stopped mid-epoch 1, resumed to the end of epoch 1, resumed to the end."""
    train_set, val_set = samples[:4], samples[4:]  # batch 3: 2 steps per epoch (3 + 1 faces)
    straight = tiny_landmark_config(tmp_path / "a")
    train(straight, train_set, val_set, progress=False)
    pieces = tiny_landmark_config(tmp_path / "b")
    assert train(pieces, train_set, val_set, max_steps=1, progress=False)["epoch"] == 0
    assert train(pieces, train_set, val_set, resume=True, max_steps=2, progress=False)["epoch"] == 1
    result = train(pieces, train_set, val_set, resume=True, progress=False)
    assert result["finished"] and result["global_step"] == 4

    a = torch.load(Path(straight.output_dir) / LAST_CHECKPOINT, weights_only=True)
    b = torch.load(Path(pieces.output_dir) / LAST_CHECKPOINT, weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key in ("train_loss", "val_loss", "val_nme", "lr"):
        assert [r[key] for r in a["state"]["history"]] == [r[key] for r in b["state"]["history"]]
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 2


def test_precision_bf16_autocasts_on_the_cpu_and_auto_stays_float32():
    from hrface.training.common import autocast, uses_bf16

    cpu = torch.device("cpu")
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    with autocast(cpu, "bf16"):
        assert conv(x).dtype == torch.bfloat16
    for precision in ("auto", "fp32"):
        with autocast(cpu, precision):
            assert conv(x).dtype == torch.float32
    assert uses_bf16(torch.device("cuda"), "auto") and not uses_bf16(torch.device("cuda"), "fp32")


def test_bf16_training_on_the_cpu_writes_finite_metrics(samples, tmp_path):
    config = tiny_landmark_config(tmp_path, schedule={"epochs": 1}, precision="bf16")
    result = train(config, samples[:4], samples[4:], progress=False)
    rows = list(csv.DictReader((Path(config.output_dir) / METRICS_CSV).open()))
    assert result["finished"] and all(math.isfinite(float(rows[0][k])) for k in ("train_loss", "val_nme"))


# --- config -------------------------------------------------------------------------------------------


def test_load_config_yaml_defaults_and_paths(tmp_path):
    path = tmp_path / "cfg" / "run.yaml"
    path.parent.mkdir()
    path.write_text(
        "data:\n  train:\n    - {format: csv, path: faces.csv, image_root: images}\n"
        "augmentation: {rotation: 15}\nschedule: {lr_steps: [3]}\noutput_dir: out\n"
    )
    config = load_config(path)
    assert config.augmentation.rotation == 15.0 and config.augmentation.scale_factor == 0.25
    assert config.schedule.lr_steps == [3] and config.schedule.epochs == 60
    assert config.data.train[0].path == str(path.parent / "faces.csv")
    assert config.data.train[0].image_root == str(path.parent / "images")
    assert config.output_dir == str(path.parent / "out")
    assert config.target_sigma == 1.0


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("epochs: 3\n", "'epochs'"),
        ("augmentation: {rotaton: 3}\n", "augmentation.'rotaton'"),
        ("data: {train: [{format: csv, path: x, root: y}]}\n", "'root'"),
        ("batch_size: many\n", "batch_size"),
        ("input_size: 100\n", "heatmap_size"),
        ("precision: fp16\n", "precision must be one of auto, bf16, fp32"),
    ],
)
def test_bad_config_keys_raise(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_repo_config_is_the_reference_recipe():
    config = load_config(REPO / "configs" / "hrnet_w18_300w.yaml")
    assert (config.model.width, config.model.num_landmarks, config.input_size, config.heatmap_size) == (18, 68, 256, 64)
    assert (config.optimizer.name, config.optimizer.lr, config.schedule.lr_steps) == ("adam", 1e-4, [30, 50])
    assert [Path(s.path).name for s in config.data.train] == ["afw", "helen_train"]
    assert all(s.format == "300w" for s in config.data.train) and config.data.val_fraction == 0.2


def test_build_samples_registry_and_photo_split(samples, tmp_path, monkeypatch):
    config = config_from_dict(
        {
            "data": {
                "train": [{"format": "fake", "path": "x"}],
                "val_fraction": 0.34,
                "split_file": str(tmp_path / "val_photos.txt"),
            }
        }
    )
    with pytest.raises(ConfigError, match="unknown source format 'fake'"):
        build_samples(config)
    monkeypatch.setitem(SAMPLE_READERS, "fake", lambda spec: list(samples))
    assert isinstance(config.data.train[0], SourceSpec)
    train_set, val_set = build_samples(config)
    assert len(train_set) == 4 and len(val_set) == 2  # 1 of 3 photos, both of its faces
    assert {s.photo for s in train_set}.isdisjoint({s.photo for s in val_set})
    assert (tmp_path / "val_photos.txt").is_file()
    seed = next(s for s in range(1, 50) if split_by_photo(samples, 0.34, s)[1] != val_set)
    config.data.split_seed = seed  # a seed that would split otherwise: the split file decides
    again = build_samples(config)
    assert [s.image for s in again[1]] == [s.image for s in val_set]
