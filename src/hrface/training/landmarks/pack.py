"""Face packs: a training set's faces cut out once, so that a run needs neither the photos nor a detector.

A pack is a folder with one JPEG per face and an index, ``faces.json``:

- each face image is the square region of side ``context`` × the face's crop side (the inference crop,
  :func:`~hrface.landmarks.crop.crop_from_box`: 1.25 × the box's longer side) around the crop centre,
  resampled to ``size``² pixels; the default ``context`` 1.8 holds a crop scaled by 1.25 and rotated by
  45° (1.25 × √2 ≈ 1.77), so augmentation rarely reaches past the cut-out;
- each index entry has the face's file, its points and crop box in that image's pixels (0-based, as
  everywhere), its photo id, subset and side of the split (``train`` / ``val``).

The crop box goes through the same mapping as the points, so the training crops of a pack are the crops
of the photos, resampled once more.  A pack of the 1,207 300W AFW + HELEN faces at the default 320 px
is about 30 MB: it travels with a working tree to a GPU machine (``pack:`` in the training config).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from ...data.landmarks.samples import LandmarkSample, indices_by_image
from ...errors import ConfigError
from ...io.files import atomic_write_bytes, atomic_write_text
from ...io.image import read_image
from ...landmarks.crop import apply_affine, crop_from_box, crop_matrix, warp_crops

INDEX = "faces.json"
PACK_VERSION = 1


def write_pack(
    out_dir: str | os.PathLike[str],
    train: Sequence[LandmarkSample],
    val: Sequence[LandmarkSample],
    size: int = 320,
    context: float = 1.8,
    quality: int = 92,
) -> Path:
    """Cut out every face of ``train`` and ``val`` into ``out_dir`` (module doc); returns the index path.

    Each photo is read once; files are written atomically and the index last, so an interrupted run
    leaves no index that names missing files.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    faces = [(s, "train") for s in train] + [(s, "val") for s in val]
    entries: list[dict | None] = [None] * len(faces)
    for image_path, indices in indices_by_image([sample for sample, _ in faces]).items():
        image = read_image(image_path)
        for i in indices:
            sample, side = faces[i]
            centre, crop_side = crop_from_box(sample.crop_box())
            matrix = crop_matrix(centre, max(float(crop_side), 1.0) * context, size)
            ok, encoded = cv2.imencode(".jpg", warp_crops(image, matrix, size)[0], [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise ConfigError(f"{image_path}: could not encode the face cut-out as JPEG")
            name = f"{i:06d}.jpg"
            atomic_write_bytes(out / name, encoded.tobytes())
            corners = apply_affine(np.asarray(sample.crop_box(), np.float64).reshape(2, 2), matrix)
            entries[i] = {
                "file": name,
                "points": np.round(apply_affine(np.asarray(sample.points, np.float64), matrix), 3).tolist(),
                "box": np.round(corners.reshape(-1), 3).tolist(),
                "photo": sample.photo,
                "subset": sample.subset,
                "split": side,
                "source": str(sample.image),
            }
    index = {"version": PACK_VERSION, "size": size, "context": context, "faces": entries}
    path = out / INDEX
    atomic_write_text(path, json.dumps(index))
    return path


def read_pack(pack_dir: str | os.PathLike[str]) -> tuple[list[LandmarkSample], list[LandmarkSample]]:
    """``(train, val)`` samples of a pack (images, points and crop boxes in the cut-outs' pixels);
    :class:`ConfigError` with one line when the folder is not a readable pack."""
    root = Path(pack_dir)
    try:
        index = json.loads((root / INDEX).read_text())
        faces = index["faces"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{root}: not a face pack ({exc}); make one with hrface pack-faces") from None
    if index.get("version") != PACK_VERSION:
        raise ConfigError(f"{root}: face pack version {index.get('version')}, this hrface reads {PACK_VERSION}")
    train, val = [], []
    for entry in faces:
        sample = LandmarkSample(
            image=root / entry["file"],
            points=np.asarray(entry["points"], dtype=np.float64),
            box=np.asarray(entry["box"], dtype=np.float64),
            photo=entry["photo"],
            subset=entry["subset"],
        )
        (val if entry["split"] == "val" else train).append(sample)
    return train, val
