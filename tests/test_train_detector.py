"""Detector training: YAML config, data sources and photo split, trainer outputs, exact resume, CLI,
ImageNet backbone initialisation."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from conftest import assert_publishes_its_average, shared_path
from hrface.cli.main import main
from hrface.data.detection import DetectionSample, write_retinaface_labels
from hrface.data.landmarks import LandmarkSample
from hrface.data.landmarks.split import load_split
from hrface.errors import CheckpointError, ConfigError
from hrface.models.checkpoint import infer_architecture, read_state_dict
from hrface.models.registry import create_model
from hrface.models.retinaface import RetinaFace
from hrface.ops import prior_boxes
from hrface.runtime.detector import Detector
from hrface.training.checkpoints import BEST_CHECKPOINT, BEST_WEIGHTS, LAST_CHECKPOINT, TrainState
from hrface.training.common import METRICS_CSV
from hrface.training.detection.config import detection_config_from_dict, load_detection_config
from hrface.training.detection.dataset import DetectionTrainDataset
from hrface.training.detection.matching import match_targets
from hrface.training.detection.sources import build_detection_samples
from hrface.training.detection.trainer import METRIC_FIELDS, evaluate, load_backbone_weights, train_detector
from hrface.training.landmarks import SAMPLE_READERS
from hrface.training.landmarks import load_config as load_landmark_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models on a shared CPU: one intra-op thread avoids waits on busy cores (20× faster here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def keypoints_in(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    fractions = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]])
    return np.array([x1, y1]) + fractions * np.array([x2 - x1, y2 - y1])


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[DetectionSample]:
    """5 noise images (80 × 64 px) with 1–2 bright rectangles as faces, 5 keypoints each (one face without)."""
    root = tmp_path_factory.mktemp("faces")
    g = np.random.default_rng(0)
    out = []
    for i in range(5):
        image = g.integers(0, 80, (64, 80, 3), dtype=np.uint8)
        boxes = []
        for _ in range(1 + i % 2):
            w = g.uniform(14, 30)
            x1, y1 = g.uniform(2, 78 - w), g.uniform(2, 62 - w)
            boxes.append([x1, y1, x1 + w, y1 + w * 1.1 if y1 + w * 1.1 < 64 else 63.0])
            image[int(y1) : int(boxes[-1][3]), int(x1) : int(x1 + w)] += 120
        path = root / "images" / f"img{i}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), image)
        boxes = np.asarray(boxes)
        keypoints = np.stack([keypoints_in(b) for b in boxes])
        has = np.ones(len(boxes), bool)
        has[-1] = i != 3  # image 3's last face has no keypoints
        keypoints[~has] = np.nan
        out.append(DetectionSample(str(path), boxes, keypoints, has, photo=f"img{i}", subset="synth"))
    return out


def tiny_config(out: Path, **overrides):
    data = {
        "image_size": 32,
        "batch_size": 2,
        "workers": 0,
        "device": "cpu",
        "output_dir": str(out),
        "schedule": {"epochs": 2, "lr_steps": [1]},
    }
    data.update(overrides)
    return detection_config_from_dict(data)


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


# --- config -------------------------------------------------------------------------------------------


def test_defaults_are_the_reference_recipe_and_paths_resolve(tmp_path):
    path = tmp_path / "cfg" / "run.yaml"
    path.parent.mkdir()
    path.write_text(
        "data:\n  train:\n    - {format: retinaface, path: train/label.txt, image_root: train/images}\n"
        "model: {backbone_weights: w/mnet.tar}\nschedule: {epochs: 10}\noutput_dir: out\n"
    )
    c = load_detection_config(path)
    assert (c.image_size, c.batch_size, c.model.backbone) == (640, 32, "mobilenet0.25")
    assert (c.optimizer.name, c.optimizer.lr, c.optimizer.momentum, c.optimizer.weight_decay) == (
        "sgd",
        1e-3,
        0.9,
        5e-4,
    )
    assert (c.schedule.epochs, c.schedule.lr_steps, c.schedule.lr_factor) == (10, [190, 220], 0.1)
    assert (c.loss.match_threshold, c.loss.neg_pos_ratio, c.loss.loc_weight) == (0.35, 7, 2.0)
    assert c.data.train[0].path == str(path.parent / "train" / "label.txt")
    assert c.data.train[0].image_root == str(path.parent / "train" / "images")
    assert c.model.backbone_weights == str(path.parent / "w" / "mnet.tar")
    assert c.output_dir == str(path.parent / "out")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("epochs: 3\n", "'epochs'"),
        ("model: {backbone: vgg16}\n", "model.backbone must be one of mobilenet0.25, resnet50"),
        ("optimizer: {lr: fast}\n", "optimizer.lr"),
        ("loss: {hard_negatives: 3}\n", "loss.'hard_negatives'"),
        ("image_size: 16\n", "image_size must be at least 32"),
        ("- a list\n", "must be a mapping"),
        ("data: {train: [{format: x}]}\n", "'path' is required"),
        ("select: val_loss\n", "select must be one of val_ap, val_keypoint_nme, last"),
        ("model: {weights: a.pth, backbone_weights: b.tar}\n", "keep one"),
        ("ema_decay: 1.0\n", "ema_decay must be in"),
        ("threads: -1\n", "threads must be non-negative"),
        ("loss: {landm_weight: -1}\n", "loss weights must be non-negative"),
    ],
)
def test_bad_configs_raise_one_line_errors(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        load_detection_config(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_repo_config_holds_out_the_landmark_models_photos():
    c = load_detection_config(REPO / "configs" / "retinaface_mnet025_300w.yaml")
    landmarks = load_landmark_config(REPO / "configs" / "hrnet_w18_300w.yaml")
    assert (
        c.model.backbone == "mobilenet0.25" and Path(c.model.backbone_weights).name == "mobilenetV1X0.25_pretrain.tar"
    )
    assert c.data.split_file == landmarks.data.split_file
    assert (c.data.val_fraction, c.data.split_seed) == (landmarks.data.val_fraction, landmarks.data.split_seed)
    assert [(s.format, s.path) for s in c.data.train] == [(s.format, s.path) for s in landmarks.data.train]
    assert c.image_size % 32 == 0 and c.optimizer.name == "sgd"


# --- data sources -------------------------------------------------------------------------------------


def test_landmark_sources_are_split_like_the_landmark_trainer(tmp_path, monkeypatch, images):
    g = np.random.default_rng(1)
    faces = [
        LandmarkSample(image=Path(f"/data/p{i // 2}.jpg"), points=g.uniform(10, 60, (68, 2)), photo=f"p{i // 2}")
        for i in range(12)
    ]
    monkeypatch.setitem(SAMPLE_READERS, "fake", lambda spec: list(faces))
    label_file = tmp_path / "label.txt"
    write_retinaface_labels(label_file, images, Path(images[0].image).parent)
    split_file = tmp_path / "split.json"
    data = {
        "train": [{"format": "fake", "path": "x"}, {"format": "retinaface", "path": str(label_file)}],
        "split_file": str(split_file),
        "val_fraction": 0.34,
    }
    train, val = build_detection_samples(detection_config_from_dict({"data": data}))
    split = load_split(split_file)  # written by this first call
    assert {s.photo for s in val} == set(split.val) and len(split.val) == 2
    assert {s.photo for s in train} == set(split.train) | {s.photo for s in images}
    assert all(s.num_faces == 2 and s.boxes.shape == (2, 4) for s in val)
    again, _ = build_detection_samples(detection_config_from_dict({"data": {**data, "split_seed": 7}}))
    assert [s.photo for s in again] == [s.photo for s in train]  # the split file decides, not the seed
    with pytest.raises(ConfigError, match="unknown source format 'nope'"):
        build_detection_samples(detection_config_from_dict({"data": {"train": [{"format": "nope", "path": "x"}]}}))


# --- trainer ------------------------------------------------------------------------------------------


def test_train_writes_checkpoints_metrics_and_loadable_weights(tmp_path, images):
    config = tiny_config(tmp_path / "run", schedule={"epochs": 1})
    result = train_detector(config, images[:4], images[4:], progress=False)
    run = Path(config.output_dir)
    for name in (LAST_CHECKPOINT, BEST_CHECKPOINT, BEST_WEIGHTS, METRICS_CSV):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / METRICS_CSV).open()))
    assert list(rows[0]) == list(METRIC_FIELDS) and len(rows) == 1
    assert all(math.isfinite(float(rows[0][k])) for k in METRIC_FIELDS if k != "val_keypoint_nme")
    assert 0 <= float(rows[0]["val_ap"]) <= 1 and float(rows[0]["val_ap"]) == result["best_metric"]
    parts = [float(rows[0][f"val_loss_{p}"]) for p in ("loc", "cls", "landm")]
    assert float(rows[0]["val_loss"]) == pytest.approx(2 * parts[0] + parts[1] + parts[2], rel=1e-5)
    assert result["finished"] and result["global_step"] == 2 and result["best_epoch"] == 1
    state = read_state_dict(run / BEST_WEIGHTS)
    assert infer_architecture(state).options == {"backbone": "mobilenet0.25"}
    model = create_model(run / BEST_WEIGHTS, expect="retinaface")
    assert isinstance(model, RetinaFace) and model.backbone_name == "mobilenet0.25"
    assert model.max_size == round(1.5 * config.image_size)  # the photo size it was trained for travels
    detector = Detector(run / BEST_WEIGHTS, threshold=0.0)
    assert detector.max_size == model.max_size
    assert isinstance(detector(cv2.imread(images[0].image)), list)
    with pytest.raises(ConfigError, match="exists"):
        train_detector(config, images[:4], images[4:], progress=False)


def test_threads_sets_the_training_process_thread_count(tmp_path, images):
    before = torch.get_num_threads()
    try:
        train_detector(tiny_config(tmp_path / "run", threads=1), images[:4], images[4:], max_steps=1, progress=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_fine_tuning_starts_from_weights_and_can_keep_the_last_epoch(tmp_path, images):
    first = tiny_config(tmp_path / "first", schedule={"epochs": 1})
    train_detector(first, images[:4], images[4:], progress=False)
    start = read_state_dict(Path(first.output_dir) / BEST_WEIGHTS)
    tuned = tiny_config(
        tmp_path / "tuned",
        model={"weights": str(Path(first.output_dir) / BEST_WEIGHTS)},
        optimizer={"lr": 1e-12, "momentum": 0.0, "weight_decay": 0.0},  # the weights barely move
        select="last",
    )
    result = train_detector(tuned, images[:4], images[4:], progress=False)
    assert result["best_epoch"] == 2 and math.isnan(result["best_metric"])
    kept = read_state_dict(Path(tuned.output_dir) / BEST_WEIGHTS)
    learned = [k for k in start if "running" not in k and "num_batches" not in k]  # BN statistics do move
    for key in learned:
        torch.testing.assert_close(kept[key], start[key], rtol=0, atol=1e-5)


class Oracle(torch.nn.Module):
    """Returns the encoded targets of a dataset's items, in order: a perfect detector."""

    def __init__(self, dataset: DetectionTrainDataset, priors: torch.Tensor) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # something to move to a device
        m = match_targets([dataset[i][1] for i in range(len(dataset))], priors)
        face = (m.labels != 0)[..., None]
        logits = torch.where(face, torch.tensor([-30.0, 30.0]), torch.tensor([30.0, -30.0]))
        self.outputs, self.next = (m.loc, logits, m.landm), 0

    def forward(self, x: torch.Tensor):
        i, self.next = self.next, self.next + len(x)
        return tuple(out[i : self.next] for out in self.outputs)


