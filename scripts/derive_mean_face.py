"""Derive the 3-D mean face of the 68-point layout from 300W training annotations (no copied model).

    .venv/bin/python scripts/derive_mean_face.py [--shared ../shared] [-o src/hrface/geometry/mean_face_68.json]

Method (Tomasi–Kanade factorisation under a weak-perspective camera):

1. Every face of ``300w/afw`` and ``300w/helen_train`` with 68 finite points is centred and scaled to unit
   RMS radius; the 2F×68 matrix of all faces is factorised by SVD to rank 3 (cameras M, shape S).
2. Metric upgrade: the symmetric 3×3 ``L = Q Qᵀ`` that makes each face's two camera rows orthogonal with
   equal norm (least squares over all faces), so ``M Q`` are scaled rotations and ``Q⁻¹ S`` a rigid shape.
3. Outliers: every face is fitted with a scaled-orthographic camera; faces whose mean residual exceeds the
   median + 3 robust SDs are dropped and the factorisation is repeated (``ROUNDS`` times).
4. Axes (the OpenCV camera frame of an upright frontal face): x from the image-left to the image-right
   points of the flip pairs, y from the eye centres' midpoint towards the mouth corners' midpoint (down), z =
   x × y (away from the camera, into the head).  The depth sign is fixed so that the nose tip (30) lies in
   front of (smaller z than) the eye centres.  The shape is averaged with its mirror image (flip pairs, x →
   −x), centred on its centroid and scaled so that the outer eye corners (36, 45) are 1.0 apart.

The residual is the mean distance between each annotated point and the final (symmetric) shape projected by
that face's best scaled-orthographic camera, in units of the face's outer-eye-corner distance and in pixels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from hrface.data.landmarks import read_300w_folder
from hrface.landmarks.layouts import LAYOUT_68

ROUNDS = 3
SUBSETS = ("afw", "helen_train")


def factorise(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rank-3 metric factorisation of centred shapes ``w`` (F, 68, 2) → cameras (F, 2, 3), shape (3, 68),
    and the rank-3 fit's RMS residual (in ``w``'s units)."""
    f = w.shape[0]
    big = w.transpose(0, 2, 1).reshape(2 * f, -1)  # rows: x of face 0, y of face 0, x of face 1, ...
    u, s, vt = np.linalg.svd(big, full_matrices=False)
    m = u[:, :3] * np.sqrt(s[:3])
    shape = np.sqrt(s[:3])[:, None] * vt[:3]
    rank3_rms = float(np.sqrt(np.mean((big - m @ shape) ** 2)))
    a, b = m[0::2], m[1::2]

    def quad(p: np.ndarray, q: np.ndarray) -> np.ndarray:  # coefficients of pᵀ L q in the 6 entries of L
        return np.stack(
            [p[:, 0] * q[:, 0], p[:, 0] * q[:, 1] + p[:, 1] * q[:, 0], p[:, 0] * q[:, 2] + p[:, 2] * q[:, 0],
             p[:, 1] * q[:, 1], p[:, 1] * q[:, 2] + p[:, 2] * q[:, 1], p[:, 2] * q[:, 2]], axis=1)  # fmt: skip

    system = np.concatenate([quad(a, a) - quad(b, b), quad(a, b)])
    l6 = np.linalg.svd(system)[2][-1]
    lmat = np.array([[l6[0], l6[1], l6[2]], [l6[1], l6[3], l6[4]], [l6[2], l6[4], l6[5]]])
    if np.trace(lmat) < 0:
        lmat = -lmat
    evals, evecs = np.linalg.eigh(lmat)
    q = evecs * np.sqrt(np.maximum(evals, 1e-12 * evals.max()))
    return (m @ q).reshape(f, 2, 3), np.linalg.solve(q, shape), rank3_rms


