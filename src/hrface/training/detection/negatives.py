"""Hard negatives: face-free images for detector training, cut from the training photos or drawn.

A detector trained on 300W sees few things that are not faces: its photos are portraits, and the canvas of
a mosaic is a flat colour. It then calls wall pegs, ears and textures faces. Three kinds of face-free
images teach it otherwise (each written as an image file, listed in ``negatives.json``):

- ``false_face``: the false faces that a detector (e.g. the current default) finds in the training photos:
  detections scoring at least ``threshold`` that match no known face, each cut out with context
  (a square of ``context`` × the detection's size, centred on it);
- ``background``: random squares of the training photos (walls, clothes, hands, ears beside the faces);
- ``texture``: drawn images (smooth noise, stripes, blobs, dots), for the textures no photo holds.

*Known faces* are the annotated ones and every face a reference detector (the published WIDER FACE
MobileNet-0.25 at score ≥ 0.3, :mod:`.teacher`'s cache) finds: a cut is kept only when no known face has
more than :data:`MAX_FACE_OVERLAP` of its box inside it, so unannotated people do not become negatives.
Everything is drawn from one seeded generator, so the same photos give the same files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from ...data.detection.samples import DetectionSample
from ...evaluation.false_faces import unmatched
from ...io.files import atomic_write_text
from ...io.image import read_image, write_image

MAX_FACE_OVERLAP = 0.2  # largest share of a known face's box a face-free cut may hold
CONTEXTS = (3.0, 2.0, 1.5)  # cut sides around a false face, tried in order until one is face-free
MIN_CUT = 32  # pixels: smaller cuts are not written

DetectFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""Maps a BGR photo to its detections ``(boxes (K, 4) xyxy pixels, scores (K,))``."""


@dataclass(frozen=True)
class NegativeCut:
    """One face-free image: ``kind`` (module doc), its file name, the photo it was cut from (empty for a
    texture), the cut ``roi`` (x1 y1 x2 y2 pixels of that photo) and the detector's ``score`` (false faces)."""

    kind: str
    file: str
    source: str = ""
    roi: tuple[int, int, int, int] = (0, 0, 0, 0)
    score: float = 0.0


