"""HRNetV2 facial landmark network (heatmap regression), checkpoint-compatible with the reference."""

from ..blocks import BasicBlock, Bottleneck
from .model import STAGE_CONFIGS, HRNet, StageSpec, stage_specs
from .module import HighResolutionModule

__all__ = ["BasicBlock", "Bottleneck", "HRNet", "HighResolutionModule", "STAGE_CONFIGS", "StageSpec", "stage_specs"]
