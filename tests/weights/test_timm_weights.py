"""timm's inception_v4 and inception_resnet_v2 state_dicts convert to ours, and the outputs agree."""

import pytest
import timm
import torch

from inceptionkit import create_model
from inceptionkit.weights import ConversionError, convert
from tests.reference import assert_input_dependent, recalibrate_bn, relative_diff

NAMES = ("inception_v4", "inception_resnet_v2")
CLASSIFIER = {"inception_v4": "last_linear", "inception_resnet_v2": "classif"}
FIRST_CONV = {"inception_v4": "features.0.conv.weight", "inception_resnet_v2": "conv2d_1a.conv.weight"}


def meta_state_dict(name: str) -> dict:
    with torch.device("meta"):
        return timm.create_model(name).state_dict()


@pytest.mark.parametrize("name", NAMES)
def test_outputs_match_timm(name):
    torch.manual_seed(0)
    reference = timm.create_model(name)
    recalibrate_bn(reference, (3, 299, 299), batches=1, batch_size=2)
    model = create_model(name)
    model.load_state_dict(convert(reference.state_dict(), name, "timm"), strict=True)
    model.eval()
    x = torch.randn(2, 3, 299, 299, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert relative_diff(ours, theirs) <= 1e-5
    assert_input_dependent(ours)


@pytest.mark.parametrize("name", NAMES)
def test_classes_and_input_channels_follow_the_checkpoint(name):
    sd = meta_state_dict(name)
    head = CLASSIFIER[name]
    sd[f"{head}.weight"], sd[f"{head}.bias"] = torch.empty(10, 1536, device="meta"), torch.empty(10, device="meta")
    sd[FIRST_CONV[name]] = torch.empty(32, 1, 3, 3, device="meta")
    converted = convert(sd, name, "timm")
    with torch.device("meta"):
        model = create_model(name, num_classes=10, in_chans=1)
    assert set(converted) == set(model.state_dict())
    assert all(converted[k].shape == v.shape for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shape_names_the_key(name):
    sd = meta_state_dict(name)
    key = next(k for k in sd if k.endswith("conv.weight") and sd[k].shape[1] > 256)
    sd[key] = torch.empty(sd[key].shape[0], 7, *sd[key].shape[2:], device="meta")
    with pytest.raises(ConversionError, match=key.replace(".", r"\.")):
        convert(sd, name, "timm")


@pytest.mark.parametrize("name", NAMES)
def test_unexpected_key_is_named(name):
    sd = meta_state_dict(name)
    sd["AuxLogits.fc.weight"] = torch.empty(1000, 768, device="meta")
    with pytest.raises(ConversionError, match=r"AuxLogits\.fc\.weight"):
        convert(sd, name, "timm")
