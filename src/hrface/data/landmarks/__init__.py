"""Landmark datasets: readers for 300W, HRNet CSV, WFLW and COFW annotations, and photo-level splits."""

from .samples import LandmarkSample, box_from_center_scale, box_from_points

__all__ = ["LandmarkSample", "box_from_center_scale", "box_from_points"]
