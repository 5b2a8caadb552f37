"""Landmark recipe options: appearance augmentation, crop-centre shift, Adaptive Wing loss, starting
weights, test-time flip averaging and the per-HELEN-face photo ids."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from conftest import noise_faces, tiny_landmark_config
from hrface import Landmarker
from hrface.data.landmarks import LandmarkSample, read_300w_folder, write_pts
from hrface.errors import ConfigError
from hrface.landmarks.heatmaps import render_gaussian_heatmaps
from hrface.landmarks.layouts import LAYOUT_68
from hrface.models.checkpoint import ArchSpec
from hrface.models.registry import build_model
from hrface.training.landmarks import LandmarkTrainDataset, train
from hrface.training.landmarks.appearance import AppearanceParams, augment_appearance
from hrface.training.landmarks.losses import adaptive_wing_loss, mse_heatmap_loss

SIZE = 96


@pytest.fixture(scope="module")
def face(tmp_path_factory: pytest.TempPathFactory) -> LandmarkSample:
    return noise_faces(tmp_path_factory.mktemp("recipe"), 1, seed=3, size=SIZE)[0]


def config(tmp_path, **overrides):
    return tiny_landmark_config(tmp_path, **{"batch_size": 2, "schedule": {"epochs": 1, "lr_steps": [1]}, **overrides})


# --- appearance augmentation --------------------------------------------------------------------------


def crop() -> np.ndarray:
    g = np.random.default_rng(0)
    return cv2.GaussianBlur(g.integers(0, 256, (128, 128, 3), dtype=np.uint8), (0, 0), 1.0)


def test_appearance_off_is_identity_and_each_option_changes_pixels():
    image = crop()
    assert not AppearanceParams().active
    same = augment_appearance(image, AppearanceParams(), np.random.default_rng(0))
    np.testing.assert_array_equal(same, image)
    for params in (
        AppearanceParams(color=0.4),
        AppearanceParams(blur_prob=1.0),
        AppearanceParams(jpeg_prob=1.0),
        AppearanceParams(occlusion_prob=1.0),
    ):
        out = augment_appearance(image, params, np.random.default_rng(5))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - image).mean() > 0.3, params
        np.testing.assert_array_equal(out, augment_appearance(image, params, np.random.default_rng(5)))


def test_occluder_is_one_flat_rectangle_of_the_documented_size():
    image = crop()
    out = augment_appearance(image, AppearanceParams(occlusion_prob=1.0), np.random.default_rng(11))
    changed = np.any(out != image, axis=2)
    ys, xs = np.nonzero(changed)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert min(h, w) >= 0.15 * 128 - 1 and max(h, w) <= 0.45 * 128 + 1
    patch = out[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].reshape(-1, 3)
    assert len(np.unique(patch, axis=0)) == 1  # one colour


def test_blur_smooths_and_colour_strength_bounds_the_change():
    image = crop()
    blurred = augment_appearance(image, AppearanceParams(blur_prob=1.0), np.random.default_rng(1))
    assert np.abs(np.diff(blurred.astype(float), axis=1)).mean() < np.abs(np.diff(image.astype(float), axis=1)).mean()
    mild = augment_appearance(image, AppearanceParams(color=0.05), np.random.default_rng(1))
    assert np.abs(mild.astype(int) - image).max() <= 0.2 * 255


def test_dataset_appearance_keeps_targets_and_draws_from_its_own_stream(face, tmp_path):
    plain = LandmarkTrainDataset([face], 68, True, config(tmp_path))
    aug = {"color": 0.3, "blur_prob": 0.5, "jpeg_prob": 0.5, "occlusion_prob": 0.5}
    strong = LandmarkTrainDataset([face], 68, True, config(tmp_path, augmentation=aug))
    for epoch in range(4):
        plain.set_epoch(epoch)
        strong.set_epoch(epoch)
        a, b = plain[0], strong[0]
        # geometry and targets are the same: appearance never moves points
        np.testing.assert_array_equal(a["matrix"].numpy(), b["matrix"].numpy())
        np.testing.assert_array_equal(a["heatmaps"].numpy(), b["heatmaps"].numpy())
    assert not torch.equal(a["image"], b["image"])


def test_box_shift_moves_the_crop_centre_within_its_bound(face, tmp_path):
    no_geometry = {"scale_factor": 0.0, "rotation_prob": 0.0, "flip": False}
    base = LandmarkTrainDataset([face], 68, True, config(tmp_path, augmentation=no_geometry))
    shifted = LandmarkTrainDataset([face], 68, True, config(tmp_path, augmentation={**no_geometry, "box_shift": 0.1}))
    offsets = []
    for epoch in range(30):
        base.set_epoch(epoch)
        shifted.set_epoch(epoch)
        # an image point moves in the crop by -shift × 64 px
        delta = shifted[0]["points_crop"].numpy() - base[0]["points_crop"].numpy()
        assert np.ptp(delta, axis=0).max() < 1e-4  # a pure translation
        offsets.append(-delta[0] / 64)  # shift × side image px = shift × 64 crop px
    offsets = np.asarray(offsets)
    assert np.abs(offsets).max() <= 0.1 + 1e-6 and np.abs(offsets).max() > 0.05
    assert (offsets > 0).any() and (offsets < 0).any()


# --- losses -------------------------------------------------------------------------------------------


def targets() -> torch.Tensor:
    return torch.from_numpy(render_gaussian_heatmaps(np.array([[7.3, 8.1], [3.0, 12.5]]), 16, 1.0))[None]


def test_adaptive_wing_is_zero_at_the_target_and_matches_the_paper_formula():
    t, w = targets(), torch.ones(1, 2)
    assert adaptive_wing_loss(t, t, w).item() == 0.0
    # one background pixel off by 0.3 (< theta): omega * ln(1 + 0.3^2.1), times the map weight 1 (background)
    pred = torch.zeros(1, 2, 16, 16)
    target = torch.zeros(1, 2, 16, 16)
    pred[0, 0, 0, 0] = 0.3
    expected = 14.0 * np.log1p(0.3**2.1) / pred.numel()
    assert adaptive_wing_loss(pred, target, w).item() == pytest.approx(expected, rel=1e-5)
    # beyond theta the loss is linear in the error
    pred[0, 0, 0, 0] = 0.8
    a = adaptive_wing_loss(pred, target, w).item()
    pred[0, 0, 0, 0] = 0.9
    b = adaptive_wing_loss(pred, target, w).item()
    pred[0, 0, 0, 0] = 1.0
    c = adaptive_wing_loss(pred, target, w).item()
    assert b - a == pytest.approx(c - b, rel=1e-4)


def test_adaptive_wing_weighs_the_foreground_and_ignores_masked_points():
    t = targets()
    g = torch.Generator().manual_seed(0)
    pred = (t + 0.05 * torch.randn(t.shape, generator=g)).requires_grad_()
    adaptive_wing_loss(pred, t, torch.ones(1, 2)).backward()
    grad = pred.grad.abs()[0, 0]
    fg = t[0, 0] > 0.2
    assert torch.isfinite(pred.grad).all()
    assert grad[fg].mean() > 5 * grad[~fg].mean()  # where MSE's gradient is only the error itself
    masked = adaptive_wing_loss(pred.detach(), t, torch.tensor([[1.0, 0.0]]))
    only_first = adaptive_wing_loss(pred.detach()[:, :1], t[:, :1], torch.ones(1, 1)) / 2
    assert masked.item() == pytest.approx(only_first.item(), rel=1e-6)
    assert mse_heatmap_loss(t, t, torch.ones(1, 2)).item() == 0.0


def test_trainer_accepts_awing_and_starting_weights(face, tmp_path):
    start = build_model(ArchSpec("hrnet", {"width": 4, "num_landmarks": 68}))
    path = tmp_path / "start.pt"
    torch.save(start.state_dict(), path)
    cfg = config(tmp_path, loss="awing", model={"width": 4, "num_landmarks": 68, "weights": str(path)})
    result = train(cfg, [face, face], [], max_steps=1, progress=False)
    assert result["global_step"] == 1
    with pytest.raises(ConfigError, match="loss must be"):
        config(tmp_path, loss="l1")
    with pytest.raises(ConfigError, match="box_shift"):
        config(tmp_path, augmentation={"box_shift": 0.7})
    with pytest.raises(ConfigError, match="occlusion_prob"):
        config(tmp_path, augmentation={"occlusion_prob": 1.5})


def test_starting_weights_must_fit_the_architecture(face, tmp_path):
    other = build_model(ArchSpec("hrnet", {"width": 4, "num_landmarks": 98}))
    path = tmp_path / "w98.pt"
    torch.save(other.state_dict(), path)
    cfg = config(tmp_path, model={"width": 4, "num_landmarks": 68, "weights": str(path)})
    with pytest.raises(Exception, match="(?i)shape|size|mismatch"):
        train(cfg, [face], [], max_steps=1, progress=False)


# --- test-time flip averaging --------------------------------------------------------------------------


def test_flip_averaging_makes_predictions_mirror_equivariant():
    torch.manual_seed(0)
    model = build_model(ArchSpec("hrnet", {"width": 4, "num_landmarks": 68})).eval()
    g = np.random.default_rng(2)
    image = cv2.GaussianBlur(g.integers(0, 256, (120, 160, 3), dtype=np.uint8), (0, 0), 3)
    mirrored = np.ascontiguousarray(image[:, ::-1])
    box = np.array([[40.0, 20, 100, 90]])
    mirrored_box = np.array([[159 - 100.0, 20, 159 - 40, 90]])
    perm = LAYOUT_68.flip_permutation()

    def mirror(points: np.ndarray) -> np.ndarray:
        out = points[:, perm].copy()
        out[..., 0] = 159 - out[..., 0]
        return out

    flip = Landmarker(model, flip=True, backend="torch")
    a, _ = flip.predict(image, box)
    b, _ = flip.predict(mirrored, mirrored_box)
    np.testing.assert_allclose(mirror(b), a, atol=1e-3)
    plain = Landmarker(model, backend="torch")
    c, _ = plain.predict(image, box)
    d, _ = plain.predict(mirrored, mirrored_box)
    assert np.abs(mirror(d) - c).max() > 0.05  # a random model alone is not mirror-equivariant
    assert np.abs(a - c).max() > 0.01  # and flip averaging changed its output


def test_flip_averaging_needs_a_known_layout():
    model = build_model(ArchSpec("hrnet", {"width": 4, "num_landmarks": 5}))
    with pytest.raises(ConfigError, match="flip=True needs a known landmark layout"):
        Landmarker(model, flip=True, backend="torch")


# --- data: one image per face ---------------------------------------------------------------------------


def test_one_image_per_face_folders_group_faces_by_photo(tmp_path):
    """300W's HELEN layout: PHOTO_K.jpg + PHOTO_K_1.pts per face; PHOTO.jpg + PHOTO_1.pts for one face."""
    image = np.zeros((20, 20, 3), np.uint8)
    points = np.tile([[5.0, 6.0]], (68, 1))
    for stem in ("100_1", "100_2", "200"):
        cv2.imwrite(str(tmp_path / f"{stem}.jpg"), image)
        write_pts(tmp_path / f"{stem}_1.pts", points)
    samples = read_300w_folder(tmp_path)
    assert [(s.image.name, s.photo) for s in samples] == [
        ("100_1.jpg", f"{tmp_path.name}/100"),
        ("100_2.jpg", f"{tmp_path.name}/100"),
        ("200.jpg", f"{tmp_path.name}/200"),
    ]


