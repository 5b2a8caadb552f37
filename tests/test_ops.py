"""Prior boxes, box / landmark coding and NMS against straightforward reference formulations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hrface.ops import (
    box_iou,
    box_iou_numpy,
    decode_boxes,
    decode_landmarks,
    encode_boxes,
    encode_landmarks,
    nms,
    prior_boxes,
)


def reference_priors(h: int, w: int) -> np.ndarray:
    """The reference's nested-loop construction, written plainly."""
    out = []
    for sizes, step in zip(((16, 32), (64, 128), (256, 512)), (8, 16, 32), strict=True):
        for i, j in itertools.product(range(math.ceil(h / step)), range(math.ceil(w / step))):
            for s in sizes:
                out.append([(j + 0.5) * step / w, (i + 0.5) * step / h, s / w, s / h])
    return np.asarray(out, dtype=np.float32)


@pytest.mark.parametrize(("h", "w"), [(240, 320), (160, 224), (33, 65), (1, 1)])
def test_priors_match_nested_loop_order(h: int, w: int) -> None:
    ours = prior_boxes(h, w)
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference_priors(h, w), rtol=0, atol=1e-7)


def test_prior_count_matches_fixture_sizes() -> None:
    assert prior_boxes(240, 320).shape == (3160, 4)
    assert prior_boxes(160, 224).shape == (1470, 4)


def test_box_coding_round_trip() -> None:
    g = torch.Generator().manual_seed(0)
    priors = prior_boxes(64, 96)  # NumPy: decoding is NumPy, encoding (training) torch
    priors_t = torch.from_numpy(priors)
    centres = torch.rand(len(priors), 2, generator=g)
    sizes = torch.rand(len(priors), 2, generator=g) * 0.5 + 0.01
    boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)
    decoded = decode_boxes(encode_boxes(boxes, priors_t).numpy(), priors)
    torch.testing.assert_close(decoded, boxes.numpy(), atol=1e-5, rtol=0)
    points = torch.rand(len(priors), 5, 2, generator=g)
    decoded = decode_landmarks(encode_landmarks(points, priors_t).numpy(), priors)
    torch.testing.assert_close(decoded, points.numpy(), atol=1e-5, rtol=0)


def test_decode_boxes_formula() -> None:
    prior = np.array([[0.5, 0.5, 0.2, 0.1]], dtype=np.float32)
    loc = np.array([[1.0, -1.0, 0.0, math.log(2) / 0.2]], dtype=np.float32)
    # centre moves by 0.1·size; width unchanged, height doubled.
    expected = np.array([[0.52 - 0.1, 0.49 - 0.1, 0.52 + 0.1, 0.49 + 0.1]], dtype=np.float32)
    torch.testing.assert_close(decode_boxes(loc, prior), expected)


def brute_force_nms(boxes: np.ndarray, scores: np.ndarray, thr: float, offset: float) -> list[int]:
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    iou = box_iou(torch.from_numpy(boxes), torch.from_numpy(boxes), offset).numpy()
    for i in order:
        if all(iou[i, k] <= thr for k in keep):
            keep.append(int(i))
    return keep


@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_nms_equals_brute_force(offset: float) -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (300, 2))
    wh = rng.uniform(1, 40, (300, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.uniform(0, 1, 300)
    keep = nms(boxes, scores, 0.4, offset=offset).tolist()
    assert keep == brute_force_nms(boxes, scores, 0.4, offset)


def test_nms_edge_cases() -> None:
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).size == 0
    boxes = np.array([[0.0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 20, 20]], dtype=np.float32)  # duplicate + empty box
    keep = nms(boxes, np.array([0.9, 0.8, 0.7], dtype=np.float32), 0.5)
    assert keep.dtype == np.int64
    assert keep.tolist() == [0, 2]


def test_box_iou_values() -> None:
    a = torch.tensor([[0.0, 0, 10, 10]])
    b = torch.tensor([[5.0, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[50 / 150, 0.0, 0.0]]))


@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_numpy_iou_equals_torch_iou(offset: float) -> None:
    g = np.random.default_rng(3)
    corners = g.uniform(0, 50, (2, 40, 2))
    a = np.concatenate([corners[0], corners[0] + g.uniform(-2, 30, (40, 2))], axis=1)  # some empty boxes
    b = np.concatenate([corners[1], corners[1] + g.uniform(-2, 30, (40, 2))], axis=1)
    expected = box_iou(torch.from_numpy(a), torch.from_numpy(b), offset=offset).numpy()
    np.testing.assert_allclose(box_iou_numpy(a, b, offset=offset), expected, rtol=1e-12, atol=1e-15)
    assert box_iou_numpy(a[:0], b).shape == (0, 40)
