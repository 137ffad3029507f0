"""GoogLeNet: parameter counts against torchvision and the spec's arithmetic, shapes against Table 1,
the blocks' wiring, the model contract, and errors on bad arguments."""

import pytest
import torch
import torchvision
from torch import nn

from inceptionkit import InceptionOutputs, create_model, model_config
from inceptionkit.models.googlenet import AuxHeadV1, InceptionModule, NaiveInception, paper_aux_pool


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(k: int, cin: int, cout: int, bias: bool = True, bn: bool = False) -> int:
    """Parameters of a k x k conv (+ bias) (+ BN affine), by hand."""
    return k * k * cin * cout + (cout if bias else 0) + (2 * cout if bn else 0)


# --- parameter counts --------------------------------------------------------------------------


@pytest.mark.parametrize("aux, expected", [(True, 13_004_888), (False, 6_624_904)])
def test_torchvision_variant_counts_equal_torchvision(aux, expected):
    with torch.device("meta"):
        theirs = torchvision.models.googlenet(weights=None, aux_logits=aux, init_weights=True)
        ours = create_model("googlenet", variant="torchvision", aux_logits=aux)
    assert n_params(ours) == n_params(theirs) == expected


@pytest.mark.parametrize("aux, expected", [(True, 13_378_280), (False, 6_998_552)])
def test_paper_variant_counts(aux, expected):
    with torch.device("meta"):
        model = create_model("googlenet", aux_logits=aux)
    assert n_params(model) == expected


def test_paper_aux_head_count_by_hand():
    # avg pool -> 1x1 conv 128 (bias) -> fc 2048->1024 -> fc 1024->1000
    with torch.device("meta"):
        head = AuxHeadV1(512, 1000, bn=False, fixed_pool=True)
    assert n_params(head) == conv(1, 512, 128) + 2048 * 1024 + 1024 + 1024 * 1000 + 1000


def test_googlenet_cifar_count():
    with torch.device("meta"):
        model = create_model("googlenet_cifar")
    assert n_params(model) == 6_166_250  # kuangliu/pytorch-cifar, ARCHITECTURES.md 7.1


def test_width_scales_every_filter_count():
    with torch.device("meta"):
        half = create_model("googlenet", variant="torchvision", width=0.5)
        quarter = create_model("googlenet_cifar", width=0.25)
    assert half.conv1.out_chs == 32 and half.conv3.out_chs == 96
    assert half.inception3a.out_chs == 128 and half.inception5b.out_chs == 512
    assert half.aux1.conv.out_chs == 64 and half.fc.in_features == 512
    assert quarter.conv1.out_chs == 48 and quarter.inception5b.out_chs == 256
    assert [f["num_chs"] for f in quarter.feature_info] == [48, 120, 208, 256]


# --- blocks ------------------------------------------------------------------------------------


def test_inception_module_3a_by_hand():
    # Table 1 row 3a on 192 channels, paper build (true 5x5, conv biases)
    module = InceptionModule(192, 64, 96, 128, 16, 32, 32, bn=False)
    expected = (
        conv(1, 192, 64)
        + conv(1, 192, 96) + conv(3, 96, 128)
        + conv(1, 192, 16) + conv(5, 16, 32)
        + conv(1, 192, 32)
    )
    assert n_params(module) == expected
    assert module.out_chs == 64 + 128 + 32 + 32
    assert list(dict(module.named_children())) == ["branch1", "branch2", "branch3", "branch4"]
    assert module.branch3[1].conv.kernel_size == (5, 5)
    assert isinstance(module.branch4[0], nn.MaxPool2d) and module.branch4[1].conv.kernel_size == (1, 1)
    out = module(torch.randn(1, 192, 9, 9))
    assert out.shape == (1, 256, 9, 9)


def test_inception_module_kernel5_and_factorize5():
    quirk = InceptionModule(192, 64, 96, 128, 16, 32, 32, kernel5=3)
    assert quirk.branch3[1].conv.kernel_size == (3, 3)
    assert isinstance(quirk.branch1[0].bn, nn.BatchNorm2d) and quirk.branch1[0].conv.bias is None
    two = InceptionModule(192, 64, 96, 128, 16, 32, 32, factorize5=True)
    assert [layer.conv.kernel_size for layer in two.branch3] == [(1, 1), (3, 3), (3, 3)]


def test_naive_module_keeps_the_input_channels():
    module = NaiveInception(192, 64, 128, 32)
    assert module.out_chs == 64 + 128 + 32 + 192
    assert module(torch.randn(2, 192, 7, 7)).shape == (2, 416, 7, 7)
    assert module.branch3[0].conv.kernel_size == (5, 5)