# --- rotated evaluation photos --------------------------------------------------------------------------


def test_rotated_samples_move_pixels_and_points_together(tmp_path):
    from hrface.evaluation.landmark_runs import rotated_samples
    from hrface.io.image import read_image

    image = np.zeros((60, 100, 3), np.uint8)
    points = np.array([[10.0, 10.0], [90.0, 50.0], [50.0, 30.0]] + [[50.0, 30.0]] * 65)
    for x, y in points[:3].astype(int):
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
    cv2.imwrite(str(tmp_path / "photo.png"), image)
    source = LandmarkSample(image=tmp_path / "photo.png", points=points, box=np.zeros(4), photo="p", subset="s")
    before = (tmp_path / "photo.png").read_bytes()
    for angle in (0.0, 30.0, -45.0, 90.0):
        (out,) = rotated_samples([source], angle, tmp_path / f"rot{angle:g}")
        rotated = read_image(out.image)
        assert out.box is None and out.photo == "p"
        for x, y in out.points[:3]:
            assert rotated[int(round(y)), int(round(x))].max() > 100, (angle, x, y)
        # distances are kept; counter-clockwise as seen means the first point moves down for a positive angle
        np.testing.assert_allclose(np.linalg.norm(out.points[1] - out.points[0]), np.linalg.norm(points[1] - points[0]))
    assert (tmp_path / "photo.png").read_bytes() == before  # the input is only read


