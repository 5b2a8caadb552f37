"""Inference runtime: detector, landmarker and the combined FaceAnalyzer."""

from .analyzer import FaceAnalyzer
from .detector import Detections, Detector
from .faces import Face
from .landmarker import Landmarker

__all__ = ["Detections", "Detector", "Face", "FaceAnalyzer", "Landmarker"]
