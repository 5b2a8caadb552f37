"""Load-time check of a model that runs as an ONNX graph: one small inference compared with what its ``hrface.*``
metadata and its kind promise (the metadata values themselves are checked as they are read,
:meth:`hrface.models.config.ModelConfig.from_metadata`).

A graph whose outputs contradict its metadata (edited, exported by another tool, damaged) would otherwise
load, then fail on every image with ONNX Runtime's or NumPy's own text (or, worse, run: a landmark model
declared with 68 points that gives 98, a detector whose outputs are NaN and finds nothing).  The check feeds
one plain grey input (zeros after normalisation) and requires:

- a detector (``retinaface``): three outputs, boxes (1, P, 4), scores (1, P, 2) and keypoints (1, P, 10) for
  the P priors of a 32 × 32 input;
- a landmark model (``hrnet``): one output, (1, K, S/4, S/4) heatmaps for an S × S crop (S = ``input_size``),
  K = ``num_landmarks``;
- finite values.

Cost (one thread of a busy 2-core CPU, median of 5 loads): 1.5 ms for the shipped detector (its load: 45-90 ms),
70-80 ms for the shipped INT8 landmark model (its load: 0.7-0.9 s, so about 9 %); the first real inference
then runs 10-20 ms faster, as ONNX Runtime's first-run set-up is already done.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CheckpointError, one_line
from ..ops import prior_boxes

DETECTOR_SIDE = 32  # the test input's side for a detector: the smallest that all three strides divide (42 priors)
_KINDS = {"retinaface": "a detector", "hrnet": "a landmark model"}
FIX = "re-export it with 'hrface export', or use another model"


def check_outputs(runner: Any, kind: str, source: str) -> None:
    """Run ``runner`` once on a grey input and raise a one-line :class:`CheckpointError` naming ``source`` when
    its outputs are not what a ``kind`` model ('retinaface' | 'hrnet') with its metadata gives."""
    side = DETECTOR_SIDE if kind == "retinaface" else int(runner.info.input_size)
    try:
        outputs = runner(np.zeros((1, 3, side, side), np.float32))
    except Exception as exc:  # ONNX Runtime and OpenVINO raise their own types
        raise CheckpointError(f"{source}: fails on a {side}x{side} test input ({one_line(exc, 160)}); {FIX}") from None
    shapes = [tuple(int(n) for n in np.shape(output)) for output in outputs]
    if kind == "retinaface":
        priors = len(prior_boxes(side, side))
        expected = [(1, priors, 4), (1, priors, 2), (1, priors, 10)]
        what = "boxes, scores and keypoints of each prior"
    else:
        k, cells = int(runner.info.num_landmarks), side // 4
        expected = [(1, k, cells, cells)]
        what = f"{k} heatmaps, a quarter of the {side}-px crop"
        if len(shapes) == 1 and len(shapes[0]) == 4 and shapes[0][1] != k:
            raise CheckpointError(
                f"{source}: its metadata declares {k} landmarks (hrface.num_landmarks) but it outputs "
                f"{shapes[0][1]} heatmaps; {FIX}"
            )
    if shapes != expected:
        raise CheckpointError(
            f"{source}: outputs {_shapes(shapes)} for a {side}x{side} input, where {_KINDS[kind]} gives "
            f"{_shapes(expected)} ({what}); {FIX}"
        )
    if not all(np.isfinite(output).all() for output in outputs):
        raise CheckpointError(
            f"{source}: outputs NaN or infinite values on a plain grey input (damaged weights, or a training run "
            "that diverged); use another model"
        )


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join(str(shape) for shape in shapes) if shapes else "nothing"
