"""HRNetV2 facial landmark model: checkpoint layout, numerical parity with the reference, shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import reference_keys, shared_path, synthetic_state_dict
from hrface.errors import ConfigError
from hrface.models.hrnet import STAGE_CONFIGS, BasicBlock, Bottleneck, HighResolutionModule, HRNet

PARITY_TOLERANCE = 1e-4  # max abs difference of the heatmaps (the reference fixture runs on CPU)


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


@pytest.mark.parametrize("num_landmarks", [68, 98])
def test_state_dict_matches_reference_keys(num_landmarks: int) -> None:
    expected = reference_keys(f"hrnet_w18_{num_landmarks}_keys")
    model = HRNet(num_landmarks)
    got = [(key, tuple(value.shape)) for key, value in model.state_dict().items()]
    assert got == expected
    assert model.num_landmarks == num_landmarks and model.width == 18


@pytest.mark.parametrize("num_landmarks", [68, 98])
def test_parity_with_reference_synthetic_weights(num_landmarks: int) -> None:
    name = f"hrnet_w18_{num_landmarks}"
    fixture = np.load(shared_path("fixtures", f"{name}_synthetic_raw.npz"))
    model = HRNet(num_landmarks)
    model.load_state_dict(synthetic_state_dict(f"{name}_keys"), strict=True)
    model.eval()
    heatmaps = model(torch.from_numpy(fixture["input"])).numpy()
    expected = fixture["heatmaps"]
    assert heatmaps.shape == expected.shape == (1, num_landmarks, 64, 64)
    diff = float(np.abs(heatmaps - expected).max())
    assert diff <= PARITY_TOLERANCE, f"max abs diff {diff:.3g} vs reference"


@pytest.mark.parametrize("width", [32, 48])
def test_wider_variants_build_and_run(width: int) -> None:
    model = HRNet(num_landmarks=29, width=width).eval()
    assert STAGE_CONFIGS[width][2].num_channels == (width, 2 * width, 4 * width, 8 * width)
    assert model.head[0].in_channels == 15 * width
    out = model(torch.zeros(1, 3, 128, 128))
    assert out.shape == (1, 29, 32, 32)


def test_input_size_not_multiple_of_32() -> None:
    """Fusion resizes to each branch's exact size, so odd feature-map sizes work (as in the reference)."""
    model = HRNet(num_landmarks=19).eval()
    assert model(torch.zeros(2, 3, 100, 100)).shape == (2, 19, 25, 25)


def test_train_mode_forward_and_backward() -> None:
    model = HRNet(num_landmarks=5).train()
    with torch.enable_grad():
        out = model(torch.randn(2, 3, 64, 64))
        out.square().mean().backward()
    assert model.conv1.weight.grad is not None
    assert model.bn1.momentum == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("num_blocks", "num_inchannels", "num_channels", "culprit"),
    [
        ([4], [18, 36], [18, 36], "num_blocks"),
        ([4, 4], [18], [18, 36], "num_inchannels"),
        ([4, 4], [18, 36], [18, 36, 72], "num_channels"),
    ],
)
def test_module_rejects_mismatched_branch_lists(num_blocks, num_inchannels, num_channels, culprit) -> None:
    with pytest.raises(ConfigError, match=culprit):
        HighResolutionModule(2, BasicBlock, num_blocks, num_inchannels, num_channels)


def test_module_fusion_structure() -> None:
    module = HighResolutionModule(3, BasicBlock, [1, 1, 1], [8, 16, 32], [8, 16, 32]).eval()
    assert module.fuse_layers[1][1] is None
    # Two downsampling steps from branch 0 to branch 2: ReLU after the first only.
    steps = module.fuse_layers[2][0]
    assert len(steps) == 2
    assert isinstance(steps[0][2], torch.nn.ReLU) and len(steps[1]) == 2
    x = [torch.randn(1, c, 16 // 2**b, 16 // 2**b) for b, c in enumerate([8, 16, 32])]
    out = module(x)
    assert [tuple(t.shape) for t in out] == [(1, 8, 16, 16), (1, 16, 8, 8), (1, 32, 4, 4)]
    assert all(bool((t >= 0).all()) for t in out)  # final ReLU

    single = HighResolutionModule(3, BasicBlock, [1, 1, 1], [8, 16, 32], [8, 16, 32], multi_scale_output=False)
    assert len(single.eval()(x)) == 1


def test_blocks_shapes_and_projection() -> None:
    down = torch.nn.Sequential(torch.nn.Conv2d(64, 256, 1, bias=False), torch.nn.BatchNorm2d(256))
    block = Bottleneck(64, 64, downsample=down).eval()
    assert block(torch.randn(1, 64, 8, 8)).shape == (1, 256, 8, 8)
    assert BasicBlock(16, 16).eval()(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)
    assert BasicBlock.expansion == 1 and Bottleneck.expansion == 4


def test_invalid_configuration() -> None:
    with pytest.raises(ConfigError):
        HRNet(num_landmarks=0)
    with pytest.raises(ConfigError):
        HRNet(width=0)
