"""A line-plot canvas drawn with OpenCV, without matplotlib: frame, grid, ticks, curves, legend, labels.

The figure is rendered at :data:`SUPERSAMPLE` times its size and shrunk with area averaging at the
end, which gives smooth lines and legible Hershey text.  Callers give positions in final-size pixels
and data in axis units: x from 0 to ``x_max``, y (a fraction) from 0 to 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from hrface.evaluation.landmarks import EvaluationError

__all__ = ["CURVE_COLORS", "PlotCanvas", "ascii_label", "nice_ticks"]

CURVE_COLORS = (
    (180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
    (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23),
)
"""BGR line colours, used in order and cycled (matplotlib's "tab10" palette)."""

Color = tuple[int, int, int]

SUPERSAMPLE = 2
_S = SUPERSAMPLE
_SHIFT = 4  # fractional bits of the sub-pixel polyline coordinates
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK, _AXIS, _GRID = (40, 40, 40), (90, 90, 90), (228, 228, 228)


def ascii_label(text: str, limit: int = 60) -> str:
    """``text`` on one line in ASCII (Hershey fonts draw nothing else; others become ``?``), cut to ``limit``."""
    s = " ".join(str(text).encode("ascii", "replace").decode("ascii").split())
    return s if len(s) <= limit else s[: limit - 3] + "..."


def nice_ticks(upper: float, target: int = 5) -> tuple[np.ndarray, int]:
    """Ticks 0, step, ... <= upper with a 1-2-2.5-5 step; and the decimals their labels need."""
    raw = upper / target
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw * 0.999)
    ticks = np.arange(0.0, upper + step * 1e-6, step)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if round(step / mag, 3) == 2.5 else 0)
    return ticks, decimals


def _text_size(text: str, scale: float, thick: int = 1) -> tuple[float, float]:
    (w, h), base = cv2.getTextSize(text, _FONT, scale * _S, thick * _S)
    return w / _S, (h + base) / _S


