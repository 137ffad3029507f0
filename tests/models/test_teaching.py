"""The Keras teaching networks: parameter counts as Keras reports them (by hand arithmetic), the
flatten head's fixed input size, and the model contract."""

import pytest
import torch
from torch import nn

from inceptionkit import create_model, model_config


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(k: int, cin: int, cout: int) -> int:
    """Keras Conv2D(cout, (k, k)) on cin channels: kernel + bias."""
    return k * k * cin * cout + cout


def dense(cin: int, cout: int) -> int:
    return cin * cout + cout


def test_cifar10_count_by_hand():
    module = (
        conv(1, 3, 64)  # 1x1: 256
        + conv(1, 3, 64) + conv(3, 64, 64)  # 1x1 -> 3x3: 37,184
        + conv(1, 3, 64) + conv(5, 64, 64)  # 1x1 -> 5x5: 102,720
        + conv(1, 3, 64)  # pool -> 1x1: 256
    )
    head = dense(4 * 64 * 32 * 32, 10)  # flatten 262,144 -> dense 10: 2,621,450
    assert module == 140_416 and head == 2_621_450
    with torch.device("meta"):
        assert n_params(create_model("teaching_cifar10")) == module + head == 2_761_866


def test_fer2013_count_by_hand():
    module = (
        conv(1, 1, 10) + conv(3, 10, 10)  # 1x1 -> 3x3
        + conv(1, 1, 10) + conv(5, 10, 10)  # 1x1 -> 5x5
        + conv(1, 1, 10)  # pool -> 1x1 (no plain 1x1 branch)
    )
    head = dense(3 * 10 * 48 * 48, 1200) + dense(1200, 600) + dense(600, 150) + dense(150, 7)
    with torch.device("meta"):
        assert n_params(create_model("teaching_fer2013")) == module + head == 83_760_487


def test_structure():
    with torch.device("meta"):
        cifar = create_model("teaching_cifar10")
        fer = create_model("teaching_fer2013")
    names = dict(cifar.named_modules())
    assert {"inception", "inception.branch1", "inception.branch4", "fc"} <= set(names)
    assert list(dict(fer.inception.named_children())) == ["branch2", "branch3", "branch4"]
    assert fer.inception.branch3[1].conv.kernel_size == (5, 5) and cifar.inception.branch3[1].conv.kernel_size == (5, 5)
    for model in (cifar, fer):
        assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        assert all(m.bias is not None for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert [m.out_features for m in fer.modules() if isinstance(m, nn.Linear)] == [1200, 600, 150, 7]
    assert cifar.feature_info == [dict(num_chs=256, reduction=1, module="inception")]
    assert fer.feature_info == [dict(num_chs=30, reduction=1, module="inception")]


@pytest.fixture(scope="module")
def fer():
    torch.manual_seed(0)
    return create_model("teaching_fer2013")


@pytest.mark.parametrize("name", ["teaching_cifar10", "teaching_fer2013"])
def test_forward_backward_and_head(name, fer):
    torch.manual_seed(0)
    model = fer if name == "teaching_fer2013" else create_model(name)
    size = model_config(name).input_size
    x = torch.randn(2, *size)
    model.train()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, model.num_classes)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, model.feature_info[0]["num_chs"], *size[1:])
        pre = model.forward_head(features, pre_logits=True)
        assert pre.shape == (2, model.head_hidden_size)
        assert torch.allclose(model.fc(pre), model(x), atol=1e-5)
    assert model.head_hidden_size == {"teaching_cifar10": 262_144, "teaching_fer2013": 150}[name]
    assert model.num_features == features.shape[1] == {"teaching_cifar10": 256, "teaching_fer2013": 30}[name]


def test_wrong_input_size_says_what_the_head_needs(fer):
    with pytest.raises(ValueError, match="teaching_fer2013 needs 1x48x48 input.*got 3x64x64"):
        fer(torch.randn(1, 3, 64, 64))
    cifar = create_model("teaching_cifar10")
    with pytest.raises(ValueError, match="teaching_cifar10 needs 3x32x32 input.*got 3x48x48"):
        cifar(torch.randn(1, 3, 48, 48))
    with torch.no_grad():  # the module itself is fully convolutional
        features = cifar.forward_features(torch.randn(1, 3, 48, 48))
        assert features.shape == (1, 256, 48, 48)
        with pytest.raises(ValueError, match="256x32x32 feature map"):
            cifar.forward_head(features)


def test_reset_classifier_and_arguments():
    model = create_model("teaching_cifar10", num_classes=3, in_chans=1, drop_rate=0.5)
    assert model.head_drop.p == 0.5 and model.inception.branch1[0].conv.in_channels == 1
    assert model.eval()(torch.randn(2, 1, 32, 32)).shape == (2, 3)
    model.reset_classifier(5)
    assert model.fc.out_features == 5 and model(torch.randn(1, 1, 32, 32)).shape == (1, 5)
    for name in ("teaching_cifar10", "teaching_fer2013"):
        with pytest.raises(ValueError, match="aux_logits"):
            create_model(name, aux_logits=True)
        with pytest.raises(ValueError, match="drop_rate"):
            create_model(name, drop_rate=1.5)
        with pytest.raises(ValueError, match="in_chans"):
            create_model(name, in_chans=0)


def test_configs():
    assert model_config("teaching_cifar10").input_size == (3, 32, 32)
    assert model_config("teaching_fer2013").input_size == (1, 48, 48)
    assert model_config("teaching_fer2013").min_input == 48