def test_weight_average_is_validated_and_published(tmp_path, images):
    config = tiny_config(tmp_path / "run", schedule={"epochs": 1}, ema_decay=0.5)
    train_detector(config, images[:4], images[4:], progress=False)
    run = Path(config.output_dir)
    assert_publishes_its_average(run)
    row = next(csv.DictReader((run / METRICS_CSV).open()))  # the validation metrics are the average's
    val_set = DetectionTrainDataset(images[4:], config.image_size, train=False, seed=config.seed)
    priors = torch.from_numpy(prior_boxes(config.image_size, config.image_size))
    metrics = evaluate(create_model(run / BEST_WEIGHTS), val_set, priors, config, torch.device("cpu"))
    assert float(row["val_loss"]) == pytest.approx(metrics["val_loss"], rel=1e-5)


def test_validation_of_a_perfect_detector(tmp_path, images):
    config = tiny_config(tmp_path, image_size=64)
    dataset = DetectionTrainDataset(images, 64, train=False)
    priors = torch.from_numpy(prior_boxes(64, 64))  # training takes the priors as a tensor
    metrics = evaluate(Oracle(dataset, priors), dataset, priors, config, torch.device("cpu"))
    assert metrics["val_loss"] < 1e-5 and metrics["val_ap"] == pytest.approx(1.0)
    assert metrics["val_recall"] == 1.0 and metrics["val_keypoint_nme"] < 1e-3
    blind = Oracle(dataset, priors)
    blind.outputs = (blind.outputs[0] + 10.0, *blind.outputs[1:])  # boxes far off the faces
    metrics = evaluate(blind, dataset, priors, config, torch.device("cpu"))
    assert metrics["val_ap"] == 0.0 and metrics["val_recall"] == 0.0 and metrics["val_keypoint_nme"] is None
    assert metrics["val_loss"] > 10


