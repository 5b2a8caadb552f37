"""RetinaFace prior matching and multibox loss against hand-made cases and plain loop formulations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hrface.ops import box_iou, encode_boxes, encode_landmarks, prior_boxes
from hrface.training.detection.loss import background_loss, hard_negatives, multibox_loss
from hrface.training.detection.matching import match_faces, match_targets, prior_corners

SIZE = 64  # input side (pixels): 2·(8² + 4² + 2²) = 168 priors
PRIORS = torch.from_numpy(prior_boxes(SIZE, SIZE))  # training takes the priors as a tensor


def face_row(box_px, label: int = 1, keypoints_px=None) -> torch.Tensor:
    """One (15,) target row from a pixel box; keypoints default to 5 points inside the box."""
    box = np.asarray(box_px, dtype=np.float64)
    if keypoints_px is None:
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        keypoints_px = [
            [x1 + f * w, y1 + g * h] for f, g in ((0.3, 0.4), (0.7, 0.4), (0.5, 0.6), (0.35, 0.8), (0.65, 0.8))
        ]
    points = np.asarray(keypoints_px, dtype=np.float64).ravel() / SIZE if label == 1 else -np.ones(10)
    return torch.tensor([*(box / SIZE), *points, label], dtype=torch.float32)


def prior_index(cx: float, cy: float, side: float) -> int:
    """Index of the prior with this centre and side (pixels)."""
    target = torch.tensor([cx / SIZE, cy / SIZE, side / SIZE, side / SIZE])
    (index,) = torch.nonzero((PRIORS - target).abs().max(dim=1).values < 1e-6).squeeze(1).tolist()
    return index


def loop_match(boxes: torch.Tensor, priors: torch.Tensor, threshold: float = 0.35, ignore_below: float = 0.2):
    """The matching rule written plainly, prior by prior and face by face."""
    iou = box_iou(boxes, prior_corners(priors)).tolist()
    kept = [j for j in range(len(iou)) if max(iou[j]) >= ignore_below]
    face, overlap = [-1] * len(priors), [0.0] * len(priors)
    for p in range(len(priors)):
        for j in kept:  # the first face of the highest IoU
            if face[p] < 0 or iou[j][p] > overlap[p]:
                face[p], overlap[p] = j, iou[j][p]
    for j in kept:  # each face's best prior is forced; later faces win shared priors
        best = max(range(len(priors)), key=lambda p: (iou[j][p], -p))
        face[best], overlap[best] = j, 2.0
    return face, [o >= threshold for o in overlap]


# --- matching -----------------------------------------------------------------------------------------


def test_box_equal_to_a_prior_is_matched_with_zero_offsets():
    p = prior_index(28, 20, 16)  # stride-8 cell (row 2, column 3), the 16 px anchor
    row = face_row([20, 12, 36, 28])
    matched = match_targets([row[None]], PRIORS)
    labels = matched.labels[0]
    assert labels[p] == 1
    torch.testing.assert_close(matched.loc[0, p], torch.zeros(4), atol=1e-5, rtol=0)
    expected = encode_landmarks(row[4:14].reshape(1, 5, 2), PRIORS[p : p + 1])[0]
    torch.testing.assert_close(matched.landm[0, p], expected)
    assert set(labels.unique().tolist()) == {0, 1}
    iou = box_iou(row[None, :4], prior_corners(PRIORS))[0]
    assert torch.equal(labels == 1, iou >= 0.35)  # a single face: positives are exactly the IoU ≥ 0.35 priors


def test_small_face_still_gets_its_best_prior():
    # 9 px face centred on a 16 px prior: IoU 81 / 256 = 0.32 < 0.35 with its best prior, but ≥ 0.2
    p = prior_index(12, 12, 16)
    row = face_row([7.5, 7.5, 16.5, 16.5])
    assert 0.2 <= box_iou(row[None, :4], prior_corners(PRIORS)).max() < 0.35
    face_index, positive = match_faces(row[None, :4], PRIORS)
    assert torch.nonzero(positive).squeeze(1).tolist() == [p] and face_index[p] == 0


def test_faces_whose_best_overlap_is_below_0_2_are_ignored():
    tiny = face_row([10, 10, 16, 16])  # 6 px: IoU ≤ 36 / 256 = 0.14 with every prior
    big = face_row([20, 12, 36, 28])
    _, alone = match_faces(tiny[None, :4], PRIORS)
    assert not alone.any()
    both = match_targets([torch.stack([tiny, big])], PRIORS)
    only_big = match_targets([big[None]], PRIORS)
    assert torch.equal(both.labels, only_big.labels)
    pos = both.labels[0] != 0
    torch.testing.assert_close(both.loc[0][pos], only_big.loc[0][pos])


def test_matching_equals_the_plain_rule_on_random_faces():
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        m = int(torch.randint(1, 6, (1,), generator=g))
        centres = torch.rand(m, 2, generator=g)
        sizes = torch.rand(m, 2, generator=g) * 0.6 + 0.05
        boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)
        face_index, positive = match_faces(boxes, PRIORS)
        expected_face, expected_pos = loop_match(boxes, PRIORS)
        assert positive.tolist() == expected_pos
        assert face_index[positive].tolist() == [f for f, ok in zip(expected_face, expected_pos, strict=True) if ok]


def test_two_faces_sharing_a_best_prior_the_later_wins():
    a, b = face_row([20, 12, 36, 28]), face_row([21, 12, 37, 28])  # both best at the same 16 px prior
    face_index, positive = match_faces(torch.stack([a, b])[:, :4], PRIORS)
    p = prior_index(28, 20, 16)
    assert positive[p] and face_index[p] == 1


def test_images_without_faces_are_all_background():
    matched = match_targets([torch.zeros(0, 15), face_row([20, 12, 36, 28])[None]], PRIORS)
    assert matched.labels.shape == (2, len(PRIORS)) and not matched.labels[0].any() and matched.labels[1].any()
    assert torch.isfinite(matched.loc).all() and torch.isfinite(matched.landm).all()


# --- loss ---------------------------------------------------------------------------------------------


def test_hard_negative_count_and_choice():
    g = torch.Generator().manual_seed(0)
    bg = torch.rand(3, 100, generator=g)
    positive = torch.zeros(3, 100, dtype=torch.bool)
    positive[0, [3, 50]] = True  # 2 positives → 14 negatives
    positive[1, :20] = True  # 20 positives → 140 capped at the 80 other priors
    negative = hard_negatives(bg, positive, ratio=7)
    assert negative.sum(dim=1).tolist() == [14, 80, 0]  # image 2 has no positive: no negative
    assert not (negative & positive).any()
    chosen, rest = bg[0][negative[0]], bg[0][~negative[0] & ~positive[0]]
    assert chosen.min() > rest.max()  # the highest background losses


def random_batch(seed: int = 0):
    """Two images of faces (one with a label −1 face, one with none) and random predictions."""
    targets = [
        torch.stack([face_row([20, 12, 36, 28]), face_row([30, 30, 60, 62], label=-1)]),
        torch.stack([face_row([4, 6, 22, 26]), face_row([34, 2, 62, 33])]),
    ]
    g = torch.Generator().manual_seed(seed)
    p = len(PRIORS)
    loc, logits, landm = (torch.randn(2, p, k, generator=g, requires_grad=True) for k in (4, 2, 10))
    return targets, loc, logits, landm


def loop_loss(loc, logits, landm, targets):
    """The loss written per image and per prior, from the matched targets."""
    matched = match_targets(targets, PRIORS)
    loc_sum = cls_sum = landm_sum = 0.0
    n_pos = n_landm = 0
    for i in range(len(targets)):
        labels = matched.labels[i].tolist()
        bg = [float(torch.logsumexp(logits[i, p], 0) - logits[i, p, 0]) for p in range(len(labels))]
        positives = [p for p, lab in enumerate(labels) if lab != 0]
        negatives = sorted((p for p, lab in enumerate(labels) if lab == 0), key=lambda p: -bg[p])
        for p in positives:
            loc_sum += float(F.smooth_l1_loss(loc[i, p], matched.loc[i, p], reduction="sum"))
            cls_sum += float(F.cross_entropy(logits[i, p][None], torch.tensor([1])))
            if labels[p] == 1:
                landm_sum += float(F.smooth_l1_loss(landm[i, p], matched.landm[i, p], reduction="sum"))
                n_landm += 1
        for p in negatives[: 7 * len(positives)]:
            cls_sum += bg[p]
        n_pos += len(positives)
    return loc_sum / max(n_pos, 1), cls_sum / max(n_pos, 1), landm_sum / max(n_landm, 1)


def test_loss_equals_the_per_prior_formulation():
    targets, loc, logits, landm = random_batch()
    loss = multibox_loss(loc, logits, landm, PRIORS, targets)
    expected = loop_loss(loc.detach(), logits.detach(), landm.detach(), targets)
    got = tuple(loss.parts().values())
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert loss.total.item() == pytest.approx(2 * got[0] + got[1] + got[2], rel=1e-6)
    assert loss.num_neg == 7 * loss.num_pos
    weighted = multibox_loss(loc, logits, landm, PRIORS, targets, landm_weight=4.0)
    assert weighted.parts() == loss.parts()  # the parts stay unweighted
    assert weighted.total.item() == pytest.approx(2 * got[0] + got[1] + 4 * got[2], rel=1e-6)


def test_landmark_loss_ignores_faces_without_keypoints():
    targets, loc, logits, landm = random_batch()
    without = [t.clone() for t in targets]
    for t in without:
        t[:, 4:14], t[:, 14] = -1.0, -1.0
    loss = multibox_loss(loc, logits, landm, PRIORS, without)
    assert loss.landm.item() == 0.0 and loss.num_pos > 0
    loss.total.backward()
    assert landm.grad is None or not landm.grad.any()
    with_points = multibox_loss(loc, logits, landm, PRIORS, targets)
    assert with_points.landm.item() > 0
    # the label −1 face of image 0 adds box and class terms but no keypoint term
    only_labelled = multibox_loss(loc, logits, landm, PRIORS, [targets[0][:1], targets[1]])
    assert with_points.num_pos > only_labelled.num_pos
    np.testing.assert_allclose(with_points.landm.item(), only_labelled.landm.item(), rtol=1e-6)


def test_perfect_prediction_has_almost_zero_loss():
    targets, *_ = random_batch()
    matched = match_targets(targets, PRIORS)
    positive = matched.labels != 0
    logits = torch.where(positive[..., None], torch.tensor([-30.0, 30.0]), torch.tensor([30.0, -30.0]))
    loss = multibox_loss(matched.loc, logits, matched.landm, PRIORS, targets)
    assert loss.num_pos > 0 and loss.total.item() < 1e-6
    worse = multibox_loss(matched.loc + 0.5, logits, matched.landm, PRIORS, targets)
    assert worse.loc.item() > 0.1


def test_gradients_reach_matched_and_mined_priors_only():
    targets, loc, logits, landm = random_batch(1)
    loss = multibox_loss(loc, logits, landm, PRIORS, targets)
    loss.total.backward()
    matched = match_targets(targets, PRIORS)
    positive = matched.labels != 0
    assert torch.equal(loc.grad.abs().sum(-1) > 0, positive)
    assert torch.equal(landm.grad.abs().sum(-1) > 0, matched.labels == 1)
    mined = hard_negatives(background_loss(logits.detach()), positive)
    assert torch.equal(logits.grad.abs().sum(-1) > 0, positive | mined)


def test_encoded_targets_decode_back_to_the_faces():
    row = face_row([5, 9, 41, 47])
    matched = match_targets([row[None]], PRIORS)
    pos = matched.labels[0] != 0
    boxes = row[:4].expand(int(pos.sum()), 4)
    torch.testing.assert_close(matched.loc[0][pos], encode_boxes(boxes, PRIORS[pos]))