def test_aux_head_pools():
    x = torch.randn(2, 512, 14, 14)
    paper = AuxHeadV1(512, 10, bn=False, fixed_pool=True).eval()
    tv = AuxHeadV1(512, 10).eval()
    assert paper(x).shape == tv(x).shape == (2, 10)
    assert tv(torch.randn(2, 512, 5, 5)).shape == (2, 10)
    # at 14x14 the paper's head sees exactly a 5x5/3 average pool (windows 5 wide, not 4)
    pooled = paper.resize(paper_aux_pool(x))
    assert torch.allclose(pooled, torch.nn.functional.avg_pool2d(x, 5, 3))
    assert not torch.allclose(tv.resize(x), pooled)
    for side in (6, 3):  # other input sizes still work
        assert paper(torch.randn(2, 512, side, side)).shape == (2, 10)
    tv.reset_classifier(3)
    assert tv(x).shape == (2, 3)


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: InceptionModule(192, 0, 96, 128, 16, 32, 32), "ch1x1"),
        (lambda: InceptionModule(192, 64, 96, 128, 16, 32, -1), "pool_proj"),
        (lambda: InceptionModule(192, 64, 96.0, 128, 16, 32, 32), "ch3x3red"),
        (lambda: InceptionModule(192, 64, 96, 128, 16, 32, 32, kernel5=4), "kernel5"),
        (lambda: InceptionModule(192, 64, 96, 128, 16, 32, 32, kernel5=3, factorize5=True), "kernel5"),
        (lambda: NaiveInception(192, 64, 128, 0), "ch5x5"),
        (lambda: create_model("googlenet", variant="caffe"), "variant"),
        (lambda: create_model("googlenet", width=0), "width"),
        (lambda: create_model("googlenet", in_chans=0), "in_chans"),
        (lambda: create_model("googlenet", drop_rate=1.0), "drop_rate"),
        (lambda: create_model("googlenet_cifar", aux_logits=True), "aux_logits"),
        (lambda: create_model("googlenet_cifar", width=-0.5), "width"),
    ],
)
def test_bad_arguments_name_the_argument(build, name):
    with pytest.raises(ValueError, match=name):
        build()


# --- networks ----------------------------------------------------------------------------------

# Table 1's "output size" column (C, H, W) at 224x224
TABLE_1_OUTPUT = {
    "conv1": (64, 112, 112),
    "maxpool1": (64, 56, 56),
    "conv3": (192, 56, 56),
    "maxpool2": (192, 28, 28),
    "inception3a": (256, 28, 28),
    "inception3b": (480, 28, 28),
    "maxpool3": (480, 14, 14),
    "inception4a": (512, 14, 14),
    "inception4b": (512, 14, 14),
    "inception4c": (512, 14, 14),
    "inception4d": (528, 14, 14),
    "inception4e": (832, 14, 14),
    "maxpool4": (832, 7, 7),
    "inception5a": (832, 7, 7),
    "inception5b": (1024, 7, 7),
}


@pytest.fixture(scope="module", params=["paper", "torchvision"])
def net224(request):
    torch.manual_seed(0)
    return create_model("googlenet", variant=request.param, num_classes=10)


def test_train_forward_backward_224(net224):
    net224.train()
    out = net224(torch.randn(2, 3, 224, 224))
    assert isinstance(out, InceptionOutputs) and len(out.aux) == 2
    assert out.logits.shape == out.aux[0].shape == out.aux[1].shape == (2, 10)
    (out.logits.sum() + 0.3 * sum(a.sum() for a in out.aux)).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net224.parameters())
    net224.zero_grad(set_to_none=True)


