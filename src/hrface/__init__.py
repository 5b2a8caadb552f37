"""hrface: face detection (RetinaFace) and dense facial landmarks (HRNetV2)."""
__version__ = "0.1.0"
