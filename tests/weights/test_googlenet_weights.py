"""torchvision's googlenet state_dict, converted, gives the same outputs in our googlenet
(variant="torchvision"): eval logits, train-mode aux logits, and without aux heads."""

import copy

import pytest
import torch
import torchvision

from inceptionkit import InceptionOutputs, create_model
from inceptionkit.weights import ConversionError, convert
from tests.reference import assert_input_dependent, disable_dropout, recalibrate_bn, relative_diff

TOL = 1e-5


@pytest.fixture(scope="module")
def theirs():
    """torchvision googlenet with aux heads, seeded, BN statistics measured on 224x224 input."""
    torch.manual_seed(0)
    model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True)
    recalibrate_bn(model, (3, 224, 224), batches=2, batch_size=2)
    return model


def build_and_load(build, state_dict):
    """Build on the meta device (no time spent on an init that is overwritten), then load strictly.

    The tensors are cloned: ``assign`` would otherwise share them with the source model.
    """
    with torch.device("meta"):
        model = build()
    model.load_state_dict({k: v.clone() for k, v in state_dict.items()}, strict=True, assign=True)
    return model.eval()


@pytest.fixture(scope="module")
def ours(theirs):
    converted = convert(theirs.state_dict(), "googlenet", "torchvision")
    return build_and_load(lambda: create_model("googlenet", variant="torchvision"), converted)


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))


def test_eval_outputs_agree(theirs, ours, x):
    theirs.eval()
    with torch.no_grad():
        ref, out = theirs(x), ours(x)
    assert_input_dependent(ref)
    assert relative_diff(out, ref) <= TOL


def test_train_mode_aux_outputs_agree(theirs, ours, x):
    theirs, ours = copy.deepcopy(theirs), copy.deepcopy(ours)  # train mode updates BN statistics
    for model in (theirs, ours):
        disable_dropout(model)
        model.train()
    with torch.no_grad():
        ref, out = theirs(x), ours(x)
    assert isinstance(out, InceptionOutputs) and len(out.aux) == 2
    # torchvision: GoogLeNetOutputs(logits, aux_logits2, aux_logits1); ours: (logits, (aux1, aux2))
    for mine, reference in [(out.logits, ref.logits), (out.aux[0], ref.aux_logits1), (out.aux[1], ref.aux_logits2)]:
        assert_input_dependent(reference)
        assert relative_diff(mine, reference) <= TOL


def test_without_aux_heads(theirs, x):
    no_aux = {k: v for k, v in theirs.state_dict().items() if not k.startswith(("aux1.", "aux2."))}
    tv = build_and_load(lambda: torchvision.models.googlenet(aux_logits=False, init_weights=False), no_aux)
    converted = convert(tv.state_dict(), "googlenet", "torchvision")
    assert not any(k.startswith("aux") for k in converted)
    model = build_and_load(lambda: create_model("googlenet", variant="torchvision", aux_logits=False), converted)
    with torch.no_grad():
        ref, out = tv(x), model(x)
    assert_input_dependent(ref)
    assert relative_diff(out, ref) <= TOL


def test_classes_and_input_channels_come_from_the_state_dict(theirs):
    sd = dict(theirs.state_dict())
    for key in ("fc", "aux1.fc2", "aux2.fc2"):
        sd[f"{key}.weight"], sd[f"{key}.bias"] = sd[f"{key}.weight"][:10], sd[f"{key}.bias"][:10]
    sd["conv1.conv.weight"] = sd["conv1.conv.weight"][:, :1]
    converted = convert(sd, "googlenet", "torchvision")
    model = build_and_load(
        lambda: create_model("googlenet", variant="torchvision", num_classes=10, in_chans=1), converted
    )
    assert model.fc.weight.shape == (10, 1024) and model.conv1.conv.weight.shape[1] == 1


def test_wrong_shape_names_the_key(theirs):
    sd = dict(theirs.state_dict())
    sd["inception4c.branch2.1.conv.weight"] = torch.zeros(256, 128, 5, 5)
    with pytest.raises(ConversionError, match=r"inception4c\.branch2\.1\.conv\.weight"):
        convert(sd, "googlenet", "torchvision")


def test_missing_and_unexpected_keys_are_named(theirs):
    sd = dict(theirs.state_dict())
    del sd["inception3a.branch4.1.bn.running_var"]
    with pytest.raises(ConversionError, match="inception3a"):
        convert(sd, "googlenet", "torchvision")
    sd = dict(theirs.state_dict())
    sd["extra.weight"] = torch.zeros(3)
    with pytest.raises(ConversionError, match=r"extra\.weight"):
        convert(sd, "googlenet", "torchvision")


def test_paper_variant_is_not_a_conversion_target(theirs):
    """The torchvision weights have 3x3 "5x5" kernels and BN: they cannot load into the paper network."""
    with pytest.raises(ConversionError, match="conv1 -> conv1"):
        convert(theirs.state_dict(), "googlenet", "torchvision", variant="paper")
