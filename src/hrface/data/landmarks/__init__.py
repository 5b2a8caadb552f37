"""Landmark datasets: readers for 300W, HRNet CSV, WFLW and COFW annotations, and photo-level splits.

Every reader returns :class:`LandmarkSample` records with 0-based pixel coordinates.
"""

from .cofw import CofwData, export_cofw, read_cofw_mat
from .hrnet_csv import read_aflw_box_sizes, read_hrnet_csv, write_hrnet_csv
from .parsing import DatasetError
from .pts import read_300w_folder, read_pts, strip_face_index, write_pts
from .samples import LandmarkSample, box_from_center_scale, box_from_points
from .split import PhotoSplit, load_split, photo_id, save_split, split_by_photo
from .wflw import WFLW_ATTRIBUTES, read_wflw_list, wflw_subset_masks

__all__ = [
    "WFLW_ATTRIBUTES",
    "CofwData",
    "DatasetError",
    "LandmarkSample",
    "PhotoSplit",
    "box_from_center_scale",
    "box_from_points",
    "export_cofw",
    "load_split",
    "photo_id",
    "read_300w_folder",
    "read_aflw_box_sizes",
    "read_cofw_mat",
    "read_hrnet_csv",
    "read_pts",
    "read_wflw_list",
    "save_split",
    "split_by_photo",
    "strip_face_index",
    "wflw_subset_masks",
    "write_hrnet_csv",
    "write_pts",
]
