"""BN-Inception: Cadene's Caffe port transcribed as the reference, sizes, contract and argument checks."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from inceptionkit import create_model, model_config
from inceptionkit.probe import locate_failure
from tests.reference import assert_input_dependent, recalibrate_bn, relative_diff

# Cadene/pretrained-models.pytorch pretrainedmodels/models/bninception.py, its convs in registration
# order: name, in, out, kernel, stride (padding is kernel // 2 throughout; each conv has a bias and
# is followed by BatchNorm2d(eps=1e-5) named name + "_bn").
CADENE_CONVS = """
conv1_7x7_s2 3 64 7 2
conv2_3x3_reduce 64 64 1 1
conv2_3x3 64 192 3 1
inception_3a_1x1 192 64 1 1
inception_3a_3x3_reduce 192 64 1 1
inception_3a_3x3 64 64 3 1
inception_3a_double_3x3_reduce 192 64 1 1
inception_3a_double_3x3_1 64 96 3 1
inception_3a_double_3x3_2 96 96 3 1
inception_3a_pool_proj 192 32 1 1
inception_3b_1x1 256 64 1 1
inception_3b_3x3_reduce 256 64 1 1
inception_3b_3x3 64 96 3 1
inception_3b_double_3x3_reduce 256 64 1 1
inception_3b_double_3x3_1 64 96 3 1
inception_3b_double_3x3_2 96 96 3 1
inception_3b_pool_proj 256 64 1 1
inception_3c_3x3_reduce 320 128 1 1
inception_3c_3x3 128 160 3 2
inception_3c_double_3x3_reduce 320 64 1 1
inception_3c_double_3x3_1 64 96 3 1
inception_3c_double_3x3_2 96 96 3 2
inception_4a_1x1 576 224 1 1
inception_4a_3x3_reduce 576 64 1 1
inception_4a_3x3 64 96 3 1
inception_4a_double_3x3_reduce 576 96 1 1
inception_4a_double_3x3_1 96 128 3 1
inception_4a_double_3x3_2 128 128 3 1
inception_4a_pool_proj 576 128 1 1
inception_4b_1x1 576 192 1 1
inception_4b_3x3_reduce 576 96 1 1
inception_4b_3x3 96 128 3 1
inception_4b_double_3x3_reduce 576 96 1 1
inception_4b_double_3x3_1 96 128 3 1
inception_4b_double_3x3_2 128 128 3 1
inception_4b_pool_proj 576 128 1 1
inception_4c_1x1 576 160 1 1
inception_4c_3x3_reduce 576 128 1 1
inception_4c_3x3 128 160 3 1
inception_4c_double_3x3_reduce 576 128 1 1
inception_4c_double_3x3_1 128 160 3 1
inception_4c_double_3x3_2 160 160 3 1
inception_4c_pool_proj 576 128 1 1
inception_4d_1x1 608 96 1 1
inception_4d_3x3_reduce 608 128 1 1
inception_4d_3x3 128 192 3 1
inception_4d_double_3x3_reduce 608 160 1 1
inception_4d_double_3x3_1 160 192 3 1
inception_4d_double_3x3_2 192 192 3 1
inception_4d_pool_proj 608 128 1 1
inception_4e_3x3_reduce 608 128 1 1
inception_4e_3x3 128 192 3 2
inception_4e_double_3x3_reduce 608 192 1 1
inception_4e_double_3x3_1 192 256 3 1
inception_4e_double_3x3_2 256 256 3 2
inception_5a_1x1 1056 352 1 1
inception_5a_3x3_reduce 1056 192 1 1
inception_5a_3x3 192 320 3 1
inception_5a_double_3x3_reduce 1056 160 1 1
inception_5a_double_3x3_1 160 224 3 1
inception_5a_double_3x3_2 224 224 3 1
inception_5a_pool_proj 1056 128 1 1
inception_5b_1x1 1024 352 1 1
inception_5b_3x3_reduce 1024 192 1 1
inception_5b_3x3 192 320 3 1
inception_5b_double_3x3_reduce 1024 192 1 1
inception_5b_double_3x3_1 192 224 3 1
inception_5b_double_3x3_2 224 224 3 1
inception_5b_pool_proj 1024 128 1 1
"""
MODULES = ["3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
PER_MODULE = {  # ARCHITECTURES.md 2.2, computed independently
    "inception3a": 219_552, "inception3b": 260_704, "inception3c": 385_632, "inception4a": 610_848,
    "inception4b": 666_240, "inception4c": 915_456, "inception4d": 1_144_000, "inception4e": 1_451_008,
    "inception5a": 2_210_496, "inception5b": 2_281_248,
}


class CadeneBNInception(nn.Module):
    """Cadene's BNInception, transcribed: same tensors in the same order, forward as its ``features``."""

    def __init__(self, num_classes=1000):
        super().__init__()
        for line in CADENE_CONVS.split("\n")[1:-1]:
            name, cin, cout, k, s = line.split()
            cin, cout, k, s = int(cin), int(cout), int(k), int(s)
            self.add_module(name, nn.Conv2d(cin, cout, k, s, k // 2))
            self.add_module(name + "_bn", nn.BatchNorm2d(cout, eps=1e-5))
        self.last_linear = nn.Linear(1024, num_classes)

    def unit(self, name, x):
        return F.relu(getattr(self, name + "_bn")(getattr(self, name)(x)))

    def module(self, m, x):
        p = f"inception_{m}"
        three = self.unit(p + "_3x3", self.unit(p + "_3x3_reduce", x))
        double = self.unit(p + "_double_3x3_2", self.unit(p + "_double_3x3_1", self.unit(p + "_double_3x3_reduce", x)))
        if m in ("3c", "4e"):
            return torch.cat([three, double, F.max_pool2d(x, 3, 2, ceil_mode=True)], 1)
        if m == "5b":
            pool = F.max_pool2d(x, 3, 1, 1, ceil_mode=True)
        else:
            pool = F.avg_pool2d(x, 3, 1, 1, ceil_mode=True, count_include_pad=True)
        return torch.cat([self.unit(p + "_1x1", x), three, double, self.unit(p + "_pool_proj", pool)], 1)

    def forward(self, x):
        x = F.max_pool2d(self.unit("conv1_7x7_s2", x), 3, 2, ceil_mode=True)
        x = self.unit("conv2_3x3", self.unit("conv2_3x3_reduce", x))
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        for m in MODULES:
            x = self.module(m, x)
        x = F.avg_pool2d(x, 7, 1, ceil_mode=True, count_include_pad=True)
        return self.last_linear(torch.flatten(x, 1))


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def without_counters(state_dict):
    return [(k, v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")]


def test_parameter_counts():
    model = create_model("bn_inception")
    assert n_params(model) == 11_295_240 == n_params(CadeneBNInception())
    assert {name: n_params(getattr(model, name)) for name in PER_MODULE} == PER_MODULE


def test_outputs_equal_cadene_transcription():
    """Cadene's tensors loaded by position into ours give the same outputs at 224."""
    torch.manual_seed(0)
    ref = CadeneBNInception()
    recalibrate_bn(ref, (3, 224, 224), batches=2, batch_size=4)
    theirs, ours = without_counters(ref.state_dict()), without_counters(create_model("bn_inception").state_dict())
    assert [tuple(v.shape) for _, v in theirs] == [tuple(v.shape) for _, v in ours]
    model = create_model("bn_inception")
    state = model.state_dict()
    state.update({k: v for (k, _), (_, v) in zip(ours, theirs)})
    model.load_state_dict(state, strict=True)
    model.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = ref(x), model(x)
    assert_input_dependent(expected)
    assert relative_diff(got, expected) <= 1e-5


def test_forward_backward_and_contract():
    torch.manual_seed(0)
    model = create_model("bn_inception", num_classes=10).train()
    for size in (224, 96):
        out = model(torch.randn(2, 3, size, size))
        assert isinstance(out, torch.Tensor) and out.shape == (2, 10)  # no aux head: a tensor in train mode too
        out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(2, 3, 224, 224))
        assert features.shape == (2, 1024, 7, 7)
        assert model.forward_head(features, pre_logits=True).shape == (2, 1024)
    model.reset_classifier(3)
    assert model.fc.out_features == 3


def test_feature_info_agrees_with_stage_outputs():
    model = create_model("bn_inception").eval()
    names = [info["module"] for info in model.feature_info]
    sizes = {}
    for size in (128, 192):
        shapes = {}
        hooks = [model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, o.shape))
                 for n in names]
        with torch.no_grad():
            model.forward_features(torch.randn(1, 3, size, size))
        for h in hooks:
            h.remove()
        sizes[size] = shapes
    for info in model.feature_info:
        assert sizes[128][info["module"]][1] == info["num_chs"]
        assert sizes[128][info["module"]][2] == 128 // info["reduction"]
        assert sizes[192][info["module"]][2] == 192 // info["reduction"]


def test_stage_names_and_channels():
    model = create_model("bn_inception")
    names = dict(model.named_modules())
    for name in ("conv1", "maxpool1", "conv2_reduce", "conv2", "maxpool2", "inception4c.branch4", "fc"):
        assert name in names
    channels = [getattr(model, f"inception{m}").out_chs for m in MODULES]
    assert channels == [256, 320, 576, 576, 576, 608, 608, 1056, 1024, 1024]
    assert isinstance(model.inception5b.branch4[0], nn.MaxPool2d)
    assert isinstance(model.inception5a.branch4[0], nn.AvgPool2d)
    assert model.conv1.conv.bias is not None and model.conv1.bn.eps == 1e-5


def test_odd_grid_at_a_reduction_is_a_clear_error():
    """ceil_mode pools and padded stride-2 convs disagree on odd grids (200 -> 25 at 3c): refused up front
    with the sizes that work; unchecked (as the probe runs it), the module names its branches."""
    model = create_model("bn_inception").eval()
    with pytest.raises(ValueError, match=r"1x3x200x200.*does not fit.*nearest sides that work: 198 and 223"):
        model(torch.randn(1, 3, 200, 200))
    with pytest.raises(ValueError, match="'inception3c'.*GridReduction branches disagree"), torch.no_grad():
        with locate_failure(model):
            model(torch.randn(1, 3, 200, 200))


def test_config_and_aux_refused():
    config = model_config("bn_inception")
    assert config.input_size == (3, 224, 224)
    assert any("BGR" in line for line in config.deviations)
    with pytest.raises(ValueError, match="aux_logits"):
        create_model("bn_inception", aux_logits=True)
    with pytest.raises(ValueError, match="in_chans"):
        create_model("bn_inception", in_chans=0)
