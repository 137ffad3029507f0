"""The registry: names, close-match errors, and the model contract shared by every network."""

import pytest
import torch

import inceptionkit
from inceptionkit import InceptionOutputs, create_model, list_models, model_config

EXPECTED = {
    "googlenet",
    "googlenet_cifar",
    "bn_inception",
    "inception_v3",
    "inception_v4",
    "inception_resnet_v1",
    "inception_resnet_v2",
}


def test_every_network_is_registered():
    names = set(list_models())
    assert EXPECTED <= names
    assert len([n for n in names if n.startswith("teaching")]) == 2


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError) as err:
        create_model("inception_v5")
    message = str(err.value)
    assert "unknown model 'inception_v5'" in message
    assert "inception_v3" in message and "inception_v4" in message


def test_unknown_keyword_names_it():
    with pytest.raises(TypeError, match="colour"):
        create_model("googlenet_cifar", colour="red")


def test_every_builder_takes_the_common_arguments():
    for name in list_models():
        model = create_model(name, num_classes=7, in_chans=3, aux_logits=False, drop_rate=0.0)
        assert model.config is model_config(name)
        assert model.num_classes == 7


@pytest.mark.parametrize("name", sorted(EXPECTED | {"teaching_cifar10", "teaching_fer2013"}))
def test_contract_forward_backward_at_default_size(name):
    """Forward and backward at the default input (batch 2), in train mode with aux heads where present."""
    torch.manual_seed(0)
    config = model_config(name)
    model = create_model(name, num_classes=5)
    model.train()
    x = torch.randn(2, *config.input_size)
    out = model(x)
    logits = out.logits if isinstance(out, InceptionOutputs) else out
    assert logits.shape == (2, 5)
    loss = logits.sum() + sum(a.sum() for a in (out.aux if isinstance(out, InceptionOutputs) else ()))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

    model.eval()
    with torch.no_grad():
        features = model.forward_features(x[:1])
        pooled = model.forward_head(features, pre_logits=True)
        assert pooled.shape == (1, model.head_hidden_size)
        assert isinstance(model(x[:1]), torch.Tensor)
        last = model.feature_info[-1]
        assert features.shape[1] == last["num_chs"]


def test_version_is_the_installed_distribution():
    from importlib.metadata import version

    assert inceptionkit.__version__ == version("inceptionkit")
