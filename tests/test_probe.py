"""probing: hooks and mode for one block, put back even when the forward pass fails."""

import pytest
import torch
from torch import nn

from inceptionkit.probe import LayerInputError, locate_failure, probing


def test_mode_hooks_and_batchnorm_statistics_are_put_back_after_an_error():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    before = model[1].running_mean.clone()
    seen = []
    with pytest.raises(RuntimeError), probing(model, forward=[(model[0], lambda *_: seen.append(1))], training=True):
        assert model.training
        model(torch.randn(2, 3, 8, 8))  # updates the BatchNorm statistics
        model(torch.randn(2, 5, 8, 8))  # wrong channels
    assert seen == [1] and not model.training
    assert torch.equal(model[1].running_mean, before)
    assert not model[0]._forward_hooks and not model[0]._forward_pre_hooks
    model(torch.randn(1, 3, 8, 8))  # no hook left to call
    assert seen == [1]


def test_locate_failure_names_the_innermost_layer():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), nn.Conv2d(4, 4, 5))
    failed = pytest.raises(LayerInputError, match=r"net: layer '1' \(Conv2d 5x5/1 4->4\).*1x4x4x4")
    with failed, locate_failure(model, "net"):
        model(torch.randn(1, 3, 6, 6))
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