def fit_cameras(shape: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Scaled-orthographic projections (F, 68, 2) of ``shape`` (3, 68) closest to centred ``w`` (F, 68, 2):
    the least-squares affine camera, its rows made orthonormal (polar factor), then the best scale."""
    centred = shape - shape.mean(axis=1, keepdims=True)
    affine = np.einsum("fpk,jp->fkj", w, centred) @ np.linalg.inv(centred @ centred.T)
    u, _, vt = np.linalg.svd(affine, full_matrices=False)
    rotated = np.einsum("fkj,jp->fpk", u @ vt, centred)
    scale = np.einsum("fpk,fpk->f", w, rotated) / np.einsum("fpk,fpk->f", rotated, rotated)
    return rotated * scale[:, None, None]


def canonical(shape: np.ndarray) -> np.ndarray:
    """(3, 68) factorised shape → (68, 3) symmetric mean face in the documented axes, eye corners 1.0 apart."""
    p = shape.T - shape.T.mean(axis=0)
    outer = p[45] - p[36]
    diffs = np.array([p[b] - p[a] for a, b in LAYOUT_68.flip_pairs])
    diffs *= np.sign(diffs @ outer)[:, None]  # every pair oriented image-left → image-right
    x = diffs.mean(axis=0)
    x /= np.linalg.norm(x)
    eyes = (p[list(LAYOUT_68.left_eye)].mean(axis=0) + p[list(LAYOUT_68.right_eye)].mean(axis=0)) / 2
    mouth = (p[48] + p[54]) / 2
    y = mouth - eyes - np.dot(mouth - eyes, x) * x
    y /= np.linalg.norm(y)
    p = p @ np.stack([x, y, np.cross(x, y)]).T
    eye_z = (p[list(LAYOUT_68.left_eye)].mean(axis=0)[2] + p[list(LAYOUT_68.right_eye)].mean(axis=0)[2]) / 2
    if p[30, 2] > eye_z:  # depth ambiguity of the factorisation: put the nose in front of the eyes
        p[:, 2] *= -1
    mirrored = p[LAYOUT_68.flip_permutation()] * np.array([-1.0, 1.0, 1.0])
    p = (p + mirrored) / 2
    p -= p.mean(axis=0)
    return p / np.linalg.norm(p[45] - p[36])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    parser.add_argument("-o", "--output", type=Path, default=Path("src/hrface/geometry/mean_face_68.json"))
    args = parser.parse_args()
    samples = [s for sub in SUBSETS for s in read_300w_folder(args.shared / "data" / "300w" / sub)]
    points = np.stack([s.points for s in samples if s.points.shape == (68, 2) and np.isfinite(s.points).all()])
    centred = points - points.mean(axis=1, keepdims=True)
    radius = np.sqrt((centred**2).sum(axis=2).mean(axis=1))
    iod = np.linalg.norm(points[:, 45] - points[:, 36], axis=1)
    w = centred / radius[:, None, None]
    keep = np.ones(len(w), dtype=bool)
    for round_ in range(ROUNDS + 1):
        _, shape, rank3_rms = factorise(w[keep])
        error = np.linalg.norm(fit_cameras(shape, w) - w, axis=2).mean(axis=1) * radius / iod
        median = np.median(error[keep])
        spread = 1.4826 * np.median(np.abs(error[keep] - median))
        print(
            f"round {round_}: {keep.sum()} faces, rank-3 RMS {rank3_rms:.4f} (unit-radius shapes), "
            f"mean residual {error[keep].mean():.4f} IOD"
        )
        if round_ < ROUNDS:
            keep = error <= median + 3 * spread
    face = canonical(shape)
    projected = fit_cameras(face.T, w[keep])
    per_point = np.linalg.norm(projected - w[keep], axis=2) * radius[keep, None]
    residual_iod = float((per_point / iod[keep, None]).mean())
    residual_px = float(per_point.mean())
    print(f"faces used: {keep.sum()} of {len(w)}; rank-3 RMS residual {rank3_rms:.4f} (unit-RMS-radius shapes)")
    print(f"symmetric mean face, scaled-orthographic reprojection: {residual_iod:.4f} IOD, {residual_px:.2f} px")
    eyes_z = (face[36:42].mean(axis=0)[2] + face[42:48].mean(axis=0)[2]) / 2
    print(f"nose tip depth in front of the eye centres: {eyes_z - face[30, 2]:.3f} (outer-eye-corner units)")
    derivation = (
        f"scripts/derive_mean_face.py: Tomasi-Kanade rank-3 factorisation with metric upgrade (weak perspective) "
        f"of the 68-point annotations of ../shared/data/300w/{{afw,helen_train}}; {keep.sum()} of {len(w)} faces "
        f"used after {ROUNDS} rounds of outlier removal (median + 3 robust SD); mirror-symmetrised; mean "
        f"reprojection residual {residual_iod:.4f} outer-eye-corner distances ({residual_px:.2f} px)"
    )
    doc = {
        "derivation": derivation,
        "axes": "x: image-left to image-right of an upright frontal face; y: down (eyes to mouth); z = x cross y, "
        "away from the camera (the nose tip has the smallest z); origin: centroid of the 68 points",
        "units": "outer eye corners (points 36 and 45) are 1.0 apart",
        "faces_used": int(keep.sum()),
        "faces_total": len(w),
        "residual_iod": round(residual_iod, 5),
        "residual_px": round(residual_px, 3),
    }
    rows = ",\n".join(f"  [{x!r}, {y!r}, {z!r}]" for x, y, z in np.round(face, 6).tolist())
    args.output.write_text(json.dumps(doc, indent=1)[:-2] + f',\n "points": [\n{rows}\n ]\n}}\n')
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