def test_resume_is_exact(tmp_path, images):
    """2 epochs straight == stopped mid-epoch 1, resumed to the end of epoch 1, resumed to the end."""
    train_set, val_set = images[:4], images[4:]  # batch 2: 2 steps per epoch
    straight, pieces = tiny_config(tmp_path / "a"), tiny_config(tmp_path / "b")
    train_detector(straight, train_set, val_set, progress=False)
    for resume, max_steps, epochs_done in ((False, 1, 0), (True, 2, 1), (True, None, 2)):
        result = train_detector(pieces, train_set, val_set, resume=resume, max_steps=max_steps, progress=False)
        assert result["epoch"] == epochs_done
    assert result["finished"] and result["global_step"] == 4

    a = torch.load(Path(straight.output_dir) / LAST_CHECKPOINT, weights_only=True)
    b = torch.load(Path(pieces.output_dir) / LAST_CHECKPOINT, weights_only=True)
    assert_same_weights(a["model"], b["model"])
    assert_same_weights(a["optimizer"]["state"][0], b["optimizer"]["state"][0])  # SGD momentum
    for key in METRIC_FIELDS[1:-1]:
        assert [r[key] for r in a["state"]["history"]] == [r[key] for r in b["state"]["history"]], key
    assert [r["lr"] for r in a["state"]["history"]] == [1e-3, 1e-4]
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 2


