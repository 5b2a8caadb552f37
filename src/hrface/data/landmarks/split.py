"""Train/validation splits that hold out whole photos, and their JSON files.

Faces of one photo (same ``photo`` id) are never split between the parts: near-identical crops of
the same photo in both would make validation errors look better than they are.

The split is stratified by subset: each subset's photos are shuffled (by ``seed`` and the subset's
name, so adding another subset leaves this one's split unchanged) and taken into validation while
that brings its face count closer to ``val_fraction`` of the subset's faces.  A photo whose faces
lie in several subsets counts for the subset of its first face.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...io.files import atomic_write_text
from .parsing import DatasetError, where
from .samples import LandmarkSample

__all__ = ["PhotoSplit", "load_split", "photo_id", "save_split", "split_by_photo", "split_images"]

_FORMAT = "hrface-landmark-split"


def photo_id(sample: LandmarkSample) -> str:
    """The photo a sample belongs to: its ``photo`` id, or its image path when that is empty."""
    return sample.photo or str(sample.image)


def split_by_photo(
    samples: Sequence[LandmarkSample], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[LandmarkSample], list[LandmarkSample]]:
    """Split samples into ``(train, val)`` by photo, about ``val_fraction`` of the faces in ``val``.

    Deterministic for a given ``seed`` and sample list; both parts keep the input order.  Per subset
    the validation face count is as close to ``val_fraction × faces`` as whole photos allow (a subset
    of a single photo stays in train unless its faces are nearer the target in val).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    faces: dict[str, int] = {}
    subset_of: dict[str, str] = {}
    for s in samples:
        key = photo_id(s)
        faces[key] = faces.get(key, 0) + 1
        subset_of.setdefault(key, s.subset)
    by_subset: dict[str, list[str]] = {}
    for key in sorted(faces):
        by_subset.setdefault(subset_of[key], []).append(key)
    val_photos: set[str] = set()
    for subset, photos in sorted(by_subset.items()):
        rng = np.random.default_rng([seed, zlib.crc32(subset.encode())])
        target = val_fraction * sum(faces[p] for p in photos)
        taken = 0
        for i in rng.permutation(len(photos)):
            n = faces[photos[i]]
            if abs(taken + n - target) < abs(taken - target):
                val_photos.add(photos[i])
                taken += n
    return PhotoSplit(frozenset(faces) - val_photos, frozenset(val_photos)).apply(samples)


@dataclass(frozen=True)
class PhotoSplit:
    """The photo ids of each part of a split (disjoint sets)."""

    train: frozenset[str]
    val: frozenset[str]

    def apply(self, samples: Sequence[LandmarkSample]) -> tuple[list[LandmarkSample], list[LandmarkSample]]:
        """``(train, val)`` samples in input order; :class:`DatasetError` if a sample's photo is in neither."""
        train, val, unknown = [], [], []
        for s in samples:
            key = photo_id(s)
            if key in self.val:
                val.append(s)
            elif key in self.train:
                train.append(s)
            else:
                unknown.append(key)
        if unknown:
            raise DatasetError(
                f"{len(set(unknown))} photos (e.g. {unknown[0]!r}) are in neither part of the split; "
                "the split was made for other data"
            )
        return train, val


def save_split(path: str | os.PathLike[str], train: Sequence[LandmarkSample], val: Sequence[LandmarkSample]) -> None:
    """Write the photo ids of both parts as JSON, atomically (sorted, so equal splits give equal files):
    ``{"format": "hrface-landmark-split", "version": 1, "train": [...], "val": [...]}``."""
    train_ids, val_ids = sorted({photo_id(s) for s in train}), sorted({photo_id(s) for s in val})
    both = set(train_ids) & set(val_ids)
    if both:
        raise ValueError(f"{len(both)} photos (e.g. {min(both)!r}) are in both parts")
    doc = {"format": _FORMAT, "version": 1, "train": train_ids, "val": val_ids}
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")


def load_split(path: str | os.PathLike[str]) -> PhotoSplit:
    """Read a split written by :func:`save_split`; apply it with :meth:`PhotoSplit.apply`."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise DatasetError(f"{where(path)}: cannot read split file ({e.strerror or e})") from None
    except ValueError as e:
        raise DatasetError(f"{where(path)}: not a JSON file ({e})") from None
    ok = isinstance(doc, dict) and doc.get("format") == _FORMAT
    parts = [doc.get(k) for k in ("train", "val")] if ok else []
    if not ok or not all(isinstance(p, list) and all(isinstance(x, str) for x in p) for p in parts):
        raise DatasetError(f"{where(path)}: not an hrface split file ({_FORMAT!r} with train and val lists)")
    train, val = frozenset(parts[0]), frozenset(parts[1])
    if train & val:
        raise DatasetError(f"{where(path)}: {len(train & val)} photos are listed in both train and val")
    return PhotoSplit(train, val)


def split_images(
    folders: Sequence[str | os.PathLike[str]], split: str | os.PathLike[str], part: str = "val"
) -> list[Path]:
    """The image files of one part (``'train'`` or ``'val'``) of a split, in 300W-style ``folders``: sorted,
    each once (an AFW photo with several faces is one image)."""
    from .pts import read_300w_folder

    samples = [sample for folder in folders for sample in read_300w_folder(folder)]
    train, val = load_split(split).apply(samples)
    return sorted({Path(sample.image) for sample in (val if part == "val" else train)})
