"""RetinaFace face detector (MobileNetV1-0.25 and ResNet50 backbones)."""

from .backbones import MobileNetV1, ResNet50
from .model import BACKBONES, RetinaFace

__all__ = ["BACKBONES", "MobileNetV1", "ResNet50", "RetinaFace"]