def test_cli_max_steps_and_resume(tmp_path, images, capsys):
    label_file = tmp_path / "data" / "label.txt"
    write_retinaface_labels(label_file, images, Path(images[0].image).parent)
    config = tmp_path / "detector.yaml"
    config.write_text(
        "data:\n"
        f"  train: [{{format: retinaface, path: data/label.txt, image_root: {Path(images[0].image).parent}}}]\n"
        "image_size: 32\nbatch_size: 3\nworkers: 0\nschedule: {epochs: 3}\noutput_dir: run\n"
    )
    assert main(["train-detector", str(config), "--max-steps", "1", "--device", "cpu", "-q"]) == 0
    run = tmp_path / "run"
    assert torch.load(run / LAST_CHECKPOINT, weights_only=True)["state"]["global_step"] == 1
    assert "training on 5 images (7 faces), validating on 0 images" in capsys.readouterr().out
    out_dir = tmp_path / "elsewhere"
    args = ["train-detector", str(config), "--resume", "--max-steps", "4", "--output-dir", str(out_dir), "-q"]
    assert main(args) == 2  # nothing to resume there: one-line error, exit status 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert main(["train-detector", str(config), "--resume", "--max-steps", "4", "--device", "cpu", "-q"]) == 0
    state = torch.load(run / LAST_CHECKPOINT, weights_only=True)["state"]
    assert state["global_step"] == 4 and state["epoch"] == 2 and (run / BEST_WEIGHTS).is_file()
    assert "epoch 2, step 4" in capsys.readouterr().out


def test_train_state_reads_landmark_checkpoints_written_before_the_shared_trainer():
    old = {"epoch": 3, "step_in_epoch": 0, "global_step": 30, "loss_sum": 0.0, "loss_count": 0}
    state = TrainState.from_dict({**old, "best_nme": 0.05, "best_epoch": 2, "history": []})
    assert (state.best_metric, state.best_epoch, state.part_sums) == (0.05, 2, {})
    state.part_sums = {"loss_loc": 1.5}
    state.loss_sum, state.loss_count = 6.0, 3
    assert state.train_means() == {"train_loss": 2.0, "train_loss_loc": 0.5}
    state.next_epoch()
    assert (state.epoch, state.loss_count, state.part_sums) == (4, 0, {})


# --- backbone initialisation --------------------------------------------------------------------------


def test_imagenet_backbone_weights_are_loaded():
    path = shared_path("weights", "mobilenetV1X0.25_pretrain.tar")
    torch.manual_seed(0)
    model = RetinaFace("mobilenet0.25")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    load_backbone_weights(model, path)
    imagenet = read_state_dict(path)
    after = model.state_dict()
    body = [k for k in after if k.startswith("body.")]
    assert len(body) == len(imagenet) - 2  # everything but the classifier fc.weight / fc.bias
    for key in body:
        assert torch.equal(after[key], imagenet[key[len("body.") :]]), key
    assert not torch.equal(before["body.stage1.0.0.weight"], after["body.stage1.0.0.weight"])
    assert all(torch.equal(before[k], after[k]) for k in after if not k.startswith("body."))
    with pytest.raises(CheckpointError, match="missing keys"):
        load_backbone_weights(RetinaFace("resnet50"), path)


def test_frozen_bn_epochs_keep_the_detectors_batchnorm_statistics(tmp_path, images):
    config = tiny_config(tmp_path / "run", schedule={"epochs": 2, "lr_steps": [2], "frozen_bn_epochs": 1})
    train_set, val_set = images[:4], images[4:]  # batch 2: 2 steps per epoch
    train_detector(config, train_set, val_set, max_steps=2, progress=False)
    first = torch.load(Path(config.output_dir) / LAST_CHECKPOINT, weights_only=True)["model"]
    train_detector(config, train_set, val_set, resume=True, progress=False)
    second = torch.load(Path(config.output_dir) / LAST_CHECKPOINT, weights_only=True)["model"]
    stats = [k for k in first if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(first[k], second[k]) for k in stats)
    assert any(not torch.equal(first[k], second[k]) for k in first if k.endswith(".weight"))
