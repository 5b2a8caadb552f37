"""Dense facial landmark layouts: 300W (68), WFLW (98), COFW (29) and AFLW (19 points).

All indices are 0-based.  **Left and right are the image's**: in an upright frontal face,
``left_eye`` is the eye with the smaller x (the subject's right eye), exactly the order in which
these datasets list their points (300W: points 36–41 before 42–47).  Flip pairs follow the
reference HRNet face-alignment code (converted to 0-based where it counts from 1).

Point arrays are ``(..., K, 2)`` pixel coordinates ``(x, y)``; the functions here broadcast over
any leading dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

Pairs = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class LandmarkLayout:
    """Semantics of one dense landmark scheme.

    - ``flip_pairs``: mirror-symmetric point pairs, each pair once; points on the symmetry axis are
      in no pair.
    - ``left_eye`` / ``right_eye``: the eye contour points of the eye on the image's left / right.
    - ``outer_eye_corners``: the two points whose distance normalises errors (inter-ocular NME).
    - ``pupils``: annotated eye centres (image-left, image-right), if the scheme has them.
    - ``nose_tip``, ``mouth_corners`` (image-left, image-right): for the 5-point summary.
    - ``parts``: facial parts ``(name, point indices)`` (jaw, brows, nose, eyes, mouth), for error reports.
    """

    name: str
    num_points: int
    flip_pairs: Pairs
    left_eye: tuple[int, ...]
    right_eye: tuple[int, ...]
    outer_eye_corners: tuple[int, int]
    nose_tip: int
    mouth_corners: tuple[int, int]
    pupils: tuple[int, int] | None = None
    parts: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def __post_init__(self) -> None:
        paired = [i for pair in self.flip_pairs for i in pair]
        named = [
            *paired,
            *self.left_eye,
            *self.right_eye,
            *self.outer_eye_corners,
            self.nose_tip,
            *self.mouth_corners,
            *(self.pupils or ()),
            *(i for _, indices in self.parts for i in indices),
        ]
        if any(not 0 <= i < self.num_points for i in named):
            raise ConfigError(f"layout {self.name}: an index is outside 0..{self.num_points - 1}")
        if len(set(paired)) != len(paired) or any(a == b for a, b in self.flip_pairs):
            raise ConfigError(f"layout {self.name}: flip pairs must be disjoint pairs of distinct points")

    def flip_permutation(self) -> np.ndarray:
        """Index array ``perm`` (K,) int64 for horizontal mirroring.

        If ``points`` are the landmarks of an image and ``mirrored`` the same points with x mirrored
        (``x' = width - 1 - x``), then ``mirrored[..., perm, :]`` are the landmarks of the mirrored
        image in this layout's order.  ``perm`` is an involution (``perm[perm] == arange(K)``).
        """
        perm = np.arange(self.num_points)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def _check(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        if points.ndim < 2 or points.shape[-2:] != (self.num_points, 2):
            raise ValueError(
                f"layout {self.name} expects points of shape (..., {self.num_points}, 2), got {points.shape}"
            )
        return points

    def interocular(self, points: np.ndarray) -> np.ndarray:
        """Distance between the outer eye corners: (..., K, 2) → (...), in the points' units."""
        points = self._check(points)
        a, b = self.outer_eye_corners
        return np.linalg.norm(points[..., a, :] - points[..., b, :], axis=-1)

    def eye_centres(self, points: np.ndarray) -> np.ndarray:
        """(..., K, 2) → (..., 2, 2): centres of the image-left and image-right eye.

        The annotated pupils where the layout has them, otherwise the mean of each eye's contour.
        """
        points = self._check(points)
        if self.pupils is not None:
            return points[..., list(self.pupils), :]
        left = points[..., list(self.left_eye), :].mean(axis=-2)
        right = points[..., list(self.right_eye), :].mean(axis=-2)
        return np.stack([left, right], axis=-2)

    def interpupil(self, points: np.ndarray) -> np.ndarray:
        """Distance between the two eye centres (see :meth:`eye_centres`): (..., K, 2) → (...)."""
        centres = self.eye_centres(points)
        return np.linalg.norm(centres[..., 0, :] - centres[..., 1, :], axis=-1)

    def five_points(self, points: np.ndarray) -> np.ndarray:
        """The 5 RetinaFace-style keypoints from dense landmarks: (..., K, 2) → (..., 5, 2).

        Order: image-left eye centre, image-right eye centre, nose tip, image-left mouth corner,
        image-right mouth corner (in a frontal upright face the "left" ones have the smaller x).
        """
        points = self._check(points)
        eyes = self.eye_centres(points)
        rest = points[..., [self.nose_tip, *self.mouth_corners], :]
        return np.concatenate([eyes, rest], axis=-2)


def _mirror_run(first: int, last: int, count: int) -> Pairs:
    """Pairs ``(first + k, last - k)`` for k < count: a contour listed from one side to the other."""
    return tuple((first + k, last - k) for k in range(count))


# The flip pairs are grouped one facial part per line: keep the formatter out.
# fmt: off
# 300W / iBUG 68: jaw 0–16 (8 = chin), brows 17–26, nose bridge 27–30 (30 = tip), nostrils 31–35,
# eyes 36–41 and 42–47 (each from the outer corner, clockwise), outer lips 48–59, inner lips 60–67.
LAYOUT_68 = LandmarkLayout(
    name="300W",
    num_points=68,
    flip_pairs=(
        *_mirror_run(0, 16, 8),  # jaw
        *_mirror_run(17, 26, 5),  # brows
        (31, 35), (32, 34),  # nostrils
        (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes
        *_mirror_run(48, 54, 3), (55, 59), (56, 58),  # outer lips
        (60, 64), (61, 63), (65, 67),  # inner lips
    ),
    left_eye=tuple(range(36, 42)),
    right_eye=tuple(range(42, 48)),
    outer_eye_corners=(36, 45),
    nose_tip=30,
    mouth_corners=(48, 54),
    parts=(
        ("jaw", tuple(range(0, 17))),
        ("brows", tuple(range(17, 27))),
        ("nose", tuple(range(27, 36))),
        ("eyes", tuple(range(36, 48))),
        ("mouth", tuple(range(48, 68))),
    ),
)

# WFLW 98: jaw 0–32 (16 = chin), brows 33–41 and 42–50 (upper arc then lower arc), nose bridge
# 51–54 (54 = tip), nostrils 55–59, eyes 60–67 and 68–75 (from the outer corner), outer lips 76–87,
# inner lips 88–95, pupils 96 and 97.
LAYOUT_98 = LandmarkLayout(
    name="WFLW",
    num_points=98,
    flip_pairs=(
        *_mirror_run(0, 32, 16),  # jaw
        *_mirror_run(33, 46, 5), (38, 50), (39, 49), (40, 48), (41, 47),  # brows
        (55, 59), (56, 58),  # nostrils
        *_mirror_run(60, 72, 5), (65, 75), (66, 74), (67, 73),  # eyes
        *_mirror_run(76, 82, 3), (83, 87), (84, 86),  # outer lips
        (88, 92), (89, 91), (93, 95),  # inner lips
        (96, 97),  # pupils
    ),
    left_eye=tuple(range(60, 68)),
    right_eye=tuple(range(68, 76)),
    outer_eye_corners=(60, 72),
    nose_tip=54,
    mouth_corners=(76, 82),
    pupils=(96, 97),
    parts=(
        ("jaw", tuple(range(0, 33))),
        ("brows", tuple(range(33, 51))),
        ("nose", tuple(range(51, 60))),
        ("eyes", (*range(60, 76), 96, 97)),
        ("mouth", tuple(range(76, 96))),
    ),
)

# COFW 29 (the LFPW-derived scheme), image-left point of each pair first: brow outer corners 0/1,
# brow inner corners 2/3, brow arcs 4–5 / 6–7, eye corners 8/9 and 10/11, eyelids 12–13 / 14–15,
# pupils 16/17, nostrils 18/19, nose tip 20, below-nose 21, mouth corners 22/23, lip mid-points
# 24–27, chin 28.  HRNet normalises COFW errors by the distance of points 8 and 9.
LAYOUT_29 = LandmarkLayout(
    name="COFW",
    num_points=29,
    flip_pairs=(
        (0, 1), (2, 3), (4, 6), (5, 7),  # brows
        (8, 9), (10, 11), (12, 14), (13, 15), (16, 17),  # eyes and pupils
        (18, 19),  # nostrils
        (22, 23),  # mouth corners
    ),
    left_eye=(8, 10, 12, 13),
    right_eye=(9, 11, 14, 15),
    outer_eye_corners=(8, 9),
    nose_tip=20,
    mouth_corners=(22, 23),
    pupils=(16, 17),
    parts=(
        ("jaw", (28,)),
        ("brows", tuple(range(0, 8))),
        ("nose", (18, 19, 20, 21)),
        ("eyes", tuple(range(8, 18))),
        ("mouth", (22, 23, 24, 25, 26, 27)),
    ),
)

# AFLW 19 (AFLW's 21 points without the ears): brows 0–2 and 3–5, eyes 6–8 and 9–11 (corner,
# centre, corner), nostrils 12/14 around the nose tip 13, mouth corners 15/17 around the mouth
# centre 16, chin 18.  HRNet normalises AFLW errors by the face box size instead.
LAYOUT_19 = LandmarkLayout(
    name="AFLW",
    num_points=19,
    flip_pairs=(
        *_mirror_run(0, 5, 3),  # brows
        *_mirror_run(6, 11, 3),  # eyes
        (12, 14),  # nostrils
        (15, 17),  # mouth corners
    ),
    left_eye=(6, 7, 8),
    right_eye=(9, 10, 11),
    outer_eye_corners=(6, 11),
    nose_tip=13,
    mouth_corners=(15, 17),
    pupils=(7, 10),
    parts=(
        ("jaw", (18,)),
        ("brows", tuple(range(0, 6))),
        ("nose", (12, 13, 14)),
        ("eyes", tuple(range(6, 12))),
        ("mouth", (15, 16, 17)),
    ),
)
# fmt: on

LAYOUTS: dict[int, LandmarkLayout] = {
    layout.num_points: layout for layout in (LAYOUT_68, LAYOUT_98, LAYOUT_29, LAYOUT_19)
}


def get_layout(num_points: int) -> LandmarkLayout:
    """The layout with ``num_points`` points; :class:`ConfigError` for an unknown count."""
    try:
        return LAYOUTS[num_points]
    except KeyError:
        known = ", ".join(f"{n} ({layout.name})" for n, layout in LAYOUTS.items())
        raise ConfigError(f"no landmark layout has {num_points} points; known layouts: {known}") from None
