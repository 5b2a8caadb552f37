"""hrface: face detection (RetinaFace) and dense facial landmarks (HRNetV2).

>>> from hrface import FaceAnalyzer
>>> faces = FaceAnalyzer()("photo.jpg")  # the shipped detector and 68-point landmark model, no torch needed
>>> faces[0].box, faces[0].landmarks
"""

from ._version import __version__ as __version__
from .errors import CheckpointError, HrfaceError, ImageLoadError, WeightsNotFoundError
from .models.registry import create_model, list_models
from .runtime import Detections, Detector, Face, FaceAnalyzer, Landmarker

__all__ = [
    "CheckpointError",
    "Detections",
    "Detector",
    "Face",
    "FaceAnalyzer",
    "HrfaceError",
    "ImageLoadError",
    "Landmarker",
    "WeightsNotFoundError",
    "create_model",
    "list_models",
]
