"""Training / validation crops and heatmap targets for the landmark model.

Each sample's crop is the inference crop (:func:`hrface.landmarks.crop.crop_from_box` of
``sample.crop_box()``: side = max(w, h) × 1.25), optionally augmented as in the reference
HRNet recipe (random scale of the side, rotation, horizontal flip), by a random shift of the crop
centre (a detector's box noise) and by appearance changes (:mod:`.appearance`).  The augmentation is expressed
as one image → crop affine matrix (:func:`~hrface.landmarks.crop.crop_matrix`) that warps the image
*and* maps the points, so crops and targets always agree.

Randomness is a :class:`numpy.random.Generator` seeded from ``(seed, epoch, index)`` only (the
appearance changes from ``(seed, epoch, index, 1)``): a sample
is the same in every run, whatever the number of DataLoader workers, and nothing depends on the
global RNGs.  Call :meth:`LandmarkTrainDataset.set_epoch` before iterating each epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...data.landmarks.samples import LandmarkSample
from ...io.image import read_image
from ...landmarks.crop import apply_affine, crop_from_box, crop_matrix, crop_to_heatmap, warp_crops
from ...landmarks.heatmaps import render_gaussian_heatmaps
from ...landmarks.layouts import get_layout
from ...models.config import LANDMARK_MEAN, LANDMARK_STD, heatmap_sigma
from .appearance import AppearanceParams, augment_appearance
from .config import LandmarkTrainConfig

_MEAN = np.asarray(LANDMARK_MEAN, dtype=np.float32)
_STD = np.asarray(LANDMARK_STD, dtype=np.float32)


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The augmentation generator of one sample in one epoch (all three non-negative)."""
    return np.random.default_rng([seed, epoch, index])


def normalize_crop(crop_bgr: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 BGR crop → (3, S, S) float32 RGB in [0, 1] normalised with the landmark models' mean / std
    (:data:`~hrface.models.config.LANDMARK_MEAN`, recorded in the trained model's configuration: the same input the
    :class:`~hrface.runtime.landmarker.Landmarker` feeds the model)."""
    rgb = crop_bgr[..., ::-1].astype(np.float32) / 255.0
    return np.ascontiguousarray(((rgb - _MEAN) / _STD).transpose(2, 0, 1))


class LandmarkTrainDataset(Dataset):
    """Landmark samples as model inputs and Gaussian heatmap targets.

    Args:
        samples: annotated faces (points in image pixels, 0-based pixel centres).
        num_landmarks: K; every sample must have K points and K must be a known layout
            (its flip permutation is used when flipping).
        train: apply the random augmentation (else the plain inference crop).
        config: sizes, σ, augmentation and seed (defaults: :class:`LandmarkTrainConfig`).

    An item is a dict of tensors:

    - ``image`` (3, S, S) float32 normalised RGB crop, S = ``config.input_size``;
    - ``heatmaps`` (K, H, H) float32 targets, H = ``config.heatmap_size`` (peak 1, zero maps for
      points outside the heatmap or non-finite);
    - ``target_weight`` (K,) float32, 1 where the map has a target, else 0;
    - ``points_crop`` (K, 2) float32 points ``(x, y)`` in crop pixels (after flip: in flipped order);
    - ``matrix`` (2, 3) float64 image → crop affine matrix (includes scale, rotation and flip);
    - ``index`` int64 index of the sample in ``samples``.
    """

    def __init__(
        self,
        samples: Sequence[LandmarkSample],
        num_landmarks: int,
        train: bool,
        config: LandmarkTrainConfig | None = None,
    ) -> None:
        self.samples = list(samples)
        self.num_landmarks = int(num_landmarks)
        self.train = bool(train)
        self.config = config if config is not None else LandmarkTrainConfig()
        self.layout = get_layout(self.num_landmarks)
        self.flip_perm = self.layout.flip_permutation()
        self.sigma = self.config.sigma if self.config.sigma is not None else heatmap_sigma(self.num_landmarks)
        aug = self.config.augmentation
        self.appearance = AppearanceParams(aug.color, aug.blur_prob, aug.jpeg_prob, aug.occlusion_prob)
        self.epoch = 0
        for i, s in enumerate(self.samples):
            if np.shape(s.points) != (self.num_landmarks, 2):
                raise ValueError(
                    f"sample {i} ({s.image}) has points of shape {np.shape(s.points)}, "
                    f"expected ({self.num_landmarks}, 2)"
                )

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of epoch ``epoch`` (set before the DataLoader iterator is created)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def augmentation(self, index: int) -> tuple[float, float, bool, np.ndarray]:
        """``(scale, rotation degrees, flip, centre shift (2,) as a fraction of the crop side)`` of sample
        ``index`` in the current epoch.

        The generator always draws the same six numbers in the same order, so one option's value
        never shifts another's stream (the first four are those of the reference recipe).
        """
        if not self.train:
            return 1.0, 0.0, False, np.zeros(2)
        aug = self.config.augmentation
        u_scale, u_rot_p, u_rot, u_flip, *u_shift = sample_rng(self.config.seed, self.epoch, index).random(6)
        scale = 1.0 + aug.scale_factor * (2.0 * u_scale - 1.0)
        rotation = aug.rotation * (2.0 * u_rot - 1.0) if u_rot_p < aug.rotation_prob else 0.0
        shift = aug.box_shift * (2.0 * np.asarray(u_shift) - 1.0)
        return scale, rotation, bool(aug.flip and u_flip < 0.5), shift

    def matrix(self, index: int) -> tuple[np.ndarray, bool]:
        """(2, 3) image → crop matrix of sample ``index`` (with this epoch's augmentation) and its flip flag."""
        scale, rotation, flip, shift = self.augmentation(index)
        center, size = crop_from_box(self.samples[index].crop_box())
        center = np.asarray(center, dtype=np.float64) + shift * float(size)
        size = max(float(size) * scale, 1.0)  # degenerate boxes still give a (tiny) valid crop
        return crop_matrix(center, size, self.config.input_size, rotation, flip), flip

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        matrix, flip = self.matrix(index)
        s, h = self.config.input_size, self.config.heatmap_size
        crop = warp_crops(read_image(sample.image), matrix, s)[0]
        if self.train and self.appearance.active:
            rng = np.random.default_rng([self.config.seed, self.epoch, index, 1])
            crop = augment_appearance(crop, self.appearance, rng)
        points = apply_affine(np.asarray(sample.points, dtype=np.float64), matrix)
        if flip:  # the matrix mirrored the positions; re-index so point i is again semantic point i
            points = points[self.flip_perm]
        hm_points = crop_to_heatmap(points, h, s)
        heatmaps = render_gaussian_heatmaps(hm_points, h, self.sigma)
        weight = heatmaps.reshape(len(heatmaps), -1).max(axis=1) > 0  # render gives zero maps off the map
        return {
            "image": torch.from_numpy(normalize_crop(crop)),
            "heatmaps": torch.from_numpy(heatmaps),
            "target_weight": torch.from_numpy(weight.astype(np.float32)),
            "points_crop": torch.from_numpy(points.astype(np.float32)),
            "matrix": torch.from_numpy(matrix),
            "index": torch.tensor(index, dtype=torch.int64),
        }