def test_mirrored_samples_keep_each_point_on_its_pixel_and_meaning(tmp_path):
    from hrface.evaluation.landmark_runs import mirrored_samples
    from hrface.io.image import read_image
    from hrface.landmarks.layouts import get_layout

    g = np.random.default_rng(3)
    image = g.integers(0, 256, (60, 100, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "photo.png"), image)
    points = g.uniform(0, 59, (68, 2))
    source = LandmarkSample(image=tmp_path / "photo.png", points=points, box=np.array([10.0, 5, 40, 50]), photo="p")
    (out,) = mirrored_samples([source], tmp_path / "m")
    mirrored = read_image(out.image)
    perm = get_layout(68).flip_permutation()
    for k in range(68):  # point k of the mirror is the mirror of point perm[k], on the same pixel content
        x, y = np.rint(points[perm[k]]).astype(int)
        assert out.points[k][0] == pytest.approx(99 - points[perm[k]][0])
        assert mirrored[y, 99 - x].tolist() == image[y, x].tolist()
    np.testing.assert_allclose(out.box, [59.0, 5, 89, 50])
    (back,) = mirrored_samples([out], tmp_path / "mm")
    np.testing.assert_allclose(back.points, points)
    np.testing.assert_allclose(back.box, source.box)


# --- crops levelled by the detector's eye keypoints -------------------------------------------------------


