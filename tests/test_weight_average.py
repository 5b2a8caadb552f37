"""The moving average of the weights (``ema_decay``): its arithmetic, what a run saves, validates and
publishes, and exact resume."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from conftest import assert_publishes_its_average, noise_faces, tiny_landmark_config
from hrface.data.landmarks import LandmarkSample
from hrface.errors import ConfigError
from hrface.landmarks.layouts import LAYOUT_68
from hrface.models.checkpoint import read_state_dict
from hrface.models.registry import create_model
from hrface.training.averaging import WeightAverage
from hrface.training.landmarks import LandmarkTrainDataset, train
from hrface.training.landmarks.trainer import BEST_WEIGHTS, LAST_CHECKPOINT, METRICS_CSV, evaluate


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> list[LandmarkSample]:
    return noise_faces(tmp_path_factory.mktemp("ema"), 4, seed=5)


def config(path: Path, **overrides):
    return tiny_landmark_config(path, **{"ema_decay": 0.5, "schedule": {"epochs": 2, "lr_steps": [2]}, **overrides})


def test_average_moves_by_one_minus_decay_per_step_and_copies_buffers():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    average = WeightAverage(model, decay=0.75)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(3.0)
    for _ in range(2):
        average.update(model)
    state = average.state_dict()
    for key in ("0.weight", "0.bias", "1.weight", "1.bias"):  # start + (1 - 0.75²) × 1
        torch.testing.assert_close(state[key], start[key] + 1 - 0.75**2)
    assert torch.equal(state["1.running_mean"], torch.full((2,), 3.0))
    assert not any(p.requires_grad for p in average.module.parameters())
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=1.0)


def test_run_saves_validates_and_publishes_the_average(faces, tmp_path):
    cfg = config(tmp_path, schedule={"epochs": 1, "lr_steps": [1]})
    train(cfg, faces[:3], faces[3:], progress=False)
    run = Path(cfg.output_dir)
    assert_publishes_its_average(run)
    from_last, average = read_state_dict(run / LAST_CHECKPOINT), read_state_dict(run / BEST_WEIGHTS)
    assert all(torch.equal(from_last[k], v) for k, v in average.items())
    # the validation NME in the metrics is the average's
    row = next(csv.DictReader((run / METRICS_CSV).open()))
    val_set = LandmarkTrainDataset(faces[3:], 68, False, cfg)
    _, nme = evaluate(create_model(run / BEST_WEIGHTS, expect="hrnet"), val_set, LAYOUT_68, cfg, torch.device("cpu"))
    assert float(row["val_nme"]) == pytest.approx(nme, rel=1e-6)


def test_resume_restores_the_average_exactly(faces, tmp_path):
    straight = config(tmp_path / "a")
    train(straight, faces[:4], [], progress=False)
    pieces = config(tmp_path / "b")
    train(pieces, faces[:4], [], max_steps=1, progress=False)
    train(pieces, faces[:4], [], resume=True, progress=False)
    a = torch.load(Path(straight.output_dir) / LAST_CHECKPOINT, weights_only=True)["average"]
    b = torch.load(Path(pieces.output_dir) / LAST_CHECKPOINT, weights_only=True)["average"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ema_decay_must_be_below_one(tmp_path):
    with pytest.raises(ConfigError, match="ema_decay"):
        config(tmp_path, ema_decay=1.0)