def test_eval_shapes_follow_table_1(net224):
    shapes = {}
    hooks = [
        getattr(net224, name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape[1:]))
        for name in TABLE_1_OUTPUT
    ]
    net224.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        features = net224.forward_features(x)
        pooled = net224.forward_head(features, pre_logits=True)
        logits = net224(x[:1])
    for h in hooks:
        h.remove()
    assert {k: tuple(v) for k, v in shapes.items()} == TABLE_1_OUTPUT
    assert features.shape == (2, 1024, 7, 7) and pooled.shape == (2, net224.num_features) == (2, 1024)
    for info in net224.feature_info:
        c, h, w = TABLE_1_OUTPUT[info["module"]]
        assert (info["num_chs"], info["reduction"]) == (c, 224 // h)
    assert isinstance(logits, torch.Tensor) and logits.shape == (1, 10)
    assert torch.allclose(net224.fc(pooled[:1]), logits, atol=1e-5)


def test_variants_differ_where_the_paper_differs():
    with torch.device("meta"):
        paper = create_model("googlenet")
        tv = create_model("googlenet", variant="torchvision")
    assert paper.inception4c.branch3[1].conv.kernel_size == (5, 5)
    assert tv.inception4c.branch3[1].conv.kernel_size == (3, 3)
    assert paper.maxpool4.kernel_size == 3 and tv.maxpool4.kernel_size == 2
    assert paper.head_drop.p == 0.4 and tv.head_drop.p == 0.2
    assert paper.aux1.drop.p == tv.aux1.drop.p == 0.7
    assert isinstance(paper.conv1.bn, nn.Identity) and paper.conv1.conv.bias is not None
    assert isinstance(tv.conv1.bn, nn.BatchNorm2d) and tv.conv1.bn.eps == 1e-3
    assert not any(isinstance(m, nn.BatchNorm2d) for m in paper.modules())
    lrn = paper.lrn1
    assert (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 1.0)
    assert paper.trunk[:7] == ["conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2", "maxpool2"]
    assert not hasattr(tv, "lrn1") and not hasattr(tv, "lrn2")
    assert all(m.ceil_mode for m in paper.modules() if isinstance(m, nn.MaxPool2d))


def test_module_names():
    with torch.device("meta"):
        names = dict(create_model("googlenet").named_modules())
    for name in ["inception4c", "inception4c.branch2", "inception4c.branch4", "aux1", "aux2", "fc", "lrn1"]:
        assert name in names
    top = [n for n in names if n and "." not in n]
    assert top[:6] == ["conv1", "maxpool1", "lrn1", "conv2", "conv3", "lrn2"]
    assert top[-5:] == ["aux1", "aux2", "global_pool", "head_drop", "fc"]


def test_small_input(net224):
    """At 64x64 both variants train with their aux heads (the 4a grid is 4x4 there)."""
    x = torch.randn(2, 3, 64, 64)
    net224.train()
    out = net224(x)
    assert out.logits.shape == out.aux[0].shape == out.aux[1].shape == (2, 10)
    (out.logits.sum() + sum(a.sum() for a in out.aux)).backward()
    net224.zero_grad(set_to_none=True)
    net224.eval()
    with torch.no_grad():
        assert net224(x).shape == (2, 10)


def test_reset_classifier_replaces_fc_and_aux_classifiers():
    model = create_model("googlenet", variant="torchvision", width=0.25).train()
    model.reset_classifier(5)
    assert model.fc.out_features == model.aux1.fc2.out_features == model.aux2.fc2.out_features == 5
    out = model(torch.randn(2, 3, 64, 64))
    assert out.logits.shape == out.aux[0].shape == out.aux[1].shape == (2, 5)


@pytest.mark.parametrize("variant, smallest", [("paper", 31), ("torchvision", 15)])
def test_minimum_input(variant, smallest):
    model = create_model("googlenet", variant=variant, aux_logits=False, width=0.25).eval()
    assert model_config("googlenet").min_input >= smallest
    with torch.no_grad():
        assert model(torch.randn(1, 3, smallest, smallest)).shape == (1, 1000)
        with pytest.raises(RuntimeError):
            model(torch.randn(1, 3, smallest - 1, smallest - 1))


def test_paper_variant_trains_without_aux_at_small_input():
    torch.manual_seed(0)
    model = create_model("googlenet", aux_logits=False, num_classes=0).train()
    assert not model.has_aux and not hasattr(model, "aux1")
    out = model(torch.randn(2, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1024)
    out.square().mean().backward()
    assert model.conv1.conv.weight.grad is not None


def test_config():
    config = model_config("googlenet")
    assert config.input_size == (3, 224, 224) and config.family == "googlenet"
    assert "1409.4842" in config.paper and config.deviations
    cifar = model_config("googlenet_cifar")
    assert cifar.input_size == (3, 32, 32)
    assert cifar.mean == (0.4914, 0.4822, 0.4465) and cifar.std == (0.2023, 0.1994, 0.2010)


# --- googlenet_cifar ---------------------------------------------------------------------------


def test_googlenet_cifar_structure():
    with torch.device("meta"):
        model = create_model("googlenet_cifar")
    assert model.conv1.conv.kernel_size == (3, 3) and model.conv1.conv.stride == (1, 1)
    assert model.conv1.conv.bias is not None and model.conv1.bn.eps == 1e-5
    assert [layer.conv.kernel_size for layer in model.inception4c.branch3] == [(1, 1), (3, 3), (3, 3)]
    assert not model.has_aux


def test_googlenet_cifar_forward_backward_narrow():
    torch.manual_seed(0)
    model = create_model("googlenet_cifar", width=0.25).train()
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    out.sum().backward()
    model.eval()
    shapes = {}
    hooks = [
        getattr(model, info["module"]).register_forward_hook(lambda m, i, o, info=info: shapes.__setitem__(
            info["module"], (o.shape[1], 32 // o.shape[-1])))
        for info in model.feature_info
    ]
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, 256, 8, 8)
    for h in hooks:
        h.remove()
    assert shapes == {f["module"]: (f["num_chs"], f["reduction"]) for f in model.feature_info}


def test_googlenet_cifar_full_width_eval():
    torch.manual_seed(0)
    model = create_model("googlenet_cifar").eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, 32, 32))
        assert features.shape == (1, 1024, 8, 8)
        assert model.forward_head(features).shape == (1, 10)
