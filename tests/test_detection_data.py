"""Detection data: DetectionSample, the RetinaFace label format, WIDER FACE split files, 300W conversion, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import raises_dataset_error, shared_path
from hrface.cli.main import main
from hrface.data.detection import (
    WIDER_BOX_FROM_POINTS,
    DetectionSample,
    detection_samples_from_landmarks,
    read_retinaface_labels,
    read_wider_bbx_gt,
    read_wider_mat,
    write_retinaface_labels,
)
from hrface.data.landmarks import DatasetError, LandmarkSample, read_300w_folder

LABELS = """\
# 0--Parade/a.jpg
449 330 122 149 488.906 373.643 0.0 542.089 376.442 0.0 515.031 412.83 0.0 485.174 425.893 0.0 538.357 431.491 0.0 0.82
# 0--Parade/b.jpg
361 98 263 339 424.143 251.656 0.0 547.134 232.571 1.0 494.121 325.875 0.0 453.83 368.286 0.0 561.978 342.839 0.0 0.89
78 221 7 8 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 0.2
# top.jpg
# 1--Handshaking/c.jpg
10 20 30 40
"""


# --- DetectionSample -------------------------------------------------------------------------------


def test_sample_defaults_and_validation():
    s = DetectionSample("x.jpg", [[0, 0, 10, 10], [5, 5, 9, 9]])
    assert s.boxes.dtype == np.float32 and s.keypoints.shape == (2, 5, 2) and np.isnan(s.keypoints).all()
    assert s.has_keypoints.tolist() == [False, False] and s.num_faces == 2
    kps = np.zeros((2, 5, 2))
    kps[1, 3] = np.nan
    assert DetectionSample("x.jpg", np.zeros((2, 4)), kps).has_keypoints.tolist() == [True, False]
    empty = DetectionSample("x.jpg", np.zeros((0, 4)))
    assert empty.boxes.shape == (0, 4) and empty.keypoints.shape == (0, 5, 2)
    with pytest.raises(ValueError, match=r"boxes must have shape"):
        DetectionSample("x.jpg", np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"keypoints must have shape"):
        DetectionSample("x.jpg", np.zeros((2, 4)), np.zeros((2, 68, 2)))
    with pytest.raises(ValueError, match=r"has_keypoints must have shape"):
        DetectionSample("x.jpg", np.zeros((2, 4)), kps, has_keypoints=[True])
    with pytest.raises(ValueError, match=r"face 1 has_keypoints but NaN"):
        DetectionSample("x.jpg", np.zeros((2, 4)), kps, has_keypoints=[True, True])


# --- RetinaFace label.txt ----------------------------------------------------------------------------


def test_read_retinaface_labels(tmp_path):
    path = tmp_path / "label.txt"
    path.write_text(LABELS)
    samples = read_retinaface_labels(path, image_root=tmp_path / "images")
    assert [s.num_faces for s in samples] == [1, 2, 0, 1]
    a, b, top, c = samples
    assert a.image == str(tmp_path / "images" / "0--Parade" / "a.jpg")
    assert (a.photo, a.subset, top.photo, top.subset) == ("0--Parade/a", "0--Parade", "top", "")
    np.testing.assert_array_equal(a.boxes, [[449, 330, 571, 479]])  # x2 = x + w, y2 = y + h
    np.testing.assert_allclose(a.keypoints[0, [0, 4]], [[488.906, 373.643], [538.357, 431.491]], rtol=1e-6)
    assert b.has_keypoints.tolist() == [True, False] and np.isnan(b.keypoints[1]).all()
    assert c.has_keypoints.tolist() == [False]  # WIDER val style: boxes only
    np.testing.assert_array_equal(c.boxes, [[10, 20, 40, 60]])
    assert read_retinaface_labels(path)[0].image == str(tmp_path / "0--Parade" / "a.jpg")  # default root


def test_retinaface_labels_round_trip(tmp_path):
    kps = np.array([[[12.25, 20.5], [30.125, 21], [21, 30], [14, 38.75], [29, 38]], [[0] * 2] * 5], np.float32)
    samples = [
        DetectionSample(
            str(tmp_path / "imgs" / "p" / "one.jpg"),
            [[10.5, 12, 33.25, 44], [50, 60, 70, 90]],
            kps,
            has_keypoints=[True, False],
        ),
        DetectionSample(str(tmp_path / "imgs" / "two.png"), np.zeros((0, 4))),
    ]
    label = tmp_path / "out" / "label.txt"
    write_retinaface_labels(label, samples, image_root=tmp_path / "imgs")
    text = label.read_text()
    assert text.startswith("# p/one.jpg\n10.5 12 22.75 32 12.25 20.5 0 30.125 21 0 ")
    assert "\n50 60 20 30" + " -1" * 15 + " 1\n# two.png\n" in text
    back = read_retinaface_labels(label, image_root=tmp_path / "imgs")
    assert [s.image for s in back] == [s.image for s in samples]
    np.testing.assert_allclose(back[0].boxes, samples[0].boxes, atol=1e-3)
    np.testing.assert_allclose(back[0].keypoints[0], kps[0], atol=1e-3)
    assert back[0].has_keypoints.tolist() == [True, False] and back[1].num_faces == 0
    with pytest.raises(DatasetError, match=r"is not inside the image root"):
        write_retinaface_labels(label, samples)  # default root: the label's folder, which holds no image


@pytest.mark.parametrize(
    ("text", "line", "pattern"),
    [
        ("10 20 30 40\n", 1, r"face line '10 20 30 40' before the first '# image' line"),
        ("# a.jpg\n1 2 3\n", 2, r"expected 4 numbers .* or 20 .*got 3"),
        ("# a.jpg\n1 2 3 4\n\n1 2 x 4\n", 4, r"'x' is not a number"),
        ("# a.jpg\n1 2 3 4\n#\n", 3, r"'#' line without an image path"),
        ("# a.jpg\n1 2 3 inf\n", 2, r"must be finite"),
    ],
)
def test_retinaface_labels_malformed(tmp_path, text, line, pattern):
    path = tmp_path / "label.txt"
    path.write_text(text)
    raises_dataset_error(lambda: read_retinaface_labels(path), path, line, pattern)


def test_retinaface_labels_missing_files(tmp_path):
    missing = tmp_path / "nope.txt"
    raises_dataset_error(lambda: read_retinaface_labels(missing), missing, None, "cannot read")
    path = tmp_path / "label.txt"
    path.write_text("\n\n")
    raises_dataset_error(lambda: read_retinaface_labels(path), path, None, r"no '# image' lines")
    path.write_text("# a.jpg\n1 2 3 4\n# b.jpg\n")
    (tmp_path / "a.jpg").write_bytes(b"")
    raises_dataset_error(lambda: read_retinaface_labels(path, check_images=True), path, 3, r"image not found: .*b\.jpg")


# --- WIDER FACE official files --------------------------------------------------------------------------

BBX_GT = """\
0--Parade/a.jpg
2
1 2 3 4 0 0 0 0 0 0
10 20 30 40 2 0 0 1 2 0
0--Parade/empty.jpg
0
0 0 0 0 0 0 0 0 0 0
12--Group/b.jpg
1
5 6 7 8
"""


def test_wider_bbx_gt_synthetic(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text(BBX_GT)
    samples = read_wider_bbx_gt(path, image_root="/data")
    assert [(s.image, s.num_faces) for s in samples] == [
        ("/data/0--Parade/a.jpg", 2),
        ("/data/0--Parade/empty.jpg", 0),
        ("/data/12--Group/b.jpg", 1),
    ]
    np.testing.assert_array_equal(samples[0].boxes, [[1, 2, 4, 6], [10, 20, 40, 60]])
    assert samples[2].subset == "12--Group" and not samples[0].has_keypoints.any()
    assert [s.num_faces for s in read_wider_bbx_gt(path, drop_invalid=True)] == [1, 0, 1]


@pytest.mark.parametrize(
    ("text", "line", "pattern"),
    [
        ("a.jpg\ntwo\n", 2, r"expected the number of faces of a\.jpg, got 'two'"),
        ("a.jpg\n-1\n", 2, r"expected the number of faces"),
        ("a.jpg\n2\n1 2 3 4\n", 3, r"file ends after 1 of 2 faces of a\.jpg"),
        ("a.jpg\n2\n1 2 3 4\nb.jpg\n1\n1 2 3 4\n", 4, r"expected face 2 of 2 of a\.jpg, got 'b\.jpg'"),
        ("a.jpg\n1\n1 2 3 4 5\n", 3, r"expected 10 numbers .* or 4 .*got 5"),
        ("a.jpg\n", 1, r"file ends after the image path a\.jpg"),
        ("1 2 3 4\n", 1, r"expected an image path, got '1 2 3 4'"),
    ],
)
def test_wider_bbx_gt_malformed(tmp_path, text, line, pattern):
    path = tmp_path / "gt.txt"
    path.write_text(text)
    raises_dataset_error(lambda: read_wider_bbx_gt(path), path, line, pattern)


def test_wider_mat_errors(tmp_path):
    bad = tmp_path / "bad.mat"
    bad.write_text("not a mat file")
    raises_dataset_error(lambda: read_wider_mat(bad), bad, None, r"cannot read MATLAB file")
    missing = tmp_path / "no.mat"
    raises_dataset_error(lambda: read_wider_mat(missing), missing, None, r"cannot read MATLAB file")
    import scipy.io

    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"event_list": np.zeros(1)})
    raises_dataset_error(lambda: read_wider_mat(other), other, None, r"no file_list, face_bbx_list in this \.mat")


def test_wider_train_mat_counts():
    path = shared_path("data", "widerface", "wider_face_split", "wider_face_train.mat")
    samples = read_wider_mat(path, image_root="/wider/train/images")
    assert len(samples) == 12_880 and sum(s.num_faces for s in samples) == 159_424
    assert len({s.subset for s in samples}) == 61
    first = samples[0]
    assert first.image == "/wider/train/images/0--Parade/0_Parade_marchingband_1_849.jpg"
    np.testing.assert_array_equal(first.boxes, [[449, 330, 571, 479]])
    # The 3 train samples of shared/ (boxes only, x y w h) equal the .mat's boxes of those photos.
    folder = shared_path("data", "widerface", "train_samples")
    few = read_wider_bbx_gt(folder / "wider_face_train_bbx_gt_samples.txt", check_images=True)
    assert [s.num_faces for s in few] == [23, 8, 27]
    by_photo = {s.photo: s for s in samples}
    for s in few:
        np.testing.assert_array_equal(s.boxes, by_photo[s.photo].boxes)


def test_wider_val_txt_matches_val_mat():
    txt_path = shared_path("data", "widerface", "wider_face_split", "wider_face_val_bbx_gt.txt")
    mat_path = shared_path("data", "widerface", "ground_truth", "wider_face_val.mat")
    txt, mat = read_wider_bbx_gt(txt_path), read_wider_mat(mat_path)
    assert len(txt) == 3_226 and sum(s.num_faces for s in txt) == 39_708
    assert sorted(s.photo for s in txt) == sorted(s.photo for s in mat)
    by_photo = {s.photo: s.boxes for s in mat}
    assert all(np.array_equal(s.boxes, by_photo[s.photo]) for s in txt)
    # The txt's 'invalid' column and the .mat's invalid_label_list flag the same faces.
    txt_valid, mat_valid = read_wider_bbx_gt(txt_path, drop_invalid=True), read_wider_mat(mat_path, drop_invalid=True)
    assert 0 < sum(s.num_faces for s in txt_valid) < 39_708
    by_photo = {s.photo: s.boxes for s in mat_valid}
    assert all(np.array_equal(s.boxes, by_photo[s.photo]) for s in txt_valid)


# --- 300W → detection samples ----------------------------------------------------------------------------


def test_wider_box_mapping_constants():
    # Tight landmark box 100 × 100 at (0, 0): centre moves up 16.3 px, size 97.9 × 132.6 px.
    square = np.array([[0, 0], [100, 0], [0, 100], [100, 100]], np.float64)
    np.testing.assert_allclose(WIDER_BOX_FROM_POINTS(square), [1.05, -32.6, 98.95, 100.0], atol=1e-9)


def test_convert_groups_faces_by_image():
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    ring = np.stack([np.cos(t), np.sin(t)], 1) * 20
    faces = [
        LandmarkSample(Path("p.jpg"), ring + 50, photo="d/p"),
        LandmarkSample(Path("q.jpg"), ring + 100),
        LandmarkSample(Path("p.jpg"), ring + 200, photo="d/p"),
        LandmarkSample(Path("p_2.jpg"), ring + 60, photo="d/p"),  # another crop of photo d/p (HELEN)
    ]
    out = detection_samples_from_landmarks(faces)
    assert [(s.image, s.photo, s.num_faces) for s in out] == [
        ("p.jpg", "d/p", 2),
        ("q.jpg", "q.jpg", 1),
        ("p_2.jpg", "d/p", 1),
    ]
    np.testing.assert_allclose(out[0].boxes[1], WIDER_BOX_FROM_POINTS(ring + 200), rtol=1e-6)
    np.testing.assert_allclose(out[2].boxes[0], WIDER_BOX_FROM_POINTS(ring + 60), rtol=1e-6)


def test_helen_faces_stay_on_their_own_images():
    """HELEN gives each face of a photo its own crop: 870 faces, 870 images, 783 photos."""
    samples = detection_samples_from_landmarks(read_300w_folder(shared_path("data", "300w", "helen_train")))
    assert len(samples) == 870 and all(s.num_faces == 1 for s in samples)
    assert len({s.photo for s in samples}) == 783


def test_convert_afw():
    samples = detection_samples_from_landmarks(read_300w_folder(shared_path("data", "300w", "afw")))
    assert len(samples) == 185 and sum(s.num_faces for s in samples) == 337
    assert len({s.photo for s in samples}) == 185 and {s.subset for s in samples} == {"afw"}
    boxes = np.concatenate([s.boxes for s in samples])
    kps = np.concatenate([s.keypoints for s in samples])
    assert np.concatenate([s.has_keypoints for s in samples]).all()
    inside = (kps >= boxes[:, None, :2]) & (kps <= boxes[:, None, 2:])
    assert inside.all()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (w > 10).all() and (h > w).mean() > 0.95  # WIDER boxes are taller than wide
    # Eyes above the nose above the mouth; image-left points left of image-right ones (mostly frontal faces).
    assert (kps[:, 0, 0] < kps[:, 1, 0]).mean() > 0.95 and (kps[:, 3, 0] < kps[:, 4, 0]).mean() > 0.95
    assert (kps[:, :2, 1].max(1) < kps[:, 3:, 1].min(1)).mean() > 0.95


# --- CLI -----------------------------------------------------------------------------------------------------


def test_cli_convert_pts_round_trip(tmp_path, capsys):
    afw = shared_path("data", "300w", "afw")
    out = tmp_path / "labels" / "label.txt"
    assert main(["convert-pts", str(afw), str(out), "--image-root", str(afw.parent)]) == 0
    assert "wrote 337 faces of 185 images" in capsys.readouterr().out
    back = read_retinaface_labels(out, image_root=afw.parent)
    direct = detection_samples_from_landmarks(read_300w_folder(afw))
    assert [s.image for s in back] == [s.image for s in direct]
    assert [s.photo for s in back] == [s.photo for s in direct]  # 'afw/<photo>' either way
    np.testing.assert_allclose(
        np.concatenate([s.boxes for s in back]), np.concatenate([s.boxes for s in direct]), atol=1e-3
    )
    np.testing.assert_allclose(
        np.concatenate([s.keypoints for s in back]), np.concatenate([s.keypoints for s in direct]), atol=1e-3
    )


def test_cli_convert_pts_user_errors(tmp_path, capsys):
    afw = shared_path("data", "300w", "afw")
    assert main(["convert-pts", str(afw), str(tmp_path / "label.txt")]) == 2  # images outside the label folder
    err = capsys.readouterr().err
    assert err.startswith("hrface: error: image ") and "not inside the image root" in err and err.count("\n") == 1
    assert not (tmp_path / "label.txt").exists()
    assert main(["convert-pts", str(tmp_path / "missing"), str(tmp_path / "label.txt")]) == 2
    err = capsys.readouterr().err
    assert "missing: not a folder of .pts annotations" in err and err.count("\n") == 1