class PlotCanvas:
    """A white figure of ``size`` (width, height) px with a plot area for x in [0, x_max], y in [0, 1].

    Draw in this order: :meth:`axes`, :meth:`curve` (each), :meth:`legend`, :meth:`labels`; then take
    :meth:`image`.  The legend goes to the corner of the plot area that the curves cross least.
    """

    def __init__(self, size: tuple[int, int], x_max: float) -> None:
        width, height = int(size[0]), int(size[1])
        if width < 320 or height < 240:
            raise EvaluationError(f"plot size must be at least 320x240, got {width}x{height}")
        self.width, self.height, self.x_max = width, height, float(x_max)
        self.left, self.right, self.top, self.bottom = 78, width - 24, 52, height - 62
        self.img = np.full((height * _S, width * _S, 3), 255, np.uint8)
        self._mask = np.zeros(self.img.shape[:2], np.uint8)  # pixels covered by curves

    def px(self, x: np.ndarray | float) -> np.ndarray:
        """Final-size pixel column of data x."""
        return self.left + np.asarray(x) / self.x_max * (self.right - self.left)

    def py(self, y: np.ndarray | float) -> np.ndarray:
        """Final-size pixel row of data y (0 at the bottom of the plot area, 1 at its top)."""
        return self.bottom - np.asarray(y) * (self.bottom - self.top)

    def line(self, p: tuple[float, float], q: tuple[float, float], color: Color, thick: int = 1) -> None:
        """A straight line between two final-size pixel positions."""
        a = (round(p[0] * _S), round(p[1] * _S))
        b = (round(q[0] * _S), round(q[1] * _S))
        cv2.line(self.img, a, b, color, thick * _S, cv2.LINE_AA)

    def text(self, text: str, x: float, y: float, scale: float, color: Color = _INK, align: str = "left",
             thick: int = 1) -> None:
        """``text`` with its baseline at ``y`` (final-size pixels), anchored left/centre/right at ``x``."""
        (w, _), _ = cv2.getTextSize(text, _FONT, scale * _S, thick * _S)
        dx = {"left": 0.0, "center": -w / 2, "right": -w}[align]
        org = (round(x * _S + dx), round(y * _S))
        cv2.putText(self.img, text, org, _FONT, scale * _S, color, thick * _S, cv2.LINE_AA)

    def axes(
        self, xticks: np.ndarray, x_decimals: int, yticks: np.ndarray, y_decimals: int, y_max: float = 1.0
    ) -> None:
        """Grid lines, tick marks and tick labels at the given data values, and the frame; the y ticks are
        labelled with their values and placed at ``value / y_max`` (plots whose y range is not [0, 1])."""
        for v in xticks:
            x = float(self.px(v))
            self.line((x, self.top), (x, self.bottom), _GRID)
            self.line((x, self.bottom), (x, self.bottom + 5), _AXIS)
            self.text(f"{v:.{x_decimals}f}", x, self.bottom + 22, 0.45, align="center")
        for v in yticks:
            y = float(self.py(v / y_max))
            self.line((self.left, y), (self.right, y), _GRID)
            self.line((self.left - 5, y), (self.left, y), _AXIS)
            self.text(f"{v:.{y_decimals}f}", self.left - 9, y + 5, 0.45, align="right")
        corners = (self.left * _S, self.top * _S), (self.right * _S, self.bottom * _S)
        cv2.rectangle(self.img, *corners, _AXIS, _S, cv2.LINE_AA)

    def curve(self, xs: np.ndarray, ys: np.ndarray, color: Color) -> None:
        """A 2 px polyline through the data points (xs, ys), drawn with sub-pixel precision."""
        pts = np.column_stack([self.px(xs), self.py(ys)]) * _S
        fixed = np.rint(pts * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(self.img, [fixed], False, color, 2 * _S, cv2.LINE_AA, _SHIFT)
        cv2.polylines(self._mask, [fixed], False, 255, 2 * _S, cv2.LINE_8, _SHIFT)

    def legend(self, labels: Sequence[str], colors: Sequence[Color]) -> None:
        """A boxed legend, one coloured line and label per entry, in the corner the curves cross least
        (lower right, upper left, upper right, lower left: the first of equals)."""
        row, pad = 20, 10
        text_w = max(_text_size(s, 0.42)[0] for s in labels)
        box_w, box_h = 12 + 30 + 8 + text_w + 12, 10 + row * len(labels) + 4
        corners = [(self.right - pad - box_w, self.bottom - pad - box_h), (self.left + pad, self.top + pad),
                   (self.right - pad - box_w, self.top + pad), (self.left + pad, self.bottom - pad - box_h)]

        def overlap(c: tuple[float, float]) -> int:
            x0, y0 = max(0, round(c[0] * _S)), max(0, round(c[1] * _S))
            return int(np.count_nonzero(self._mask[y0:y0 + round(box_h * _S), x0:x0 + round(box_w * _S)]))

        bx, by = min(corners, key=overlap)
        p0, p1 = (round(bx * _S), round(by * _S)), (round((bx + box_w) * _S), round((by + box_h) * _S))
        box = self.img[p0[1]:p1[1], p0[0]:p1[0]]
        box[:] = (box * 0.15 + 255 * 0.85).astype(np.uint8)  # translucent white, curves stay faintly visible
        cv2.rectangle(self.img, p0, p1, (170, 170, 170), _S, cv2.LINE_AA)
        for j, (label, color) in enumerate(zip(labels, colors, strict=True)):
            y = by + 10 + row * j + row / 2
            self.line((bx + 12, y), (bx + 42, y), color, 2)
            self.text(label, bx + 50, y + 5, 0.42)

    def labels(self, title: str, xlabel: str, ylabel: str) -> None:
        """Title above the plot, x label below it, y label rotated along its left side (ASCII, shortened)."""
        self.text(ascii_label(title, 70), self.width / 2, 32, 0.65, align="center", thick=1)
        self.text(ascii_label(xlabel, 70), (self.left + self.right) / 2, self.height - 16, 0.5, align="center")
        self._rotated(ascii_label(ylabel, 70), 20, (self.top + self.bottom) / 2, 0.5)

    def _rotated(self, text: str, cx: float, cy: float, scale: float) -> None:
        """``text`` rotated 90° counter-clockwise, centred at (cx, cy) in final-size pixels."""
        (w, h), base = cv2.getTextSize(text, _FONT, scale * _S, _S)
        tile = np.full((h + base + 4 * _S, w + 4 * _S, 3), 255, np.uint8)
        cv2.putText(tile, text, (2 * _S, h + 2 * _S), _FONT, scale * _S, _INK, _S, cv2.LINE_AA)
        tile = np.ascontiguousarray(np.rot90(tile))
        th, tw = tile.shape[:2]
        y0, x0 = max(0, round(cy * _S - th / 2)), max(0, round(cx * _S - tw / 2))
        region = self.img[y0:y0 + th, x0:x0 + tw]
        np.minimum(region, tile[: region.shape[0], : region.shape[1]], out=region)

    def image(self) -> np.ndarray:
        """The figure at its final size: uint8 BGR ``height × width × 3``."""
        return cv2.resize(self.img, (self.width, self.height), interpolation=cv2.INTER_AREA)
