"""Landmark annotation readers on small generated files: .pts, HRNet CSV, WFLW lists and COFW .mat."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import raises_dataset_error
from hrface.data.landmarks import (
    WFLW_ATTRIBUTES,
    box_from_center_scale,
    export_cofw,
    read_300w_folder,
    read_aflw_box_sizes,
    read_cofw_mat,
    read_hrnet_csv,
    read_pts,
    read_wflw_list,
    strip_face_index,
    wflw_subset_masks,
    write_hrnet_csv,
    write_pts,
)


def _png(path: Path, w: int = 16, h: int = 12) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((h, w, 3), 128, np.uint8))
    return path


def _points(k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 10, (k, 2)).round(3)


# --- .pts ---------------------------------------------------------------------------------------


def test_pts_round_trip_is_exact(tmp_path):
    pts = np.random.default_rng(1).uniform(-5, 900, (68, 2))
    write_pts(tmp_path / "a.pts", pts)
    back = read_pts(tmp_path / "a.pts")
    assert back.shape == (68, 2) and back.dtype == np.float64
    np.testing.assert_array_equal(back, pts)
    with pytest.raises(ValueError):
        write_pts(tmp_path / "b.pts", np.zeros((3, 3)))


def test_pts_tolerates_crlf_blank_lines_and_bom(tmp_path):
    text = "\ufeffversion: 1\r\n\r\nn_points:  3\r\n{\r\n1 2\r\n\r\n3.5 4\r\n-1e1 6\r\n}\r\n\r\n"
    (tmp_path / "a.pts").write_bytes(text.encode("utf-8"))
    np.testing.assert_array_equal(read_pts(tmp_path / "a.pts"), [[1, 2], [3.5, 4], [-10, 6]])


@pytest.mark.parametrize(
    ("text", "line", "pattern"),
    [
        ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", 6, r"n_points \(line 2\) is 3 but 2 points"),
        ("version: 1\nn_points: 2\n{\n1 2\n3 4\n5 6\n}\n", 7, r"is 2 but 3 points"),
        ("version: 1\nn_points: 2\n{\n1 2\n3 abc\n}\n", 5, r"'abc' is not a number"),
        ("version: 1\nn_points: 2\n1 2\n3 4\n", 3, r"expected 'key: value' or '\{'"),
        ("version: 1\nn_points: 2\n{\n1 2\n3 4\n", 5, r"missing closing '\}' after 2 points"),
        ("version: 1\nn_points: 2\n{\n1 2\n3\n}\n", 5, r"expected a point 'x y'"),
        ("version: 1\n{\n1 2\n}\n", 2, r"no 'n_points: K' line"),
        ("version: 1\nn_points: two\n{\n}\n", 2, r"n_points must be a whole number"),
        ("version: 1\nn_points: 1\n{\n1 nan\n}\n", 4, r"must be finite"),
        ("version: 1\nn_points: 1\n{\n1 2\n}\nextra\n", 6, r"unexpected text 'extra' after"),
    ],
)
def test_pts_malformed_files_name_file_and_line(tmp_path, text, line, pattern):
    path = tmp_path / "bad.pts"
    path.write_text(text)
    raises_dataset_error(lambda: read_pts(path), path, line, pattern)


def test_pts_missing_file(tmp_path):
    raises_dataset_error(lambda: read_pts(tmp_path / "nope.pts"), tmp_path / "nope.pts", None, "cannot read")


def test_strip_face_index():
    assert strip_face_index("1051618982_2") == "1051618982"
    assert strip_face_index("image_003_1") == "image_003"
    assert strip_face_index("image_0001") == "image_0001"
    assert strip_face_index("indoor_001") == "indoor_001"
    assert strip_face_index("einstein") == "einstein"


def test_300w_folder_matches_faces_to_photos(tmp_path):
    folder = tmp_path / "afw"
    _png(folder / "123.jpg")
    write_pts(folder / "123_2.pts", _points(68, 2))
    write_pts(folder / "123_1.pts", _points(68, 1))
    _png(folder / "b.png")
    write_pts(folder / "b.pts", _points(68, 3))
    _png(folder / "c_1.PNG")  # a per-face copy (original 300W) with an upper-case suffix
    write_pts(folder / "c_1.pts", _points(68, 4))
    _png(folder / "image_0001.png")
    write_pts(folder / "image_0001.pts", _points(68, 5))
    (folder / "notes.txt").write_text("ignored")

    samples = read_300w_folder(folder)
    assert [s.image.name for s in samples] == ["123.jpg", "123.jpg", "b.png", "c_1.PNG", "image_0001.png"]
    assert [s.photo for s in samples] == ["afw/123", "afw/123", "afw/b", "afw/c", "afw/image_0001"]
    assert {s.subset for s in samples} == {"afw"}
    assert all(s.box is None and s.visible is None for s in samples)
    np.testing.assert_array_equal(samples[0].points, _points(68, 1))

    again = read_300w_folder(folder, subset="x", one_based=True)
    assert {s.subset for s in again} == {"x"}
    np.testing.assert_array_equal(again[0].points, _points(68, 1) - 1)


def test_300w_folder_missing_image(tmp_path):
    folder = tmp_path / "helen"
    _png(folder / "a.jpg")
    write_pts(folder / "a_1.pts", _points(68))
    write_pts(folder / "z_1.pts", _points(68))
    pattern = r"no image z\.<jpg.*skip_missing=True"
    raises_dataset_error(lambda: read_300w_folder(folder), folder / "z_1.pts", None, pattern)
    assert [s.photo for s in read_300w_folder(folder, skip_missing=True)] == ["helen/a"]


def test_300w_folder_errors(tmp_path):
    raises_dataset_error(lambda: read_300w_folder(tmp_path / "none"), tmp_path / "none", None, "not a folder")
    (tmp_path / "empty").mkdir()
    raises_dataset_error(lambda: read_300w_folder(tmp_path / "empty"), tmp_path / "empty", None, r"no \.pts files")
    folder = tmp_path / "f"
    _png(folder / "a.jpg")
    (folder / "a.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    raises_dataset_error(lambda: read_300w_folder(folder), folder / "a.pts", 5, "is 68 but 1 points")


# --- HRNet CSV ----------------------------------------------------------------------------------


def _csv_row(name: str, lead: list[float], points: np.ndarray) -> str:
    return ",".join([name, *map(str, lead), *map(str, points.reshape(-1))])


def _header(k: int, aflw: bool = False) -> str:
    lead = ["image_name", "scale", *(["box_size"] if aflw else []), "center_w", "center_h"]
    return ",".join(lead + [f"original_{i}_{a}" for i in range(k) for a in "xy"])


def test_hrnet_csv_300w(tmp_path):
    p1, p2 = _points(68, 1), _points(68, 2)
    rows = [
        _header(68),
        _csv_row("afw/123_2.jpg", [1.5, 100, 80], p1),
        _csv_row("lfpw/trainset/image_0001.png", [0.5, 10, 20], p2),
    ]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    samples = read_hrnet_csv(tmp_path / "a.csv", tmp_path / "images")
    assert [s.image for s in samples] == [
        tmp_path / "images/afw/123_2.jpg",
        tmp_path / "images/lfpw/trainset/image_0001.png",
    ]
    assert [s.photo for s in samples] == ["afw/123", "lfpw/trainset/image_0001"]
    assert [s.subset for s in samples] == ["afw", "lfpw"]
    np.testing.assert_array_equal(samples[0].box, box_from_center_scale(np.array([100, 80]), 1.5))
    np.testing.assert_array_equal(samples[0].box, [-50, -70, 250, 230])
    np.testing.assert_array_equal(samples[1].points, p2)

    shifted = read_hrnet_csv(tmp_path / "a.csv", tmp_path, layout="300w", subset="s", one_based=True)
    assert {s.subset for s in shifted} == {"s"}
    np.testing.assert_array_equal(shifted[0].points, p1 - 1)
    np.testing.assert_array_equal(shifted[0].box, [-51, -71, 249, 229])


def test_hrnet_csv_wflw_and_aflw(tmp_path):
    p = _points(98)
    (tmp_path / "w.csv").write_text(_header(98) + "\n" + _csv_row("51--Dresses/51_Dresses_51_377.jpg", [2, 5, 6], p))
    (s,) = read_hrnet_csv(tmp_path / "w.csv", tmp_path)
    assert s.photo == "51--Dresses/51_Dresses_51_377" and s.subset == "51--Dresses"
    np.testing.assert_array_equal(s.points, p)

    q = _points(19)
    rows = [_csv_row("flickr/0/image00002.jpg", [1.0, 180.5, 50, 60], q), _csv_row("x.jpg", [2.0, 7, 1, 2], q)]
    (tmp_path / "a.csv").write_text(_header(19, aflw=True) + "\n" + "\n".join(rows))
    (tmp_path / "a_noheader.csv").write_text("\n".join(rows) + "\n")
    for name in ("a.csv", "a_noheader.csv"):
        faces = read_hrnet_csv(tmp_path / name, tmp_path)
        np.testing.assert_array_equal(faces[0].box, [-50, -40, 150, 160])
        np.testing.assert_array_equal(faces[1].points, q)
        assert [f.subset for f in faces] == ["flickr", ""]
        np.testing.assert_array_equal(read_aflw_box_sizes(tmp_path / name), [180.5, 7])


@pytest.mark.parametrize(
    ("rows", "layout", "line", "pattern"),
    [
        (
            ["a.jpg,1,2,3," + ",".join(["1"] * 136), "b.jpg,1,2,3," + ",".join(["1"] * 135)],
            "auto",
            3,
            "expected 140 columns, got 139",
        ),
        (["a.jpg,1,2,3," + ",".join(["1"] * 135) + ",x"], "auto", 2, "'x' is not a number"),
        (["a.jpg,0,2,3," + ",".join(["1"] * 136)], "auto", 2, "scale must be positive"),
        (["a.jpg,1,2,3," + ",".join(["1"] * 136)], "wflw", 2, r"140 columns do not fit the wflw layout"),
        ([], "auto", None, "no annotation rows"),
    ],
)
def test_hrnet_csv_malformed(tmp_path, rows, layout, line, pattern):
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([_header(68), *rows]) + "\n")
    raises_dataset_error(lambda: read_hrnet_csv(path, tmp_path, layout=layout), path, line, pattern)


def test_hrnet_csv_round_trip(tmp_path):
    folder = tmp_path / "root" / "afw"
    for i in range(3):
        _png(folder / f"{i}.png")
        write_pts(folder / f"{i}_1.pts", _points(68, i) * 7.3)
    samples = read_300w_folder(folder)
    samples[1] = samples[1].with_box(np.array([1.25, 2.5, 101.25, 102.5]))
    write_hrnet_csv(tmp_path / "out.csv", samples, image_root=tmp_path / "root")
    assert (tmp_path / "out.csv").read_text().startswith("image_name,scale,center_w,center_h,original_0_x,")
    back = read_hrnet_csv(tmp_path / "out.csv", tmp_path / "root")
    assert [(b.image, b.photo, b.subset) for b in back] == [(s.image, s.photo, s.subset) for s in samples]
    for s, b in zip(samples, back, strict=True):
        np.testing.assert_array_equal(b.points, s.points)
        box = s.crop_box()
        side = max(box[2] - box[0], box[3] - box[1])
        np.testing.assert_allclose(b.box, box_from_center_scale((box[:2] + box[2:]) / 2, side / 200), atol=1e-9)
    np.testing.assert_allclose(back[1].box, samples[1].box, atol=1e-9)  # a square box reads back as it was
    with pytest.raises(ValueError):
        write_hrnet_csv(tmp_path / "x.csv", [])


# --- WFLW lists ---------------------------------------------------------------------------------


def _wflw_line(points: np.ndarray, box: list[float], attrs: list[int], name: str) -> str:
    return " ".join([*map(str, points.reshape(-1)), *map(str, box), *map(str, attrs), name])


def test_wflw_list(tmp_path):
    p1, p2 = _points(98, 1), _points(98, 2)
    lines = [
        _wflw_line(p1, [1, 2, 30, 40], [1, 0, 0, 0, 1, 0], "51--Dresses/51_Dresses_51_377.jpg"),
        "",
        _wflw_line(p2, [5.5, 6, 50, 60], [0, 1, 0, 0, 0, 1], "51--Dresses/51_Dresses_51_377.jpg"),
    ]
    (tmp_path / "list.txt").write_text("\r\n".join(lines) + "\r\n")
    samples, attrs = read_wflw_list(tmp_path / "list.txt", tmp_path / "WFLW_images", with_attributes=True)
    assert len(samples) == 2 and attrs.shape == (2, 6) and attrs.dtype == bool
    assert samples[0].image == tmp_path / "WFLW_images/51--Dresses/51_Dresses_51_377.jpg"
    assert {s.photo for s in samples} == {"51--Dresses/51_Dresses_51_377"} and {s.subset for s in samples} == {""}
    np.testing.assert_array_equal(samples[1].points, p2)
    np.testing.assert_array_equal(samples[1].box, [5.5, 6, 50, 60])
    masks = wflw_subset_masks(attrs)
    assert list(masks) == ["all", *WFLW_ATTRIBUTES]
    assert masks["all"].tolist() == [True, True] and masks["pose"].tolist() == [True, False]
    assert masks["blur"].tolist() == [False, True] and masks["occlusion"].tolist() == [True, False]
    plain = read_wflw_list(tmp_path / "list.txt", tmp_path, one_based=True)
    np.testing.assert_array_equal(plain[0].points, p1 - 1)
    with pytest.raises(ValueError):
        wflw_subset_masks(np.zeros((2, 5)))


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        (lambda f: f[:150], "got 150 fields"),
        (lambda f: f[:10] + ["x"] + f[11:], "'x' is not a number"),
        (lambda f: f[:200] + ["2"] + f[201:], "attribute flags must be 0 or 1"),
        (lambda f: f[:196] + ["10", "10", "5", "20"] + f[200:], r"face box 10 10 5 20 .* has no area"),
    ],
)
def test_wflw_malformed(tmp_path, fields, pattern):
    good = _wflw_line(_points(98), [1, 2, 30, 40], [0] * 6, "a/b.jpg").split()
    path = tmp_path / "list.txt"
    path.write_text(_wflw_line(_points(98), [1, 2, 30, 40], [0] * 6, "a/b.jpg") + "\n" + " ".join(fields(good)))
    raises_dataset_error(lambda: read_wflw_list(path, tmp_path), path, 2, pattern)


# --- COFW -----------------------------------------------------------------------------------------


def _cofw_mat(path: Path, split: str = "train", with_boxes: bool = True, **extra) -> dict:
    sio = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, (20, 30), dtype=np.uint8)
    color = np.zeros((25, 15, 3), np.uint8)
    color[..., 0] = 200  # red in RGB
    images = np.empty((2, 1), dtype=object)
    images[0, 0], images[1, 0] = gray, color
    xy = rng.uniform(1, 14, (2, 58))
    occ = np.zeros((2, 29))
    occ[1, [3, 7]] = 1
    suffix = "Tr" if split == "train" else "T"
    data = {f"Is{suffix}": images, f"phis{suffix}": np.concatenate([xy, occ], axis=1)}
    if with_boxes:
        data[f"bboxes{suffix}"] = np.array([[2.0, 3.0, 10.0, 12.0], [1.0, 1.0, 5.0, 6.0]])
    data.update(extra)
    sio.savemat(path, data)
    return data


def test_cofw_export(tmp_path):
    data = _cofw_mat(tmp_path / "cofw.mat")
    samples = export_cofw(tmp_path / "cofw.mat", "train", tmp_path / "out")
    assert [s.image.name for s in samples] == ["train_0000.png", "train_0001.png"]
    assert [s.photo for s in samples] == ["cofw/train_0000", "cofw/train_0001"] and samples[0].subset == "cofw"
    np.testing.assert_array_equal(samples[0].points[:, 0], data["phisTr"][0, :29])
    np.testing.assert_array_equal(samples[0].points[:, 1], data["phisTr"][0, 29:58])
    np.testing.assert_array_equal(samples[0].box, [2, 3, 12, 15])
    assert samples[0].visible.all() and np.flatnonzero(~samples[1].visible).tolist() == [3, 7]
    gray = cv2.imread(str(samples[0].image), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(gray if gray.ndim == 2 else gray[..., 0], data["IsTr"][0, 0])
    color = cv2.imread(str(samples[1].image))
    assert color.shape == (25, 15, 3) and color[0, 0].tolist() == [0, 0, 200]  # stored RGB → BGR file

    before = [os.stat(s.image).st_mtime_ns for s in samples]
    again = export_cofw(tmp_path / "cofw.mat", "train", tmp_path / "out", one_based=True)
    assert [os.stat(s.image).st_mtime_ns for s in again] == before  # images are written once
    np.testing.assert_array_equal(again[0].points, samples[0].points - 1)


def test_cofw_read_without_boxes_and_errors(tmp_path):
    _cofw_mat(tmp_path / "t.mat", split="test", with_boxes=False)
    data = read_cofw_mat(tmp_path / "t.mat", "test")
    assert data.boxes is None and data.points.shape == (2, 29, 2) and data.visible.shape == (2, 29)
    assert export_cofw(tmp_path / "t.mat", "test", tmp_path / "o")[0].box is None
    raises_dataset_error(
        lambda: read_cofw_mat(tmp_path / "t.mat", "train"),
        tmp_path / "t.mat",
        None,
        r"no variable 'IsTr' .*IsTr, phisTr, bboxesTr",
    )
    _cofw_mat(tmp_path / "bad.mat", phisTr=np.zeros((2, 50)))
    raises_dataset_error(
        lambda: read_cofw_mat(tmp_path / "bad.mat", "train"),
        tmp_path / "bad.mat",
        None,
        r"phisTr has shape \(2, 50\), expected \(2, 87\)",
    )
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    junk = tmp_path / "junk.mat"
    raises_dataset_error(lambda: read_cofw_mat(junk, "train"), junk, None, "not a readable")
    with pytest.raises(ValueError):
        read_cofw_mat(tmp_path / "t.mat", "val")


def test_cofw_v73_without_h5py(tmp_path, monkeypatch):
    path = tmp_path / "v73.mat"
    path.write_bytes(
        b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2018 HDF5 schema" + b" " * 200
    )
    monkeypatch.setitem(sys.modules, "h5py", None)
    raises_dataset_error(lambda: read_cofw_mat(path, "test"), path, None, r"v7\.3 \(HDF5\).*install h5py.*'-v7'")


def test_cofw_v73_with_h5py(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "v73.mat"
    gray = np.arange(20 * 30, dtype=np.uint8).reshape(20, 30)
    color = np.random.default_rng(0).integers(0, 255, (25, 15, 3), dtype=np.uint8)
    phis = np.random.default_rng(1).uniform(1, 14, (2, 87))
    phis[:, 58:] = 0
    with h5py.File(path, "w", userblock_size=512) as f:  # MATLAB layout: arrays transposed, cells as refs
        refs = f.create_group("#refs#")
        r0, r1 = refs.create_dataset("a", data=gray.T), refs.create_dataset("b", data=color.T)
        cell = f.create_dataset("IsT", (1, 2), dtype=h5py.ref_dtype)
        cell[0, 0], cell[0, 1] = r0.ref, r1.ref
        f.create_dataset("phisT", data=phis.T)
    with path.open("r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file")
    data = read_cofw_mat(path, "test")
    np.testing.assert_array_equal(data.images[0], gray)
    np.testing.assert_array_equal(data.images[1], color)
    np.testing.assert_array_equal(data.points[1, :, 1], phis[1, 29:58])
    assert data.boxes is None and data.visible.all()
