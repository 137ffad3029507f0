"""Inception-v3: sizes against torchvision and timm, the model contract, and argument checks."""

import pytest
import timm
import torch
import torchvision
from torchvision.models import inception as tv_inception

from inceptionkit import InceptionOutputs, create_model, model_config
from inceptionkit.models.blocks import AuxHead
from inceptionkit.models.inception_v3 import (
    AsymmetricGridReduction,
    AsymmetricModule,
    ExpandedModule,
    FactorizedModule,
    GridReduction,
)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def stage_outputs(model, names, size):
    """Shapes (C, H, W) of the named stages' outputs on one eval forward at ``size``."""
    shapes, hooks = {}, []
    for name in names:
        module = model.get_submodule(name)
        hooks.append(module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape[1:])))
    model.eval()
    with torch.no_grad():
        model.forward_features(torch.randn(1, 3, size, size))
    for h in hooks:
        h.remove()
    return shapes


def test_parameter_counts_match_torchvision_and_timm():
    for aux, expected in ((True, 27_161_264), (False, 23_834_568)):
        with torch.device("meta"):  # shapes only: no memory, no init cost
            ours = n_params(create_model("inception_v3", aux_logits=aux))
            tv = n_params(torchvision.models.inception_v3(weights=None, aux_logits=aux, init_weights=True))
            tm = n_params(timm.create_model("inception_v3", aux_logits=aux))
        assert ours == tv == tm == expected


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: FactorizedModule(288, 64, 48, 64, 64, 96, 64, kernel_size=5),
         lambda: tv_inception.InceptionA(288, 64)),
        (lambda: GridReduction(288, None, 384, 64, 96), lambda: tv_inception.InceptionB(288)),
        (lambda: AsymmetricModule(768, 192, 160, 192, 192), lambda: tv_inception.InceptionC(768, 160)),
        (lambda: AsymmetricGridReduction(768, 192, 320, 192), lambda: tv_inception.InceptionD(768)),
        (lambda: ExpandedModule(1280, 320, 384, 384, 448, 384, 192), lambda: tv_inception.InceptionE(1280)),
        (lambda: AuxHead(768, 1000), lambda: tv_inception.InceptionAux(768, 1000)),
    ],
    ids=["A", "B", "C", "D", "E", "aux"],
)
def test_blocks_match_torchvision_tensor_by_tensor(ours, theirs):
    """Same tensor shapes in the same registration order: what positional conversion relies on."""
    a, b = ours(), theirs()
    assert [tuple(t.shape) for t in a.state_dict().values()] == [tuple(t.shape) for t in b.state_dict().values()]


def test_train_mode_returns_logits_and_aux_and_backpropagates():
    torch.manual_seed(0)
    model = create_model("inception_v3", num_classes=10).train()
    out = model(torch.randn(2, 3, 299, 299))
    assert isinstance(out, InceptionOutputs)
    assert out.logits.shape == (2, 10)
    assert len(out.aux) == 1 and out.aux[0].shape == (2, 10)
    (out.logits.sum() + out.aux[0].sum()).backward()
    assert model.conv2d_1a.conv.weight.grad is not None and model.aux.fc.weight.grad is not None
    model.eval()
    with torch.no_grad():
        assert isinstance(model(torch.randn(1, 3, 299, 299)), torch.Tensor)


def test_small_input_without_aux():
    torch.manual_seed(0)
    model = create_model("inception_v3", num_classes=5, aux_logits=False).train()
    out = model(torch.randn(2, 3, 139, 139))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5)
    out.sum().backward()
    model.eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 75, 75)).shape == (1, 2048, 1, 1)


def test_features_head_and_classifier_reset():
    model = create_model("inception_v3").eval()
    x = torch.randn(2, 3, 299, 299)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 2048, 8, 8)
        assert model.forward_head(features, pre_logits=True).shape == (2, 2048)
        assert torch.equal(model.forward_head(features), model.fc(model.forward_head(features, pre_logits=True)))
    model.reset_classifier(10)
    assert model.fc.out_features == 10 and model.aux.fc.out_features == 10
    assert model.get_classifier() is model.fc
    model.reset_classifier(0)
    assert isinstance(model.fc, torch.nn.Identity) and isinstance(model.aux.fc, torch.nn.Identity)


def test_feature_info_agrees_with_stage_outputs():
    model = create_model("inception_v3", aux_logits=False)
    names = [info["module"] for info in model.feature_info]
    small, large = stage_outputs(model, names, 139), stage_outputs(model, names, 139 + 64)
    for info in model.feature_info:
        c, h, w = small[info["module"]]
        assert c == info["num_chs"]
        # growing the input by 64 grows a map of reduction r by 64 / r
        assert large[info["module"]][1] - h == 64 // info["reduction"]
    assert model.feature_info[-1]["num_chs"] == model.num_features == 2048


def test_stage_names_and_no_aux_variant():
    names = dict(create_model("inception_v3").named_modules())
    for name in ("conv2d_1a", "maxpool_5a", "mixed_5b.branch3", "mixed_6e", "mixed_6e.branch2", "aux", "fc",
                 "mixed_7c.branch2.1.branch2"):
        assert name in names
    plain = create_model("inception_v3", aux_logits=False).train()
    assert not plain.has_aux and "aux" not in dict(plain.named_modules())
    with torch.no_grad():
        assert isinstance(plain(torch.randn(2, 3, 139, 139)), torch.Tensor)


def test_config():
    config = model_config("inception_v3")
    assert config.input_size == (3, 299, 299) and config.min_input == 75
    assert config.mean == config.std == (0.5, 0.5, 0.5)
    assert config.interpolation == "bicubic"
    assert any("5x5" in d for d in config.deviations)


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: FactorizedModule(192, 0, 48, 64, 64, 96, 32), "ch1x1"),
        (lambda: FactorizedModule(192, 64, 48, 64, -1, 96, 32), "dbl3x3red"),
        (lambda: FactorizedModule(192, 64, 48, 64, 64, 96, 32, kernel_size=4), "kernel_size"),
        (lambda: FactorizedModule(192, 64, 48, 64, 64, 96, 32, pool="min"), "pool"),
        (lambda: GridReduction(288, 0, 384, 64, 96), "ch3x3red"),
        (lambda: GridReduction(288, None, 384, 64, 96, padding="full"), "padding"),
        (lambda: AsymmetricModule(768, 192, 128, 192, 192, n=6), "n"),
        (lambda: AsymmetricModule(768, 192, 0, 192, 192), "ch7x7red"),
        (lambda: AsymmetricGridReduction(768, 192, 320, 192, n=4), "n"),
        (lambda: ExpandedModule(1280, 320, 384, 384, 448, 384, 0), "pool_proj"),
        (lambda: AuxHead(768, 10, ch1x1=0), "ch1x1"),
        (lambda: create_model("inception_v3", in_chans=0), "in_chans"),
        (lambda: create_model("inception_v3", drop_rate=1.0), "drop_rate"),
    ],
)
def test_invalid_arguments_are_named(build, name):
    with pytest.raises(ValueError, match=name):
        build()