def face_free(roi: np.ndarray, known: np.ndarray, max_overlap: float = MAX_FACE_OVERLAP) -> bool:
    """Whether the square ``roi`` (x1 y1 x2 y2) holds at most ``max_overlap`` of every known face box (K, 4)."""
    if not len(known):
        return True
    lt = np.maximum(known[:, :2], roi[:2])
    rb = np.minimum(known[:, 2:], roi[2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=1)
    area = np.clip(known[:, 2:] - known[:, :2], 1e-9, None).prod(axis=1)
    return bool((inter / area <= max_overlap).all())


def square_around(box: np.ndarray, context: float, width: int, height: int) -> np.ndarray | None:
    """The square of side ``context`` × √(w·h) of ``box`` centred on it, shifted inside the image; None when
    the image is too small for it."""
    side = int(round(context * float(np.sqrt(max((box[2] - box[0]) * (box[3] - box[1]), 1.0)))))
    if side > min(width, height) or side < MIN_CUT:
        return None
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x1 = int(np.clip(round(cx - side / 2), 0, width - side))
    y1 = int(np.clip(round(cy - side / 2), 0, height - side))
    return np.array([x1, y1, x1 + side, y1 + side])


def false_face_cuts(
    boxes: np.ndarray, scores: np.ndarray, known: np.ndarray, width: int, height: int, threshold: float
) -> list[tuple[np.ndarray, float]]:
    """Face-free cuts ``(roi, score)`` around the detections (N, 4) scoring ≥ ``threshold`` that match no known
    face (:func:`hrface.evaluation.false_faces.unmatched`, IoU < 0.3): the widest of :data:`CONTEXTS` that is
    face-free, if any."""
    keep = (scores >= threshold) & unmatched(boxes, known)
    cuts = []
    for box, score in zip(boxes[keep], scores[keep], strict=True):
        for context in CONTEXTS:
            roi = square_around(box, context, width, height)
            if roi is not None and face_free(roi, known):
                cuts.append((roi, float(score)))
                break
    return cuts


def background_cuts(
    known: np.ndarray, width: int, height: int, count: int, rng: np.random.Generator, tries: int = 50
) -> list[np.ndarray]:
    """Up to ``count`` random face-free squares of 0.15–0.6 of the photo's shorter side."""
    cuts: list[np.ndarray] = []
    short = min(width, height)
    for _ in range(tries):
        if len(cuts) == count:
            break
        side = int(short * rng.uniform(0.15, 0.6))
        if side < MIN_CUT:
            continue
        x1, y1 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        roi = np.array([x1, y1, x1 + side, y1 + side])
        if face_free(roi, known):
            cuts.append(roi)
    return cuts


def texture(rng: np.random.Generator, size: int = 320) -> np.ndarray:
    """A drawn face-free (size, size, 3) uint8 BGR image: smooth colour noise, stripes, blobs or dots."""
    kind = int(rng.integers(4))
    if kind == 0:  # smooth noise at a random scale
        cells = int(rng.integers(3, 40))
        small = rng.uniform(0, 255, (cells, cells, 3)).astype(np.float32)
        image = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    elif kind == 1:  # stripes / gratings at a random angle and period
        y, x = np.mgrid[0:size, 0:size].astype(np.float32)
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 60)
        wave = np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period)
        colours = rng.uniform(0, 255, (2, 3)).astype(np.float32)
        image = colours[0] + (wave[..., None] + 1) / 2 * (colours[1] - colours[0])
    else:  # blobs (kind 2) or dots (kind 3) on a plain or noisy ground
        image = np.empty((size, size, 3), np.float32)
        image[:] = rng.uniform(0, 255, 3)
        count = int(rng.integers(5, 40)) if kind == 2 else int(rng.integers(50, 400))
        radius = (4, size // 6) if kind == 2 else (1, 6)
        for _ in range(count):
            centre = (int(rng.integers(size)), int(rng.integers(size)))
            colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
            cv2.circle(image, centre, int(rng.integers(*radius)), colour, -1, cv2.LINE_AA)
    image = image + rng.normal(0, rng.uniform(0, 12), image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_negatives(
    out_dir: str | Path,
    samples: Sequence[DetectionSample],
    known: dict[str, np.ndarray],
    detect: DetectFn | None,
    threshold: float = 0.3,
    backgrounds_per_photo: int = 1,
    textures: int = 200,
    seed: int = 0,
) -> list[NegativeCut]:
    """Write the face-free images of the module doc into ``out_dir`` (PNG) and ``negatives.json``.

    Args:
        samples: the training photos with their annotated faces.
        known: image path → (K, 4) xyxy boxes of the faces a reference detector finds there.
        detect: the detector whose false faces are mined (None: no ``false_face`` cuts).
        threshold: lowest score of a mined false face.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cuts: list[NegativeCut] = []

    def save(kind: str, image: np.ndarray, **where: object) -> None:
        name = f"{kind}_{len(cuts):05d}.png"
        write_image(out / name, image)
        cuts.append(NegativeCut(kind, name, **where))  # type: ignore[arg-type]

    for sample in samples:
        photo = read_image(sample.image)
        height, width = photo.shape[:2]
        extra = np.asarray(known.get(sample.image, ()), np.float64).reshape(-1, 4)
        faces = np.concatenate([sample.boxes.astype(np.float64), extra])
        found: list[tuple[str, np.ndarray, float]] = []
        if detect is not None:
            boxes, scores = detect(photo)
            boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
            mined = false_face_cuts(boxes, np.asarray(scores), faces, width, height, threshold)
            found += [("false_face", roi, score) for roi, score in mined]
        backgrounds = background_cuts(faces, width, height, backgrounds_per_photo, rng)
        found += [("background", roi, 0.0) for roi in backgrounds]
        for kind, roi, score in found:
            x1, y1, x2, y2 = (int(v) for v in roi)
            save(kind, photo[y1:y2, x1:x2], source=sample.image, roi=(x1, y1, x2, y2), score=round(score, 4))
    for _ in range(textures):
        save("texture", texture(rng))
    atomic_write_text(out / "negatives.json", json.dumps([asdict(c) for c in cuts], indent=1))
    return cuts