def test_align_levels_a_tilted_face_and_maps_points_back():
    from hrface.runtime.landmarker import eye_line_rotations

    torch.manual_seed(0)
    model = build_model(ArchSpec("hrnet", {"width": 4, "num_landmarks": 68})).eval()
    g = np.random.default_rng(4)
    image = cv2.GaussianBlur(g.integers(0, 256, (200, 200, 3), dtype=np.uint8), (0, 0), 2)
    box = np.array([[60.0, 60, 140, 140]])
    level = np.array([[[80.0, 90], [120, 90], [100, 110], [85, 125], [115, 125]]])
    np.testing.assert_allclose(eye_line_rotations(level), [0.0], atol=1e-12)
    for angle in (25.0, -40.0):
        turn = cv2.getRotationMatrix2D((100.0, 100.0), angle, 1.0)  # counter-clockwise as displayed
        tilted = cv2.warpAffine(image, turn, (200, 200), flags=cv2.INTER_LINEAR)
        keypoints = level @ turn[:, :2].T + turn[:, 2]
        np.testing.assert_allclose(eye_line_rotations(keypoints), [-angle], atol=1e-9)
        landmarker = Landmarker(model, backend="torch", align=True)
        upright, _ = landmarker.crop(image, box)
        levelled, _ = landmarker.crop(tilted, box, eye_line_rotations(keypoints))
        inner = (slice(30, -30), slice(30, -30))  # away from the corners the turn brings in from outside
        assert np.abs(levelled[0][inner].astype(int) - upright[0][inner]).mean() < 4.0
        # the same crop gives the same heatmaps, so the points come back turned with the image
        a, _ = landmarker.predict(image, box, level)
        b, _ = landmarker.predict(tilted, box, keypoints)
        distance = np.linalg.norm(b - (a @ turn[:, :2].T + turn[:, 2]), axis=-1)
        assert np.mean(distance < 0.6) > 0.8, np.sort(distance)  # a random model's flat peaks may jump
        plain, _ = Landmarker(model, backend="torch", align=False).predict(tilted, box, keypoints)
        assert np.abs(plain - b).max() > 1.0  # with align=False the keypoints are ignored


