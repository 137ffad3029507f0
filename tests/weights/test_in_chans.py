"""Pretrained weights into another input channel count, as timm adapts them (``adapt_input_conv``)."""

import pytest
import timm
import torch
from timm.models import adapt_input_conv as timm_adapt

from inceptionkit import build_model, create_model, list_models, model_config
from inceptionkit.weights.load import adapt_input_conv
from inceptionkit.weights.preprocessing import preprocessing_of
from tests.reference import relative_diff


@pytest.fixture(scope="module")
def timm_file(tmp_path_factory):
    """timm's inception_v3 (random weights, BN statistics moved off their defaults) saved as a file."""
    torch.manual_seed(0)
    reference = timm.create_model("inception_v3", pretrained=False)
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("weights") / "inception_v3_timm.pth"
    torch.save(reference.state_dict(), path)
    return path, reference.state_dict()


@pytest.mark.parametrize("in_chans", [1, 4])
def test_one_and_four_channels_give_timms_logits(timm_file, in_chans):
    path, state = timm_file
    ours = create_model("inception_v3", weights=str(path), in_chans=in_chans).eval()
    theirs = timm.create_model("inception_v3", pretrained=False, in_chans=in_chans)
    adapted = dict(state, **{"Conv2d_1a_3x3.conv.weight": timm_adapt(in_chans, state["Conv2d_1a_3x3.conv.weight"])})
    theirs.load_state_dict(adapted)
    theirs.eval()
    x = torch.randn(2, in_chans, 160, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert relative_diff(ours(x), theirs(x)) <= 1e-5
    cfg = ours.pretrained_cfg
    assert cfg["input_size"][0] == (1 if in_chans == 1 else 3)  # images are read grey for one channel
    if in_chans == 1:
        assert cfg["preprocessing"]["colour"] == "L" and cfg["mean"] == (0.5,) and cfg["std"] == (0.5,)


def test_a_grey_image_in_one_channel_answers_as_in_three():
    """The rule's point: the summed filter on a grey image equals the original on that image in RGB."""
    weight = torch.randn(8, 3, 3, 3)
    grey = torch.rand(1, 1, 9, 9)
    one = torch.nn.functional.conv2d(grey, adapt_input_conv(weight, 1))
    three = torch.nn.functional.conv2d(grey.expand(1, 3, 9, 9), weight)
    assert torch.allclose(one, three, atol=1e-5)
    four = adapt_input_conv(weight, 4)  # repeated R, G, B, R and scaled by 3/4
    assert torch.allclose(four, torch.cat([weight, weight[:, :1]], 1) * 0.75)


@pytest.mark.parametrize("name", list_models())
def test_every_network_built_fresh_has_preprocessing_for_one_and_three_channels(name):
    """A network's defaults fit the channels it is built with: its own, one (grey, the channels' average
    mean and std) and three (a grey network's mean and std on each channel)."""
    config = model_config(name)
    own = preprocessing_of(build_model(name))
    assert own.input_size == tuple(config.input_size) and own.mean == tuple(config.mean)
    grey = preprocessing_of(build_model(name, in_chans=1))
    assert grey.colour == "L" and grey.mean == pytest.approx((sum(config.mean) / len(config.mean),))
    colour = preprocessing_of(build_model(name, in_chans=3))
    assert colour.colour == "RGB" and len(colour.mean) == len(colour.std) == 3
