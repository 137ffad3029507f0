"""activations: outputs by dotted name, hooks always removed, names checked."""

import pytest
import torch

from inceptionkit.lens.activations import activations


def hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_outputs_equal_the_modules_own_and_no_hook_is_left(digits_net):
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    got = activations(digits_net, x, ["inception3a", "inception3a.branch2"])
    with torch.no_grad():
        stem = digits_net.conv1(x)  # googlenet_cifar: conv1 then inception3a
        expected = digits_net.inception3a(stem)
        branch = digits_net.inception3a.branch2(stem)
    assert torch.allclose(got["inception3a"], expected) and torch.allclose(got["inception3a.branch2"], branch)
    assert hooks(digits_net) == 0


def test_hooks_are_removed_when_the_forward_pass_raises(digits_net):
    with pytest.raises(RuntimeError):
        activations(digits_net, torch.randn(1, 5, 32, 32), ["inception5b"])  # 5 channels: conv1 refuses
    assert hooks(digits_net) == 0


def test_unknown_layers_name_the_closest(digits_net):
    with pytest.raises(ValueError, match="no layer 'inception4z'; did you mean inception4e, inception4d"):
        activations(digits_net, torch.zeros(1, 3, 32, 32), "inception4z")


def test_images_go_through_the_models_preprocessing(digits_net, tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 40), (255, 255, 255)).save(tmp_path / "white.png")
    got = activations(digits_net, [tmp_path / "white.png"], "conv1")["conv1"]
    prep = digits_net.pretrained_cfg["preprocessing"]
    white = torch.tensor([(1 - m) / s for m, s in zip(prep["mean"], prep["std"])]).reshape(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(got, digits_net.conv1(white.expand(1, 3, 32, 32)), atol=1e-5)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png cannot be read as an image"):
        activations(digits_net, [tmp_path / "broken.png"], "conv1")
