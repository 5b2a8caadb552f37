"""Detection packs (pack-detection) and the GPU-ready pieces of the detector trainer, on tiny fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hrface.cli.main import main
from hrface.data.detection import DetectionSample, read_retinaface_labels, write_retinaface_labels
from hrface.io.image import read_image, write_image
from hrface.ops import prior_boxes
from hrface.training.detection.config import load_detection_config
from hrface.training.detection.loss import multibox_loss
from hrface.training.detection.matching import match_targets
from hrface.training.detection.sources import build_detection_samples
from hrface.training.detection.trainer import train_detector

REPO = Path(__file__).resolve().parents[1]
KEYPOINTS = np.array([[30, 40], [50, 40], [40, 50], [32, 60], [48, 60]], np.float32)


def photos(root: Path) -> list[DetectionSample]:
    """3 photos of 200 × 150 px (one of 60 × 40) with a bright face each; photo 1 has a box-only face too."""
    out = []
    for i, (w, h) in enumerate([(200, 150), (200, 150), (60, 40)]):
        image = np.full((h, w, 3), 30, np.uint8)
        image[20:70, 20:60] = 220
        path = root / "images" / f"p{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, image)
        boxes, points, has = [[20, 20, 60, 70]], [KEYPOINTS - 5], [True]
        if i == 1:
            boxes, points, has = boxes + [[120, 30, 160, 80]], points + [np.full((5, 2), np.nan)], has + [False]
        out.append(DetectionSample(str(path), boxes, np.stack(points), np.array(has)))
    return out


def test_pack_detection_downscales_photos_and_keeps_the_faces(tmp_path, capsys):
    samples = photos(tmp_path)
    write_retinaface_labels(tmp_path / "train.txt", samples[:2], tmp_path / "images")
    write_retinaface_labels(tmp_path / "val.txt", samples[2:], tmp_path / "images")
    config = tmp_path / "cfg.yaml"
    config.write_text(
        "data:\n  train: [{format: retinaface, path: train.txt, image_root: images}]\n"
        "  val: [{format: retinaface, path: val.txt, image_root: images}]\n"
    )
    pack = tmp_path / "pack"
    assert main(["pack-detection", str(config), str(pack), "--max-side", "100"]) == 0
    assert "wrote 3 images" in capsys.readouterr().out
    train = read_retinaface_labels(pack / "train.txt")
    val = read_retinaface_labels(pack / "val.txt")
    assert [s.num_faces for s in train] == [1, 2] and [s.num_faces for s in val] == [1]
    assert read_image(train[0].image).shape == (75, 100, 3)  # 200 × 150 → longer side 100
    assert read_image(val[0].image).shape == (40, 60, 3)  # never enlarged
    np.testing.assert_allclose(train[1].boxes, np.array(samples[1].boxes) / 2, atol=1e-3)
    np.testing.assert_allclose(train[0].keypoints[0], (KEYPOINTS - 5) / 2, atol=1e-3)
    assert train[1].has_keypoints.tolist() == [True, False]
    np.testing.assert_allclose(val[0].boxes, samples[2].boxes, atol=1e-3)
    image = read_image(train[0].image)
    assert image[15:30, 15:25].mean() > 180 and image[40:, 40:].mean() < 60  # the face moved with its box
    assert main(["pack-detection", str(config), str(tmp_path / "p2"), "--quality", "0"]) == 2
    assert main(["pack-detection", str(config), str(tmp_path / "p3"), "--format", "webp", "--quality", "80"]) == 0
    webp = read_retinaface_labels(tmp_path / "p3" / "train.txt")
    assert webp[0].image.endswith(".webp") and read_image(webp[0].image).shape == (150, 200, 3)


def test_the_gpu_recipe_trains_from_a_pack(tmp_path):
    c = load_detection_config(REPO / "configs" / "retinaface_mnet025_v2_gpu.yaml")
    assert c.image_size == 640 and c.device == "cuda" and c.augmentation.mosaic_prob > 0
    assert c.data.teacher is None  # the pack holds the teacher's faces already
    assert [s.format for s in (*c.data.train, *c.data.val)] == ["retinaface", "retinaface"]
    assert c.data.train[0].path == str(REPO / "runs" / "pack_det_300w" / "train.txt")
    samples = photos(tmp_path)
    write_retinaface_labels(tmp_path / "pack" / "train.txt", samples[:2], tmp_path / "images")
    write_retinaface_labels(tmp_path / "pack" / "val.txt", samples[2:], tmp_path / "images")
    overrides = [
        f"data.train=[{{format: retinaface, path: {tmp_path}/pack/train.txt, image_root: {tmp_path}/images}}]",
        f"data.val=[{{format: retinaface, path: {tmp_path}/pack/val.txt, image_root: {tmp_path}/images}}]",
        "image_size=64",
        "batch_size=2",
        "workers=0",
        "device=cpu",
        "model.backbone_weights=null",
        f"output_dir={tmp_path}/run",
    ]
    c = load_detection_config(REPO / "configs" / "retinaface_mnet025_v2_gpu.yaml", overrides)
    train, val = build_detection_samples(c)
    result = train_detector(c, train, val, max_steps=1, progress=False)
    assert result["global_step"] == 1  # mosaics and zoom-outs of the pack's photos train


def test_bfloat16_outputs_give_a_float32_loss_close_to_float32():
    """Under CUDA autocast the network returns bfloat16; the loss and the matching stay float32."""
    priors = torch.from_numpy(prior_boxes(64, 64))
    g = torch.Generator().manual_seed(0)
    targets = [torch.tensor([[0.2, 0.2, 0.6, 0.7, *([0.4] * 10), 1.0]]), torch.zeros(0, 15)]
    outputs = [torch.randn(2, len(priors), n, generator=g) for n in (4, 2, 10)]
    exact = multibox_loss(*outputs, priors, targets)
    half = multibox_loss(*(o.bfloat16() for o in outputs), priors, targets)
    assert half.total.dtype == torch.float32 and half.num_pos == exact.num_pos
    torch.testing.assert_close(half.total, exact.total, rtol=2e-2, atol=0)
    assert match_targets(targets, priors).loc.dtype == torch.float32
