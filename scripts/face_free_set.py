"""Write the face-free evaluation set: scikit-image's sample images that hold no human face, each also tiled.

The false-face measurement of ``hrface eval-detector --face-free DIR`` needs images in which every detection is
false. scikit-image ships about thirty sample images in its wheel (textures, objects, an animal, star fields,
microscopy); this script writes those without a human face as PNG files, each once as shipped and once tiled
(repeated, then cut) to 1,280 × 960 px, where a detector sees its patterns at a smaller scale. None of them is
used in training (the training negatives are cut from the 300W training photos and drawn: ``hrface
mine-negatives``). Run it in an environment that has scikit-image (it is not an hrface dependency)::

    python -m venv /tmp/skimage && /tmp/skimage/bin/pip install scikit-image
    /tmp/skimage/bin/python scripts/face_free_set.py runs/face_free
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# Left out: astronaut, camera (a person each), coins (heads on coins), lfw_subset (faces),
# no_time_for_that_tiny.gif (a person), the multipage TIFFs and the motorcycle disparity (not photos).
FACE_FREE = (
    "brick.png",
    "cell.png",
    "chelsea.png",
    "chessboard_GRAY.png",
    "chessboard_RGB.png",
    "clock_motion.png",
    "coffee.png",
    "color.png",
    "grass.png",
    "gravel.png",
    "horse.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "logo.png",
    "microaneurysms.png",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "page.png",
    "phantom.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)
TILED = (1280, 960)  # width, height of the tiled copies


def tiled(image: np.ndarray, size: tuple[int, int] = TILED) -> np.ndarray:
    """``image`` (H, W, 3) repeated in both directions and cut to ``size`` = (width, height)."""
    width, height = size
    reps = (-(-height // image.shape[0]), -(-width // image.shape[1]), 1)
    return np.tile(image, reps)[:height, :width]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="folder to write the PNG files into")
    args = parser.parse_args(argv)
    try:
        import skimage
    except ImportError:
        print("error: scikit-image is not installed in this environment; see this script's docstring", file=sys.stderr)
        return 2
    data = Path(skimage.__file__).parent / "data"
    args.output.mkdir(parents=True, exist_ok=True)
    for name in FACE_FREE:
        rgb = np.asarray(Image.open(data / name).convert("RGB"))
        stem = Path(name).stem
        Image.fromarray(rgb).save(args.output / f"{stem}.png")
        Image.fromarray(tiled(rgb)).save(args.output / f"{stem}_tiled.png")
    print(f"wrote {2 * len(FACE_FREE)} images to {args.output} (scikit-image {skimage.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