# --- precise BatchNorm statistics -------------------------------------------------------------------------


def test_recalibrate_batchnorm_uses_the_exact_average_of_the_batches():
    from hrface.training.common import recalibrate_batchnorm

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4, momentum=0.1))
    batches = [torch.randn(5, 3, 8, 8) * (i + 1) + i for i in range(3)]
    recalibrate_batchnorm(model, batches, torch.device("cpu"))
    with torch.no_grad():
        features = torch.cat([model[0](b) for b in batches])  # equal batch sizes: the batch average is exact
    per_batch_mean = torch.stack([model[0](b).mean(dim=(0, 2, 3)) for b in batches]).mean(0).detach()
    torch.testing.assert_close(model[1].running_mean, per_batch_mean, rtol=1e-5, atol=1e-5)
    assert model[1].momentum == 0.1 and not model.training
    assert abs(features.mean().item() - model[1].running_mean.mean().item()) < 1e-4


def test_trainer_with_precise_bn_validates_on_recalibrated_statistics(face, tmp_path):
    cfg = config(tmp_path, precise_bn=2, loss="awing")
    result = train(cfg, [face, face, face], [face], progress=False)
    assert result["epoch"] == 1 and result["best_nme"] is not None
    with pytest.raises(ConfigError, match="precise_bn"):
        config(tmp_path, precise_bn=-1)


# --- frozen BatchNorm in the last epochs -----------------------------------------------------------------


def test_frozen_bn_training_mode_keeps_statistics_and_learns_the_affine_weights():
    from hrface.training.common import set_training_mode

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Dropout(0.5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for frozen in (True, False):
        stats = model[1].running_mean.clone(), model[1].running_var.clone()
        weight = model[1].weight.detach().clone()
        set_training_mode(model, frozen)
        assert model.training and model[2].training and model[1].training != frozen
        optimizer.zero_grad()
        model(torch.randn(4, 3, 8, 8) * 3 + 1).square().mean().backward()
        optimizer.step()
        assert not torch.equal(model[1].weight, weight)  # the affine weights learn either way
        unchanged = torch.equal(model[1].running_mean, stats[0]) and torch.equal(model[1].running_var, stats[1])
        assert unchanged == frozen


def test_trainer_freezes_batchnorm_statistics_in_the_last_epochs(face, tmp_path):
    cfg = config(tmp_path, schedule={"epochs": 2, "lr_steps": [2], "frozen_bn_epochs": 1})
    faces = [face, face, face, face]  # two steps per epoch at batch size 2

    def state() -> dict[str, torch.Tensor]:
        return torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]

    train(cfg, faces, [], max_steps=2, progress=False)  # the first epoch: statistics still learnt
    first = state()
    train(cfg, faces, [], resume=True, progress=False)
    second = state()
    stats = [k for k in first if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in first if k.endswith(".weight")]
    assert stats and all(torch.equal(first[k], second[k]) for k in stats)
    assert any(not torch.equal(first[k], second[k]) for k in weights)
    with pytest.raises(ConfigError, match="frozen_bn_epochs"):
        config(tmp_path, schedule={"epochs": 2, "lr_steps": [2], "frozen_bn_epochs": 2})
