"""Detection samples as RetinaFace training inputs and targets.

An item is ``(image, targets)``:

- ``image``: (3, S, S) float32 tensor, BGR minus (104, 117, 123), S = ``image_size``;
- ``targets``: (M, 15) float32 tensor, one row per face ``x1 y1 x2 y2 kx1 ky1 … kx5 ky5 label``:
  box and keypoints normalised by the (padded, square) image side, so in [0, 1]; keypoints in the
  RetinaFace order (image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth
  corner); ``label`` 1 for a face with keypoints, −1 for one without (its keypoint values are −1).
  M may be 0 (an image without faces with area).

Randomness is a :class:`numpy.random.Generator` seeded from ``(seed, epoch, index)`` only
(:func:`hrface.training.landmarks.dataset.sample_rng`): an item is the same in every run, whatever
the number of DataLoader workers. Call :meth:`DetectionTrainDataset.set_epoch` before each epoch.
With an ``augmentation`` config, that generator first decides the item's layout (reference
augmentation, zoom-out or mosaic: :func:`~.mosaic.choose_grid`) and, for a mosaic, which other
training photos join it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ...data.detection.samples import DetectionSample
from ...io.image import read_image
from ..landmarks.dataset import sample_rng
from .augment import Faces, augment, prepare
from .config import DetectionAugmentConfig
from .matching import TARGET_COLUMNS
from .mosaic import CanvasOptions, augment_canvas, choose_grid


def target_rows(faces: Faces) -> np.ndarray:
    """(M, 15) float32 target rows of normalised faces (layout in the module doc)."""
    m = len(faces.boxes)
    rows = np.full((m, TARGET_COLUMNS), -1.0, dtype=np.float32)
    rows[:, :4] = faces.boxes
    has = faces.has_keypoints
    rows[has, 4:14] = faces.keypoints[has].reshape(-1, 10)
    rows[has, 14] = 1.0
    return rows


class DetectionTrainDataset(Dataset):
    """Detection samples as ``(image, targets)`` pairs (see the module doc).

    Args:
        samples: annotated images (boxes and keypoints in image pixels).
        image_size: S, the side of the square network input.
        train: apply the random augmentation of :func:`~.augment.augment`; else only pad to square,
            resize (linear) and subtract the mean (:func:`~.augment.prepare`).
        seed: base seed of the augmentation.
        augmentation: mosaic / zoom-out options (:class:`~.config.DetectionAugmentConfig`); None or its
            defaults: the reference augmentation only.
        cache_bytes: decode the photos once, in sample order, and keep them (read-only) as long as their
            total stays within this many bytes; the others are read from disk when drawn (0: none).
    """

    def __init__(
        self,
        samples: Sequence[DetectionSample],
        image_size: int = 640,
        train: bool = True,
        seed: int = 0,
        augmentation: DetectionAugmentConfig | None = None,
        cache_bytes: int = 0,
    ) -> None:
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.samples = list(samples)
        self.image_size = int(image_size)
        self.train = bool(train)
        self.seed = int(seed)
        self.epoch = 0
        self.augmentation = augmentation or DetectionAugmentConfig()
        a = self.augmentation
        self.canvas_options = CanvasOptions((a.face_size[0], a.face_size[1]), a.min_face)
        has_faces = np.array([sample.num_faces > 0 for sample in self.samples], bool)
        self.face_free, self.with_faces = np.flatnonzero(~has_faces), np.flatnonzero(has_faces)
        self.cached = cache_photos(self.samples, cache_bytes)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of epoch ``epoch`` (set before the DataLoader iterator is created)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.train:
            net_input, faces = prepare(*self._photo(index), self.image_size)
            return torch.from_numpy(net_input), torch.from_numpy(target_rows(faces))
        rng = sample_rng(self.seed, self.epoch, index)
        a = self.augmentation
        grid = choose_grid(rng, a.mosaic_prob, a.zoom_out_prob, a.mosaic_grids)
        if grid is None or self.samples[index].num_faces == 0:  # a face-free image: one random square of it
            net_input, faces = augment(*self._photo(index), rng, self.image_size)
        else:
            others = rng.integers(len(self.samples), size=grid * grid - 1)
            if len(self.face_free):  # the cells hold photos with faces, or a face-free image with negative_cell_prob
                others = self.with_faces[others % len(self.with_faces)]
                if a.negative_cell_prob > 0:
                    free = rng.random(len(others)) < a.negative_cell_prob
                    others[free] = self.face_free[rng.integers(len(self.face_free), size=int(free.sum()))]
            chosen = np.concatenate([[index], others])[rng.permutation(grid * grid)]
            photos = [self._photo(int(i)) for i in chosen]
            background = None
            if a.background_prob > 0 and len(self.face_free) and rng.random() < a.background_prob:
                background = self._photo(int(self.face_free[rng.integers(len(self.face_free))]))[0]
            net_input, faces = augment_canvas(photos, rng, self.image_size, grid, self.canvas_options, background)
        return torch.from_numpy(net_input), torch.from_numpy(target_rows(faces))

    def _photo(self, index: int) -> tuple[np.ndarray, Faces]:
        sample = self.samples[index]
        photo = self.cached.get(index)
        return (read_image(sample.image) if photo is None else photo), Faces.of(sample)


def cache_photos(samples: Sequence[DetectionSample], budget_bytes: int) -> dict[int, np.ndarray]:
    """The decoded photos of the first ``samples``, by index, up to the first that would take the total
    over ``budget_bytes``; read-only, so that no augmentation can change a cached photo in place."""
    cached: dict[int, np.ndarray] = {}
    total = 0
    for index, sample in enumerate(samples if budget_bytes > 0 else ()):
        photo = read_image(sample.image)
        if total + photo.nbytes > budget_bytes:
            break
        photo.flags.writeable = False
        cached[index] = photo
        total += photo.nbytes
    return cached


def detection_collate(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Stack the images of a batch: ``(images (N, 3, S, S), [targets (M_i, 15) per image])``."""
    images = torch.stack([image for image, _ in batch])
    return images, [targets for _, targets in batch]
